package ui

import (
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"
)

// Options configure a Screen. The zero value is fine for production.
type Options struct {
	// Now is the clock used for relative times ("5m") and day separators;
	// nil means time.Now. Tests pass a fixed clock.
	Now func() time.Time
	// Location is the zone times are shown in; nil means time.Local.
	Location *time.Location
	// Renderer draws the styles; nil means lipgloss.DefaultRenderer().
	// Tests pass one with a fixed (ASCII) colour profile.
	Renderer *lipgloss.Renderer
}

// Screen is the visual layer: contacts pane, chat pane, input, status bar,
// help and dialogs. The engine (root model) pushes data in with the setters,
// routes every tea.Msg it does not own to Update, and receives what the user
// asked for as intent messages (intents.go) from the returned commands.
// Screen does no I/O and never blocks.
type Screen struct {
	opt Options
}

// NewScreen returns an empty screen.
func NewScreen(opt Options) *Screen {
	return &Screen{opt: opt}
}

// SetSize sets the terminal size (the root model forwards tea.WindowSizeMsg;
// Update also accepts it directly).
func (s *Screen) SetSize(w, h int) {}

// SetSelf sets the local identity shown in the header.
func (s *Screen) SetSelf(me Self) {}

// SetContacts replaces the contact list (order is kept as given).
func (s *Screen) SetContacts(cs []ContactView) {}

// SetMessages replaces contactID's loaded history, oldest first.
func (s *Screen) SetMessages(contactID string, ms []MessageView) {}

// AppendMessage adds a message at the end of contactID's conversation.
func (s *Screen) AppendMessage(contactID string, m MessageView) {}

// SetMark updates the delivery mark of message key in contactID's conversation.
func (s *Screen) SetMark(contactID, key string, mark Mark) {}

// SetTyping shows or hides "… is typing" for contactID.
func (s *Screen) SetTyping(contactID string, active bool) {}

// ShowOffer queues an incoming-offer prompt (shown one at a time, oldest first).
func (s *Screen) ShowOffer(o OfferView) {}

// HideOffer removes the prompt for sessionID (answered elsewhere, cancelled or expired).
func (s *Screen) HideOffer(sessionID string) {}

// SetStatus sets the status bar.
func (s *Screen) SetStatus(st StatusView) {}

// ShowError shows msg (plain words) in the status area until the next
// ShowError("") or SetStatus with a different Err.
func (s *Screen) ShowError(msg string) {}

// Focused returns the contact whose chat is open ("" if none).
func (s *Screen) Focused() string { return "" }

// Update handles keys, mouse and resizes. User actions come back as intent
// messages through the returned command.
func (s *Screen) Update(msg tea.Msg) (*Screen, tea.Cmd) { return s, nil }

// View draws the whole screen at the size given by SetSize.
func (s *Screen) View() string { return "" }
