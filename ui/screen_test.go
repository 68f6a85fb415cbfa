package ui

import (
	"io"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"
	"github.com/charmbracelet/x/ansi"
	"github.com/muesli/termenv"
)

// testClock is a settable clock for screens under test.
type testClock struct{ t time.Time }

func (c *testClock) now() time.Time { return c.t }

var baseTime = time.Date(2026, 11, 24, 14, 30, 0, 0, time.UTC)

// newTestScreen is a screen with an ASCII renderer, UTC and a fixed clock.
func newTestScreen(w, h int) (*Screen, *testClock) {
	clk := &testClock{t: baseTime}
	r := lipgloss.NewRenderer(io.Discard)
	r.SetColorProfile(termenv.Ascii)
	r.SetHasDarkBackground(true)
	s := NewScreen(Options{Now: clk.now, Location: time.UTC, Renderer: r})
	s.SetSize(w, h)
	return s, clk
}

const (
	idAlice = "a3kq7zmxw2p4fy6rdt5nbc8vhe3jsu2lgq4wk7xmz5pd6nrf2ty7ba"
	idBob   = "b7rt2mxq4kz6wp3nfy5dhc8vje2lsu6gaq4wk7xmz5pd6nrf2ty7bb"
	idMe    = "m4xq7zkrw2p4fy6rdt5nbc8vhe3jsu2lgq4wk7xmz5pd6nrf2ty7cc"
	idDave  = "d2mz5kq7xw4p3fy6rdt5nbc8vhe3jsu2lgq4wk7xmz5pd6nrf2ty7dd"
	idErin  = "e5kq2zmxw7p4fy6rdt5nbc8vhe3jsu2lgq4wk7xmz5pd6nrf2ty7ee"
	idFrank = "f6xq4zkrw2p7fy6rdt5nbc8vhe3jsu2lgq4wk7xmz5pd6nrf2ty7ff"

	idStranger = "s9tq7zmxw2p4fy6rdt5nbc8vhe3jsu2lgq4wk7xmz5pd6nrf2ty7zz"
)

// displayWidth is a line's width in terminal columns.
func displayWidth(s string) int { return ansi.StringWidth(s) }

// keyRunes is a key press that types s.
func keyRunes(s string) tea.KeyMsg { return tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune(s)} }

// typeText turns text into key presses; '\t' is Tab and '\n' is Enter.
func typeText(text string) []tea.Msg {
	var out []tea.Msg
	for _, r := range text {
		switch r {
		case '\t':
			out = append(out, tea.KeyMsg{Type: tea.KeyTab})
		case '\n':
			out = append(out, tea.KeyMsg{Type: tea.KeyEnter})
		default:
			out = append(out, keyRunes(string(r)))
		}
	}
	return out
}
