// Command p2ptui is a full-screen terminal chat in which two people talk
// directly, peer to peer, over UDP. See README.md.
package main

import (
	"flag"
	"fmt"
	"os"
)

func main() {
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: p2ptui [flags]\n\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	fmt.Fprintln(os.Stderr, "p2ptui: the chat UI is not built yet; this commit lays the foundation (see README.md)")
	os.Exit(2)
}
