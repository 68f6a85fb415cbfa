package ui

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	tea "github.com/charmbracelet/bubbletea"

	"github.com/p2ptui/p2ptui/session/conn"
	"github.com/p2ptui/p2ptui/session/transfer"
)

// This file is the root model's side of file transfers: the file intents
// (from the screen and the headless commands) become engine calls, and the
// engine's file notifications become what the screen and the JSON stream
// show, in words.

// fileIntent runs one of the file intents.
func (m *Model) fileIntent(now time.Time, msg tea.Msg) {
	e := m.eng
	var err error
	switch msg := msg.(type) {
	case SendFileIntent:
		path := expandHome(strings.TrimSpace(msg.Path))
		if path != "" && !filepath.IsAbs(path) {
			// Relative to where p2ptui was started, as a shell would take it.
			if abs, aerr := filepath.Abs(path); aerr == nil {
				path = abs
			}
		}
		_, err = e.OfferFile(now, msg.ContactID, path)
	case AcceptFileIntent:
		var id transfer.ID
		if id, err = transfer.ParseID(msg.ID); err == nil {
			dir := expandHome(strings.TrimSpace(msg.Dir))
			if dir == "" {
				dir = m.downloads
			}
			err = e.AcceptFile(now, msg.Peer, id, dir)
		}
	case DeclineFileIntent:
		var id transfer.ID
		if id, err = transfer.ParseID(msg.ID); err == nil {
			err = e.DeclineFile(now, msg.Peer, id)
		}
	case CancelFileIntent:
		var id transfer.ID
		if id, err = transfer.ParseID(msg.ID); err == nil {
			err = e.CancelFile(now, msg.Peer, id)
		}
	}
	if err != nil && !errors.Is(err, conn.ErrQuitting) {
		m.showError(err.Error())
	}
}

// expandHome turns a leading ~ into the home folder, as a shell would.
func expandHome(p string) string {
	if p != "~" && !strings.HasPrefix(p, "~/") && !strings.HasPrefix(p, "~"+string(filepath.Separator)) {
		return p
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return p
	}
	return filepath.Join(home, p[1:])
}

// transferView is a transfer's status as the screen shows it.
func transferView(peer, peerName string, s transfer.Status) TransferView {
	v := TransferView{Peer: peer, PeerName: peerName, ID: s.ID.String(), Outgoing: s.Outgoing, Name: s.Name,
		Size: s.Size, Done: s.Done, Rate: s.Rate}
	if v.Name == "" {
		v.Name = filepath.Base(s.Path) // still being hashed: no name yet
	}
	switch s.State {
	case transfer.StateHashing:
		v.Phase = TransferHashing
	case transfer.StateOffered:
		v.Phase = TransferOffered
	case transfer.StatePreparing:
		v.Phase = TransferPreparing
	default:
		v.Phase = TransferActive
	}
	return v
}

// fileDoneWords says how a finished transfer ended, for the chat and the
// JSON stream.
func fileDoneWords(peerName string, s transfer.Status) string {
	name := sanitizeLine(s.Name)
	if s.Outgoing {
		return fmt.Sprintf("%s (%s) sent to %s", name, humanBytes(s.Size), peerName)
	}
	return fmt.Sprintf("%s (%s) from %s saved as %s", name, humanBytes(s.Size), peerName, sanitizeLine(s.Path))
}

// fileFailWords says why a transfer ended without the file, in words: who
// ended it, and the local error if there is one (the peer's words never
// travel, only a reason code).
func fileFailWords(peerName string, s transfer.Status) string {
	name := sanitizeLine(s.Name)
	if name == "" {
		name = sanitizeLine(filepath.Base(s.Path))
	}
	var w string
	switch {
	case s.Reason == transfer.ReasonDeclined && s.ByPeer:
		w = peerName + " declined " + name
	case s.Reason == transfer.ReasonDeclined:
		w = "you declined " + name
	case s.Reason == transfer.ReasonCancelled && s.ByPeer:
		w = peerName + " cancelled " + name
	case s.Reason == transfer.ReasonCancelled:
		w = "you cancelled " + name
	case s.ByPeer:
		w = name + " stopped on " + peerName + "'s side: " + s.Reason.String()
	case s.Outgoing:
		w = name + " could not be sent: " + s.Reason.String()
	default:
		w = name + " could not be received: " + s.Reason.String()
	}
	if s.Detail != "" && !s.ByPeer {
		w += " (" + sanitizeLine(s.Detail) + ")"
	}
	return w
}

// humanBytes writes a size the way the README does: 512 B, 1.5 KiB,
// 2.1 MiB, 1.0 GiB.
func humanBytes(n uint64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	v, i := float64(n)/unit, 0
	for v >= unit && i < 4 {
		v /= unit
		i++
	}
	return fmt.Sprintf("%.1f %ciB", v, "KMGTP"[i])
}

// timeLeft says how long the rest takes at rate (bytes per second);
// "" when the rate is not known.
func timeLeft(left uint64, rate float64) string {
	if rate <= 0 {
		return ""
	}
	d := time.Duration(float64(left) / rate * float64(time.Second))
	switch {
	case d < time.Second:
		return "1 s left"
	case d < time.Minute:
		return fmt.Sprintf("%d s left", int(d.Seconds()+0.5))
	case d < time.Hour:
		return fmt.Sprintf("%d min left", int(d.Minutes()+0.5))
	case d < 100*time.Hour:
		return fmt.Sprintf("%d h %d min left", int(d.Hours()), int(d.Minutes())%60)
	}
	return "days left"
}
