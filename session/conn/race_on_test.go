//go:build race

package conn

// raceEnabled: the race detector slows the simulation about tenfold, so
// TestSimulatedLifecycle runs fewer scenarios under it (.ci/run also runs
// the full count without it).
const raceEnabled = true
