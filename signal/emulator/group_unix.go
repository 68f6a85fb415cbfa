//go:build unix

package emulator

import (
	"os/exec"
	"syscall"
	"time"
)

// ownGroup puts the launcher in a process group of its own, so stopGroup
// reaches the java process it forks too.
func ownGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
}

// stopGroup asks the group to end, waits up to 5 s, then kills what is left.
func stopGroup(cmd *exec.Cmd) {
	pgid := cmd.Process.Pid
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	for i := 0; i < 50; i++ {
		if syscall.Kill(-pgid, 0) != nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
}
