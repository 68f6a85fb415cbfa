package ui

import (
	"bytes"
	"encoding/json"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/p2ptui/p2ptui/session/conn"
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
