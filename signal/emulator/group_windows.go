package emulator

import (
	"os/exec"
	"strconv"
	"syscall"
)

// ownGroup starts the launcher (gcloud.cmd) in a new process group, so a
// console Ctrl+C meant for the tests does not reach it half-way.
func ownGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{CreationFlags: syscall.CREATE_NEW_PROCESS_GROUP}
}

// stopGroup ends the launcher and the processes it started (python, java):
// Windows has no signal for a process tree, so taskkill walks it.
func stopGroup(cmd *exec.Cmd) {
	_ = exec.Command("taskkill", "/T", "/F", "/PID", strconv.Itoa(cmd.Process.Pid)).Run()
	_ = cmd.Process.Kill()
}
