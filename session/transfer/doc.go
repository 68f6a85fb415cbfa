// Package transfer sends files between two peers over numbered streams of
// their encrypted session: offers, accepts, declines and cancels travel on
// a control stream, every running transfer has a data stream of its own,
// and each transfer resumes from its last verified chunk after a lost
// path, a restart of either side or a change of path.
//
// Machine is the protocol, sans-I/O in the sense of punch/sansio: one per
// peer, owned by that peer's connection machine, fed with the user's
// intents, the session's stream events and the results of file and store
// work, and drained of Effects (that work) and Events (for the UI). It
// never touches a file, a clock or a goroutine; Files performs its effects
// synchronously and Worker runs them off the event loop, one ordered queue
// per transfer.
//
// Integrity: the offer names the file's size, chunk size and SHA-256; every
// chunk travels with its own SHA-256, which the receiver checks before
// writing and keeps (for the last written chunk) to prove, when resuming,
// that both sides still hold the same bytes up to there; and the whole
// file is hashed again from disk before it gets its final name.
package transfer
