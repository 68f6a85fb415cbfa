//go:build tools

// This file pins the design card's dependencies in go.mod while the packages
// that use them are being written; it is never built into the binary.
package main

import (
	_ "cloud.google.com/go/firestore"
	_ "github.com/charmbracelet/bubbles/help"
	_ "github.com/charmbracelet/bubbletea"
	_ "github.com/charmbracelet/lipgloss"
	_ "github.com/charmbracelet/x/exp/teatest"
	_ "github.com/flynn/noise"
	_ "github.com/pion/stun/v2"
	_ "go.etcd.io/bbolt"
	_ "golang.org/x/crypto/curve25519"
)
