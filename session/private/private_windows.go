package private

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"unsafe"

	"golang.org/x/sys/windows"
)

// currentUser is the SID of the user this process runs as.
func currentUser() (*windows.SID, error) {
	tu, err := windows.GetCurrentProcessToken().GetTokenUser()
	if err != nil {
		return nil, fmt.Errorf("find the current user: %w", err)
	}
	return tu.User.Sid.Copy()
}

// ownerOnly is a security descriptor whose protected DACL (no entries
// inherited from the parent) grants full control to user alone; on a
// directory the entry is inherited by everything created inside.
func ownerOnly(user *windows.SID, dir bool) (*windows.SECURITY_DESCRIPTOR, error) {
	inherit := ""
	if dir {
		inherit = "OICI"
	}
	return windows.SecurityDescriptorFromString("D:P(A;" + inherit + ";FA;;;" + user.String() + ")")
}

// MkdirAll creates dir and any missing parents. Parents get the usual
// inherited permissions; dir itself is created with an access control
// list that lets only this user in. An existing dir is left as it is:
// CheckDir judges it.
func MkdirAll(dir string) error {
	if _, err := os.Lstat(dir); err == nil {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o700); err != nil {
		return fmt.Errorf("create %s: %w", dir, err)
	}
	user, err := currentUser()
	if err != nil {
		return fmt.Errorf("create %s: %w", dir, err)
	}
	sd, err := ownerOnly(user, true)
	if err != nil {
		return fmt.Errorf("create %s: %w", dir, err)
	}
	p, err := windows.UTF16PtrFromString(dir)
	if err != nil {
		return fmt.Errorf("create %s: %w", dir, err)
	}
	sa := windows.SecurityAttributes{Length: uint32(unsafe.Sizeof(windows.SecurityAttributes{})), SecurityDescriptor: sd}
	if err := windows.CreateDirectory(p, &sa); err != nil && !errors.Is(err, windows.ERROR_ALREADY_EXISTS) {
		return fmt.Errorf("create %s: %w", dir, err)
	}
	return nil
}

// CheckDir checks that dir is a real directory (not a symbolic link or a
// junction), owned by this user (or the administrators), whose access
// control list lets no one else create, rename or delete entries in it.
func CheckDir(dir string) error {
	fi, err := os.Lstat(dir)
	if err != nil {
		return fmt.Errorf("check %s: %w", dir, err)
	}
	if fi.Mode()&(os.ModeSymlink|os.ModeIrregular) != 0 {
		return &Error{Path: dir, Problem: "is a symbolic link or junction; use the directory it points to, or another one", Kind: ErrNotPlain}
	}
	if !fi.IsDir() {
		return &Error{Path: dir, Problem: "is not a directory", Kind: ErrNotPlain}
	}
	sd, err := windows.GetNamedSecurityInfo(dir, windows.SE_FILE_OBJECT, windows.OWNER_SECURITY_INFORMATION|windows.DACL_SECURITY_INFORMATION)
	if err != nil {
		return fmt.Errorf("check %s: read its permissions: %w", dir, err)
	}
	return judge(dir, sd, changeAccess, true)
}

// Restrict gives f, a file this process just created, an access control
// list that lets only this user in, before anything secret is written to
// it.
func Restrict(f *os.File) error {
	user, err := currentUser()
	if err != nil {
		return fmt.Errorf("restrict %s: %w", f.Name(), err)
	}
	sd, err := ownerOnly(user, false)
	if err != nil {
		return fmt.Errorf("restrict %s: %w", f.Name(), err)
	}
	dacl, _, err := sd.DACL()
	if err != nil {
		return fmt.Errorf("restrict %s: %w", f.Name(), err)
	}
	// By name: the handle os.Create returns was not opened with WRITE_DAC.
	err = windows.SetNamedSecurityInfo(f.Name(), windows.SE_FILE_OBJECT,
		windows.DACL_SECURITY_INFORMATION|windows.PROTECTED_DACL_SECURITY_INFORMATION, nil, nil, dacl, nil)
	if err != nil {
		return fmt.Errorf("restrict %s: %w", f.Name(), err)
	}
	return nil
}

// CheckFile checks that the open file f is a regular file that no one but
// this user (and the administrators) may read or change.
func CheckFile(f *os.File) error {
	if _, err := statRegular(f); err != nil {
		return err
	}
	sd, err := windows.GetSecurityInfo(windows.Handle(f.Fd()), windows.SE_FILE_OBJECT, windows.OWNER_SECURITY_INFORMATION|windows.DACL_SECURITY_INFORMATION)
	if err != nil {
		return fmt.Errorf("check %s: read its permissions: %w", f.Name(), err)
	}
	return judge(f.Name(), sd, anyAccess, false)
}

// judge reads sd into the plain form judgeACL rules on.
func judge(path string, sd *windows.SECURITY_DESCRIPTOR, need uint32, dir bool) error {
	user, err := currentUser()
	if err != nil {
		return fmt.Errorf("check %s: %w", path, err)
	}
	si, err := readDescriptor(sd)
	if err != nil {
		return fmt.Errorf("check %s: read its permissions: %w", path, err)
	}
	return judgeACL(path, si, user.String(), need, dir, accountName)
}

func readDescriptor(sd *windows.SECURITY_DESCRIPTOR) (securityInfo, error) {
	var si securityInfo
	owner, _, err := sd.Owner()
	if err != nil {
		return si, err
	}
	if owner != nil {
		si.owner = owner.String()
	}
	dacl, _, err := sd.DACL()
	if errors.Is(err, windows.ERROR_OBJECT_NOT_FOUND) || (err == nil && dacl == nil) {
		si.noDACL = true
		return si, nil
	}
	if err != nil {
		return si, err
	}
	for i := range uint32(dacl.AceCount) {
		var e *windows.ACCESS_ALLOWED_ACE
		if err := windows.GetAce(dacl, i, &e); err != nil {
			return si, err
		}
		a := ace{kind: aceOther, mask: uint32(e.Mask)}
		// Only the two basic entry types have the SID right after the
		// mask; the others are judged as "may grant anything".
		switch e.Header.AceType {
		case windows.ACCESS_ALLOWED_ACE_TYPE:
			a.kind = aceAllow
		case windows.ACCESS_DENIED_ACE_TYPE:
			a.kind = aceDeny
		}
		if a.kind != aceOther {
			a.sid = (*windows.SID)(unsafe.Pointer(&e.SidStart)).String()
		}
		si.aces = append(si.aces, a)
	}
	return si, nil
}

// accountName looks a SID up: "BUILTIN\Users"; "" when it cannot.
func accountName(sid string) string {
	s, err := windows.StringToSid(sid)
	if err != nil {
		return ""
	}
	account, domain, _, err := s.LookupAccount("")
	if err != nil {
		return ""
	}
	if domain == "" {
		return account
	}
	return domain + `\` + account
}
