package ui

import "github.com/charmbracelet/lipgloss"

// styles holds every lipgloss style the screen draws with, built once from
// one renderer so tests can pin the colour profile without package state.
type styles struct {
	r *lipgloss.Renderer

	header      lipgloss.Style // top line: who I am
	headerID    lipgloss.Style
	paneTitle   lipgloss.Style // a pane's title line when the pane has focus
	paneTitleBl lipgloss.Style // ... when it does not
	divider     lipgloss.Style // the vertical line between the panes
	muted       lipgloss.Style // secondary text: times, hints
	selected    lipgloss.Style // the highlighted contact row
	unread      lipgloss.Style // unread count badge
	name        lipgloss.Style // contact names in the list

	presence map[Presence]lipgloss.Style

	daySep   lipgloss.Style
	stamp    lipgloss.Style
	mine     lipgloss.Style // my name on my messages
	peer     lipgloss.Style // the peer's name on theirs
	body     lipgloss.Style
	mark     lipgloss.Style
	markDone lipgloss.Style // delivered
	typing   lipgloss.Style

	status    lipgloss.Style
	statusBad lipgloss.Style
	errLine   lipgloss.Style
	note      lipgloss.Style // a remark on what the person just did

	modal      lipgloss.Style // the box around prompts and dialogs
	modalTitle lipgloss.Style
	warn       lipgloss.Style
	keyHint    lipgloss.Style
	inputLabel lipgloss.Style
	section    lipgloss.Style // a heading inside help and details
}

// newStyles builds the styles on r (nil: lipgloss's default renderer).
func newStyles(r *lipgloss.Renderer) styles {
	if r == nil {
		r = lipgloss.DefaultRenderer()
	}
	accent := lipgloss.AdaptiveColor{Light: "#5A3FC0", Dark: "#A996FF"}
	subtle := lipgloss.AdaptiveColor{Light: "#8A8A8A", Dark: "#7A7A7A"}
	good := lipgloss.AdaptiveColor{Light: "#1C7C3A", Dark: "#5FD787"}
	bad := lipgloss.AdaptiveColor{Light: "#B3261E", Dark: "#FF6B6B"}
	busy := lipgloss.AdaptiveColor{Light: "#A15C00", Dark: "#FFB454"}

	s := styles{r: r}
	s.header = r.NewStyle().Bold(true)
	s.headerID = r.NewStyle().Foreground(accent)
	s.paneTitle = r.NewStyle().Bold(true).Foreground(accent)
	s.paneTitleBl = r.NewStyle().Foreground(subtle)
	s.divider = r.NewStyle().Foreground(subtle)
	s.muted = r.NewStyle().Foreground(subtle)
	s.selected = r.NewStyle().Bold(true).Foreground(accent)
	s.unread = r.NewStyle().Bold(true).Foreground(accent)
	s.name = r.NewStyle()
	s.presence = map[Presence]lipgloss.Style{
		PresenceOffline:    r.NewStyle().Foreground(subtle),
		PresenceOnline:     r.NewStyle().Foreground(good),
		PresenceConnecting: r.NewStyle().Foreground(busy),
		PresenceConnected:  r.NewStyle().Foreground(good).Bold(true),
		PresenceFailed:     r.NewStyle().Foreground(bad),
	}
	s.daySep = r.NewStyle().Foreground(subtle)
	s.stamp = r.NewStyle().Foreground(subtle)
	s.mine = r.NewStyle().Bold(true).Foreground(accent)
	s.peer = r.NewStyle().Bold(true).Foreground(good)
	s.body = r.NewStyle()
	s.mark = r.NewStyle().Foreground(subtle)
	s.markDone = r.NewStyle().Foreground(good)
	s.typing = r.NewStyle().Italic(true).Foreground(subtle)
	s.status = r.NewStyle().Foreground(subtle)
	s.statusBad = r.NewStyle().Foreground(bad)
	s.errLine = r.NewStyle().Foreground(bad).Bold(true)
	s.note = r.NewStyle().Foreground(good)
	s.modal = r.NewStyle().Border(lipgloss.RoundedBorder()).BorderForeground(accent).Padding(0, 1)
	s.modalTitle = r.NewStyle().Bold(true)
	s.warn = r.NewStyle().Foreground(busy)
	s.keyHint = r.NewStyle().Bold(true)
	s.inputLabel = r.NewStyle().Foreground(subtle)
	s.section = r.NewStyle().Bold(true).Foreground(accent)
	return s
}
