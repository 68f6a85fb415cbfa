package private

import (
	"errors"
	"strings"
	"testing"
)

// Masks as Windows stores them for the rights icacls calls F, M, RX and R.
const (
	maskFull       = 0x1F01FF
	maskModify     = 0x1301BF
	maskReadExec   = 0x1200A9
	maskRead       = 0x120089
	maskReadAttrib = 0x000080
)

const (
	me      = "S-1-5-21-1111-2222-3333-1001"
	other   = "S-1-5-21-1111-2222-3333-1002"
	users   = "S-1-5-32-545"
	every   = "S-1-1-0"
	creator = "S-1-3-1"
)

func allow(sid string, mask uint32) ace { return ace{kind: aceAllow, sid: sid, mask: mask} }

func TestJudgeACL(t *testing.T) {
	// The ACL a directory under the user's profile inherits.
	profile := []ace{allow(sidSystem, maskFull), allow(sidAdministrators, maskFull), allow(me, maskFull)}
	cases := []struct {
		name    string
		si      securityInfo
		need    uint32
		dir     bool
		kind    error    // nil: private
		says    []string // in the message
		notSays []string
	}{
		{name: "created by MkdirAll: only me", si: securityInfo{owner: me, aces: []ace{allow(me, maskFull)}}, need: changeAccess, dir: true},
		{name: "inherited from the profile", si: securityInfo{owner: me, aces: profile}, need: changeAccess, dir: true},
		{name: "key inherited from the profile", si: securityInfo{owner: me, aces: profile}, need: anyAccess},
		{name: "owned by the administrators (elevated run)", si: securityInfo{owner: sidAdministrators, aces: profile}, need: anyAccess},
		{name: "owner rights and creator owner are me", si: securityInfo{owner: me, aces: append([]ace{allow(sidOwnerRights, maskFull), allow(sidCreatorOwner, genericAll)}, profile...)}, need: changeAccess, dir: true},
		{name: "others may read a directory", si: securityInfo{owner: me, aces: append([]ace{allow(users, maskReadExec)}, profile...)}, need: changeAccess, dir: true},
		{name: "others may read a key's attributes", si: securityInfo{owner: me, aces: append([]ace{allow(users, maskReadAttrib)}, profile...)}, need: anyAccess},
		{name: "deny entries change nothing", si: securityInfo{owner: me, aces: append([]ace{{kind: aceDeny, sid: every, mask: maskFull}}, profile...)}, need: anyAccess},

		{name: "others may read the key", si: securityInfo{owner: me, aces: append([]ace{allow(users, maskRead)}, profile...)}, need: anyAccess,
			kind: ErrExposed, says: []string{"can be read or changed by BUILTIN\\Users (S-1-5-32-545)", `icacls "C:\p" /inheritance:r /grant:r *` + me + `:F /remove:g *S-1-5-32-545`}},
		{name: "everyone may plant files", si: securityInfo{owner: me, aces: append(profile, allow(every, maskModify))}, need: changeAccess, dir: true,
			kind: ErrExposed, says: []string{"can be changed by Everyone (S-1-1-0)", `/grant:r *` + me + `:(OI)(CI)F /remove:g *S-1-1-0`}},
		{name: "generic write alone counts", si: securityInfo{owner: me, aces: append(profile, allow(other, genericWrite))}, need: changeAccess, dir: true,
			kind: ErrExposed, says: []string{other}},
		{name: "a deny entry does not excuse a grant", si: securityInfo{owner: me, aces: append([]ace{{kind: aceDeny, sid: users, mask: maskFull}, allow(users, maskFull)}, profile...)}, need: changeAccess, dir: true,
			kind: ErrExposed, says: []string{"BUILTIN\\Users"}},
		{name: "each other user named once", si: securityInfo{owner: me, aces: append(profile, allow(users, maskRead), allow(other, maskFull), allow(users, maskModify))}, need: anyAccess,
			kind: ErrExposed, says: []string{"BUILTIN\\Users (S-1-5-32-545), " + other, "/remove:g *S-1-5-32-545 *" + other}},
		{name: "creator group is not me", si: securityInfo{owner: me, aces: append(profile, allow(creator, genericAll))}, need: changeAccess, dir: true,
			kind: ErrExposed, says: []string{"CREATOR GROUP"}},
		{name: "a rule the check cannot read", si: securityInfo{owner: me, aces: append(profile, ace{kind: aceOther, mask: maskRead})}, need: anyAccess,
			kind: ErrExposed, says: []string{unreadableRule, "/inheritance:r"}, notSays: []string{"/remove:g"}},
		{name: "no DACL at all", si: securityInfo{owner: me, noDACL: true}, need: changeAccess, dir: true,
			kind: ErrExposed, says: []string{"no access control list", "/inheritance:r"}},
		{name: "owned by another user", si: securityInfo{owner: other, aces: profile}, need: changeAccess, dir: true,
			kind: ErrNotOwner, says: []string{"belongs to another user (" + other + ")"}},
		{name: "unknown owner", si: securityInfo{aces: profile}, need: anyAccess, kind: ErrNotOwner},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := judgeACL(`C:\p`, c.si, me, c.need, c.dir, nil)
			if c.kind == nil {
				if err != nil {
					t.Fatalf("judged not private: %v", err)
				}
				return
			}
			if !errors.Is(err, c.kind) {
				t.Fatalf("err %v; want %v", err, c.kind)
			}
			var pe *Error
			if !errors.As(err, &pe) || pe.Path != `C:\p` {
				t.Fatalf("err %#v is not an *Error for the path", err)
			}
			for _, s := range c.says {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("message %q does not say %q", err, s)
				}
			}
			for _, s := range c.notSays {
				if strings.Contains(err.Error(), s) {
					t.Errorf("message %q says %q", err, s)
				}
			}
		})
	}
}

func TestJudgeACLNamesAccounts(t *testing.T) {
	si := securityInfo{owner: me, aces: []ace{allow(me, maskFull), allow(other, maskRead)}}
	name := func(sid string) string {
		if sid == other {
			return `HOST\bob`
		}
		return ""
	}
	err := judgeACL(`C:\k`, si, me, anyAccess, false, name)
	if err == nil || !strings.Contains(err.Error(), `HOST\bob (`+other+`)`) {
		t.Fatalf("err %v; want the account name of the SID", err)
	}
}

func TestShellQuote(t *testing.T) {
	for in, want := range map[string]string{
		"/home/a/.config/p2ptui":                 "/home/a/.config/p2ptui",
		"/Users/a/Library/Application Support/x": "'/Users/a/Library/Application Support/x'",
		"/tmp/it's":                              `'/tmp/it'\''s'`,
		"":                                       "''",
	} {
		if got := shellQuote(in); got != want {
			t.Errorf("shellQuote(%q) = %s; want %s", in, got, want)
		}
	}
}
