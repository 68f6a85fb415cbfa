// Package identity holds a user's long-term X25519 key (the Noise static key),
// the checksummed IDs derived from it, safety numbers, and the sealing of
// signalling payloads between two identities. It knows nothing of sessions,
// sockets or storage beyond the key file.
package identity
