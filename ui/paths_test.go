package ui

import (
	"bytes"
	"context"
	"encoding/json"
	"net/netip"
	"strings"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"

	"github.com/p2ptui/p2ptui/punch"
	"github.com/p2ptui/p2ptui/session/conn"
	"github.com/p2ptui/p2ptui/session/identity"
)

// The connected event and the status line name the path in words (direct,
// direct over IPv6, relayed via the TURN server's host); a session moving
// to another path, what discovery learned and the relay's fate are events
// of their own.
func TestPathEventsAndWords(t *testing.T) {
	var out bytes.Buffer
	w := newEventWriter(&out)
	o := newJSONObserver(w, "local", "test")
	relayed := conn.Path{Kind: "relayed", Relay: "turn.example.org", Local: netip.MustParseAddrPort("203.0.113.20:50000"),
		Remote: netip.MustParseAddrPort("198.51.100.12:4000")}
	direct6 := conn.Path{Kind: "predicted", Local: netip.MustParseAddrPort("[2001:db8:a::2]:4000"),
		Remote: netip.MustParseAddrPort("[2001:db8:b::2]:4000")}
	for _, n := range []conn.Notification{
		conn.Ready{ID: "me"},
		conn.NATChanged{Words: "symmetric NAT: ...", Mapping: "address-and-port-dependent", Filtering: "address-and-port-dependent",
			Mapped: netip.MustParseAddrPort("198.51.100.11:1234")},
		conn.RelayChanged{OK: true, Server: "turn:turn.example.org:3478", Addr: netip.MustParseAddrPort("203.0.113.20:50000")},
		conn.Connected{Peer: "bob", SessionID: "s1", Path: relayed},
		conn.PathMoved{Peer: "bob", SessionID: "s1", Path: direct6},
		conn.RelayChanged{Server: "turn:turn.example.org:3478", Words: `TURN server turn:turn.example.org:3478 refused user "lab" with its password (401 Unauthorized)`},
	} {
		o.Notify(n)
	}
	w.Close()
	var got []Event
	for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		var e Event
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("bad line %q: %v", line, err)
		}
		got = append(got, e)
	}
	if len(got) != 6 {
		t.Fatalf("%d events, want 6: %s", len(got), out.String())
	}
	if e := got[1]; e.Ev != "nat" || e.Mapping != "address-and-port-dependent" || e.Mapped != "198.51.100.11:1234" || e.Mapped6 != "" {
		t.Errorf("nat event %+v", e)
	}
	if e := got[2]; e.Ev != "relay" || e.OK == nil || !*e.OK || e.Local != "203.0.113.20:50000" {
		t.Errorf("relay event %+v", e)
	}
	if e := got[3]; e.Ev != "connected" || e.Path != "relayed via turn.example.org" || e.PathKind != "relayed" {
		t.Errorf("connected event %+v", e)
	}
	if e := got[4]; e.Ev != "path" || e.Path != "direct (IPv6)" || e.PathKind != "predicted" || e.Remote != "[2001:db8:b::2]:4000" {
		t.Errorf("path event %+v", e)
	}
	if e := got[5]; e.Ev != "relay" || e.OK == nil || *e.OK || !strings.Contains(e.Words, `user "lab"`) {
		t.Errorf("relay failure event %+v", e)
	}

	s := NewScreen(Options{})
	so := newScreenObserver(s, "local", time.Now)
	so.Notify(conn.PeerChanged{Status: conn.PeerStatus{ID: "bob", Name: "bob", Phase: conn.PhaseConnected, Path: relayed}})
	so.focus("bob")
	if want := "relayed via turn.example.org, encrypted 203.0.113.20:50000 ⇄ 198.51.100.12:4000"; so.status.Path != want {
		t.Errorf("status %q, want %q", so.status.Path, want)
	}
}

// The adapter opens birthday probing's extra sockets in the socket set,
// writes from the socket an effect names, and closes them again.
func TestAdapterOpensWritesFromAndClosesExtraSockets(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	set := punch.NewSocketSet(ctx)
	defer set.CloseAll()
	main, err := set.Listen("127.0.0.1:0", 0)
	if err != nil {
		t.Fatal(err)
	}
	peer, err := punch.ListenUDP(ctx, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	id, err := identity.NewIdentity(newSeeded(7))
	if err != nil {
		t.Fatal(err)
	}
	m := New(Deps{Identity: id, Socket: main, Sockets: set, Headless: true})
	defer m.Close()
	run := func() tea.Msg {
		t.Helper()
		if len(m.pendingCmds) != 1 {
			t.Fatalf("%d Cmds, want 1", len(m.pendingCmds))
		}
		c := m.pendingCmds[0]
		m.pendingCmds = nil
		return c()
	}
	if !m.performPath(conn.OpenSockets{Peer: "p", SessionID: "s", Count: 5}) {
		t.Fatal("OpenSockets not performed")
	}
	opened, ok := run().(socketsOpenedMsg)
	if !ok || opened.Err != nil || len(opened.IDs) != 5 || set.Len() != 6 {
		t.Fatalf("opened %+v; the set holds %d sockets, want 6", opened, set.Len())
	}
	m.sendDatagram(conn.SendDatagram{Socket: opened.IDs[3], To: peer.LocalAddr(), Data: []byte{punch.PunchByte, 1}})
	select {
	case dg := <-peer.Datagrams():
		if got := set.Get(opened.IDs[3]).LocalAddr().Port(); dg.From.Port() != got {
			t.Fatalf("the datagram came from port %d, want extra socket %d's %d", dg.From.Port(), opened.IDs[3], got)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("nothing arrived from the extra socket")
	}
	m.performPath(conn.CloseSockets{IDs: opened.IDs})
	run()
	if set.Len() != 1 || set.Get(punch.MainSocket) == nil {
		t.Fatalf("after closing, the set holds %d sockets, want the main one", set.Len())
	}
}
