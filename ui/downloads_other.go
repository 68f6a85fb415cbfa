//go:build !windows

package ui

// knownDownloads: only Windows keeps the folder in a registry of its own.
func knownDownloads() string { return "" }
