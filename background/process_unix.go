//go:build !windows

package background

import (
	"os/exec"
	"syscall"
)

// detach gives a command its own session, so it outlives its starter and
// its terminal.
func detach(cmd *exec.Cmd) { cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true} }

// terminate asks a process to end (SIGTERM), or ends it (SIGKILL).
func terminate(pid int, kill bool) {
	sig := syscall.SIGTERM
	if kill {
		sig = syscall.SIGKILL
	}
	_ = syscall.Kill(pid, sig)
}
