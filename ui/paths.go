package ui

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	tea "github.com/charmbracelet/bubbletea"

	"github.com/p2ptui/p2ptui/punch"
	"github.com/p2ptui/p2ptui/punch/relay"
	"github.com/p2ptui/p2ptui/session/conn"
)

// The engine's socket work beyond the main socket, performed with the
// socket set: the TURN relay (allocated, permitted and released in Cmds,
// since each waits on the server) and the extra sockets of birthday
// probing. Each outcome comes back as a message that becomes engine input.

// Bounds on the TURN server's answers, so a dead server shows up as words
// within seconds and never holds anything up: the offer waits for an
// allocation only conn.DefaultRelayWait, and the relayed machine alone waits
// for the permissions.
const (
	relayAllocateTimeout = 5 * time.Second
	relayPermitTimeout   = 5 * time.Second
)

// extraSocketBuffer is the read buffer of a birthday socket: it only ever
// carries punch and session packets (at most 1,200 bytes).
const extraSocketBuffer = 2048

// relayAllocatedMsg reports an AllocateRelay.
type relayAllocatedMsg struct {
	res conn.RelayAllocated
	r   *relay.Relay
}

// relayPermittedMsg reports a PermitRelay.
type relayPermittedMsg conn.RelayPermitted

// socketsOpenedMsg reports an OpenSockets.
type socketsOpenedMsg conn.SocketsOpened

// performPath performs a socket or relay effect; it reports whether ef was
// one.
func (m *Model) performPath(ef conn.Effect) bool {
	set := m.d.Sockets
	switch ef := ef.(type) {
	case conn.AllocateRelay:
		m.do(allocateRelay(m.ctx, set, m.d.TURN, ef, m.log))
	case conn.PermitRelay:
		r := m.relays[ef.Socket]
		m.do(func() tea.Msg {
			res := relayPermittedMsg{Peer: ef.Peer, SessionID: ef.SessionID, Socket: ef.Socket}
			if r == nil {
				res.Err = fmt.Errorf("permit: %w", relay.ErrClosed)
				return res
			}
			ctx, cancel := context.WithTimeout(m.ctx, relayPermitTimeout)
			defer cancel()
			res.Err = r.Permit(ctx, ef.Addrs)
			return res
		})
	case conn.ReleaseRelay:
		r := m.relays[ef.Socket]
		delete(m.relays, ef.Socket)
		if r == nil {
			break
		}
		events, log := m.events, m.log
		// Guarded: quitting waits for the release to go out.
		m.effect(func() tea.Msg {
			_ = set.Close(ef.Socket) // releases the allocation
			st := r.Stats()
			log.Info("TURN relay released", "server", r.Server(), "relayed", r.Addr(), "requests", st.Requests(),
				"allocate", st.Allocate, "permission", st.CreatePermission, "bind", st.ChannelBind, "refresh", st.Refresh)
			if events != nil {
				// Straight to the writer: the program may be quitting,
				// and a script counting the relay's cost wants it then.
				events.emit(Event{Ev: "relay_stats", Server: r.Server().String(), Requests: intp(st.Requests())})
			}
			return nil
		})
	case conn.OpenSockets:
		if set == nil {
			m.do(func() tea.Msg {
				return socketsOpenedMsg{Peer: ef.Peer, SessionID: ef.SessionID, Err: fmt.Errorf("no socket set for extra sockets")}
			})
			break
		}
		m.do(func() tea.Msg {
			ids, err := set.ListenMany("0.0.0.0:0", ef.Count, extraSocketBuffer)
			return socketsOpenedMsg{Peer: ef.Peer, SessionID: ef.SessionID, IDs: ids, Err: err}
		})
	case conn.CloseSockets:
		if set != nil {
			m.do(func() tea.Msg {
				_ = set.Close(ef.IDs...)
				return nil
			})
		}
	default:
		return false
	}
	return true
}

// allocateRelay allocates a relay on one of the configured servers and
// adds it to the socket set under a fresh ID.
func allocateRelay(ctx context.Context, set *punch.SocketSet, turn relay.Settings, ef conn.AllocateRelay, log *slog.Logger) tea.Cmd {
	return func() tea.Msg {
		res := conn.RelayAllocated{Gen: ef.Gen}
		if set == nil || ef.Server < 0 || ef.Server >= len(turn.Servers) {
			res.Err = fmt.Errorf("TURN server %s: no socket set to relay with", ef.URI)
			return relayAllocatedMsg{res: res}
		}
		id := set.Reserve()
		actx, cancel := context.WithTimeout(ctx, relayAllocateTimeout)
		defer cancel()
		r, err := relay.Allocate(actx, relay.Config{Server: turn.Servers[ef.Server], Credentials: turn.Credentials,
			Socket: id, Deliver: set.Deliver(), Logger: log})
		if err != nil {
			res.Err = err
			return relayAllocatedMsg{res: res}
		}
		if err := set.Add(id, r); err != nil {
			r.Close()
			res.Err = fmt.Errorf("TURN server %s: %w", ef.URI, err)
			return relayAllocatedMsg{res: res}
		}
		res.Socket, res.Addr = id, r.Addr()
		return relayAllocatedMsg{res: res, r: r}
	}
}

// handlePath routes the outcome of a socket or relay effect to the engine;
// it reports whether msg was one.
func (m *Model) handlePath(now time.Time, msg tea.Msg) bool {
	switch msg := msg.(type) {
	case relayAllocatedMsg:
		if msg.r != nil {
			m.relays[msg.res.Socket] = msg.r
		}
		m.eng.HandleRelayAllocated(now, msg.res)
	case relayPermittedMsg:
		m.eng.HandleRelayPermitted(now, conn.RelayPermitted(msg))
	case socketsOpenedMsg:
		m.eng.HandleSocketsOpened(now, conn.SocketsOpened(msg))
	default:
		return false
	}
	return true
}

// sendDatagram writes one datagram from the socket it names.
func (m *Model) sendDatagram(ef conn.SendDatagram) {
	var err error
	switch {
	case m.d.Sockets != nil:
		err = m.d.Sockets.Send(punch.Transmit{Socket: ef.Socket, To: ef.To, Data: ef.Data})
	case m.d.Socket != nil && ef.Socket == punch.MainSocket:
		err = m.d.Socket.WriteTo(ef.Data, ef.To)
	default:
		return
	}
	if err != nil {
		// One packet: the machines retransmit.
		m.log.Debug("udp write", "socket", ef.Socket, "to", ef.To, "err", err)
	}
}

func intp(v int) *int { return &v }
