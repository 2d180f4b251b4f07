package background

import (
	"os"
	"os/exec"
	"syscall"
)

// detach starts the command in a process group of its own, so Ctrl-C in
// the starter's console does not reach it.
func detach(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{CreationFlags: syscall.CREATE_NEW_PROCESS_GROUP}
}

// terminate ends a process: Windows has no SIGTERM to ask with.
func terminate(pid int, _ bool) {
	if p, err := os.FindProcess(pid); err == nil {
		_ = p.Kill()
	}
}
