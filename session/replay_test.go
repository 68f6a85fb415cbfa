package session

import (
	"math"
	"math/rand/v2"
	"testing"
)

func TestReplayWindowBasics(t *testing.T) {
	var w ReplayWindow
	steps := []struct {
		counter uint64
		want    bool
	}{
		{0, true}, {0, false}, // first, then its replay
		{1, true}, {5, true}, {3, true}, {3, false}, {5, false},
		{2, true}, {4, true}, {1, false},
		{ReplayWindowWidth + 5, true}, // slides the window: 5 is now the oldest kept
		{6, true},                     // within width, never seen
		{5, false},                    // seen
		{4, false},                    // too old (and seen)
		{0, false},                    // far too old
		{ReplayWindowWidth + 4, true}, // late but new
		{ReplayWindowWidth + 4, false},
		{1 << 40, true}, // a jump clears everything
		{ReplayWindowWidth + 6, false},
		{1<<40 - 1, true},
		{1<<40 - ReplayWindowWidth, false}, // exactly the width back: too old
		{1<<40 - ReplayWindowWidth + 1, true},
		{math.MaxUint64, false}, // reserved, never a valid counter
	}
	for i, s := range steps {
		if got := w.Accept(s.counter); got != s.want {
			t.Fatalf("step %d: Accept(%d) = %v, want %v", i, s.counter, got, s.want)
		}
	}
}

// Against a map of everything seen: the window must never accept a counter
// twice and must accept every new counter within its width.
func TestReplayWindowAgainstModel(t *testing.T) {
	for seed := range uint64(5) {
		rng := rand.New(rand.NewPCG(seed, 1))
		var w ReplayWindow
		seen := map[uint64]bool{}
		var highest uint64
		for range 200000 {
			// Mostly near the front, sometimes far behind or far ahead.
			var c uint64
			switch r := rng.IntN(100); {
			case r < 80:
				c = highest + uint64(rng.IntN(40))
				if c >= 20 {
					c -= 20
				}
			case r < 95:
				c = highest - min(highest, uint64(rng.IntN(3*replayWindowSize)))
			default:
				c = highest + uint64(rng.IntN(5*replayWindowSize))
			}
			fresh := !seen[c]
			inWidth := c+ReplayWindowWidth > highest || highest == 0
			got := w.Accept(c)
			if got && !fresh {
				t.Fatalf("seed %d: counter %d accepted twice", seed, c)
			}
			if fresh && inWidth && !got {
				t.Fatalf("seed %d: new counter %d within the window (highest %d) refused", seed, c, highest)
			}
			if got {
				seen[c] = true
				highest = max(highest, c)
			}
		}
	}
}
