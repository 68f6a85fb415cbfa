package private

import (
	"fmt"
	"slices"
	"strings"
)

// This file judges a Windows security descriptor reduced to plain values,
// so the rules are unit-tested on every OS; acl_windows.go reads the real
// descriptor into these types.

// Access-mask bits (winnt.h, "File Access Rights Constants" and "Generic
// Access Rights"). On a directory, FILE_ADD_FILE is the same bit as
// FILE_WRITE_DATA and FILE_ADD_SUBDIRECTORY as FILE_APPEND_DATA.
const (
	fileReadData    = 0x00000001
	fileWriteData   = 0x00000002 // FILE_ADD_FILE on a directory
	fileAppendData  = 0x00000004 // FILE_ADD_SUBDIRECTORY on a directory
	fileDeleteChild = 0x00000040
	accessDelete    = 0x00010000
	writeDAC        = 0x00040000
	writeOwner      = 0x00080000
	genericAll      = 0x10000000
	genericWrite    = 0x40000000
	genericRead     = 0x80000000
)

// changeAccess is what lets someone plant, replace or remove entries, or
// rewrite the rules themselves.
const changeAccess = fileWriteData | fileAppendData | fileDeleteChild | accessDelete | writeDAC | writeOwner | genericWrite | genericAll

// anyAccess adds reading the contents: the identity key must not be read
// by anyone else, the mirror of mode 0600.
const anyAccess = changeAccess | fileReadData | genericRead

// Well-known SIDs the checks name or trust.
const (
	sidSystem         = "S-1-5-18"
	sidAdministrators = "S-1-5-32-544"
	// sidOwnerRights stands for whoever owns the object, and the owner is
	// checked separately.
	sidOwnerRights = "S-1-3-4"
	// sidCreatorOwner is a placeholder in inheritable entries, replaced by
	// the creator of each new child: us.
	sidCreatorOwner = "S-1-3-0"
)

// wellKnownName names the SIDs that commonly appear in a wrong ACL, for
// the error message when the account cannot be looked up.
func wellKnownName(sid string) string {
	switch sid {
	case "S-1-1-0":
		return "Everyone"
	case "S-1-5-11":
		return `NT AUTHORITY\Authenticated Users`
	case "S-1-5-4":
		return `NT AUTHORITY\INTERACTIVE`
	case "S-1-5-32-545":
		return `BUILTIN\Users`
	case "S-1-5-32-546":
		return `BUILTIN\Guests`
	case "S-1-3-1":
		return "CREATOR GROUP"
	}
	return ""
}

// aceKind is what an access-control entry does.
type aceKind int

const (
	aceAllow aceKind = iota
	aceDeny
	// aceOther is an entry the check cannot read (object and callback
	// entries); it may grant access, so it counts against the path.
	aceOther
)

// ace is one access-control entry.
type ace struct {
	kind aceKind
	sid  string // S-1-... form; empty for aceOther
	mask uint32
}

// unreadableRule names an aceOther entry in a message.
const unreadableRule = "an access rule of a kind this check cannot read"

// securityInfo is what the checks read from a security descriptor.
type securityInfo struct {
	owner string
	// noDACL: the descriptor has no DACL or a NULL one, which grants
	// everyone everything.
	noDACL bool
	aces   []ace
}

// judgeACL checks that only user (and the machine's administrators and
// SYSTEM, who can take any file anyway) owns path and holds any of the
// access bits in need. name turns a SID into an account name for the
// message ("" when unknown).
//
// Deny entries are not credited: an allow entry for another user counts
// even if a deny entry might cancel it. That is stricter than Windows
// itself, and never wrong in the dangerous direction.
func judgeACL(path string, si securityInfo, user string, need uint32, dir bool, name func(sid string) string) error {
	trusted := func(sid string) bool {
		return sid == user || sid == sidSystem || sid == sidAdministrators
	}
	if !trusted(si.owner) {
		return &Error{Path: path, Problem: "belongs to another user (" + describeSID(si.owner, name) + ")", Kind: ErrNotOwner}
	}
	if si.noDACL {
		return &Error{Path: path, Problem: "has no access control list, so every user can use it", Fix: icaclsFix(path, user, dir, nil), Kind: ErrExposed}
	}
	var who []string
	var sids []string
	for _, a := range si.aces {
		if a.kind == aceDeny || trusted(a.sid) || a.sid == sidOwnerRights || a.sid == sidCreatorOwner {
			continue
		}
		if a.kind == aceOther {
			// icacls /inheritance:r removes it when it was inherited;
			// an explicit one needs a person to look.
			if !slices.Contains(who, unreadableRule) {
				who = append(who, unreadableRule)
			}
			continue
		}
		if a.mask&need == 0 {
			continue
		}
		if !slices.Contains(sids, a.sid) {
			sids = append(sids, a.sid)
			who = append(who, describeSID(a.sid, name))
		}
	}
	if len(who) == 0 {
		return nil
	}
	verb := "can be changed by"
	if need&fileReadData != 0 {
		verb = "can be read or changed by"
	}
	return &Error{Path: path, Problem: verb + " " + strings.Join(who, ", "), Fix: icaclsFix(path, user, dir, sids), Kind: ErrExposed}
}

// describeSID names a SID for people: "BUILTIN\Users (S-1-5-32-545)".
func describeSID(sid string, name func(string) string) string {
	n := ""
	if name != nil {
		n = name(sid)
	}
	if n == "" {
		n = wellKnownName(sid)
	}
	if n == "" {
		return sid
	}
	return n + " (" + sid + ")"
}

// icaclsFix is the command that leaves only the user's own full-control
// entry on path: inherited entries are dropped (/inheritance:r), the
// user's grant replaces any other of theirs, and the named others lose
// theirs. SIDs are given in icacls's "*S-1-..." form, which works in any
// language of Windows.
func icaclsFix(path, user string, dir bool, remove []string) string {
	grant := "*" + user + ":F"
	if dir {
		grant = "*" + user + ":(OI)(CI)F"
	}
	s := fmt.Sprintf(`icacls "%s" /inheritance:r /grant:r %s`, path, grant)
	if len(remove) > 0 {
		s += " /remove:g"
		for _, sid := range remove {
			s += " *" + sid
		}
	}
	return s
}
