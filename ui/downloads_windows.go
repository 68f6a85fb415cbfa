package ui

import "golang.org/x/sys/windows"

// knownDownloads is the user's Downloads known folder (it may have been
// moved), or "" when Windows cannot say.
func knownDownloads() string {
	d, err := windows.KnownFolderPath(windows.FOLDERID_Downloads, 0)
	if err != nil {
		return ""
	}
	return d
}
