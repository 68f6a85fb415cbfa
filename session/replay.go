package session

// ReplayWindow rejects replayed and very old counters with the bitmap of
// RFC 6479: a ring of 64-bit blocks where advancing the window clears whole
// blocks instead of shifting bits. It remembers the last
// replayWindowSize-64 counters below the highest seen.
//
// The zero value is ready to use. Check is cheap and runs before the AEAD;
// Accept runs only after the datagram authenticated, so a forgery can never
// move the window.
type ReplayWindow struct {
	highest uint64 // highest accepted counter + 1 (0: nothing accepted yet)
	blocks  [replayBlocks]uint64
}

const (
	replayWindowSize = 2048 // bits, as WireGuard's
	replayBlocks     = replayWindowSize / 64
	// ReplayWindowWidth is how far below the highest counter a late
	// datagram is still accepted (RFC 6479 §2: one block is kept spare).
	ReplayWindowWidth = replayWindowSize - 64
)

// Check reports whether counter is new and not too old.
func (w *ReplayWindow) Check(counter uint64) bool {
	if counter == maxCounter {
		return false // would overflow highest; never sent (see maxCounter)
	}
	if counter >= w.highest {
		return true
	}
	if w.highest-1-counter >= ReplayWindowWidth {
		return false
	}
	block := (counter / 64) % replayBlocks
	return w.blocks[block]&(1<<(counter%64)) == 0
}

// Accept records counter and reports whether it was new (Check's answer).
func (w *ReplayWindow) Accept(counter uint64) bool {
	if !w.Check(counter) {
		return false
	}
	if counter >= w.highest {
		// Clear the blocks the window slides over (all of them at most).
		// Before the first counter every block is still zero.
		if w.highest > 0 {
			cur, next := (w.highest-1)/64, counter/64
			steps := next - cur
			if steps > replayBlocks {
				steps = replayBlocks
			}
			for i := uint64(1); i <= steps; i++ {
				w.blocks[(cur+i)%replayBlocks] = 0
			}
		}
		w.highest = counter + 1
	}
	w.blocks[(counter/64)%replayBlocks] |= 1 << (counter % 64)
	return true
}
