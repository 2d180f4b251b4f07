package process

import (
	"os"
	"syscall"
)

// CREATE_NEW_PROCESS_GROUP keeps a console Ctrl-C from reaching the node.
func detached() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{CreationFlags: syscall.CREATE_NEW_PROCESS_GROUP}
}

// Windows has no SIGTERM for other processes: a stop is a kill.
func terminate(pid int) error { return kill(pid) }

func kill(pid int) error {
	p, err := os.FindProcess(pid)
	if err != nil {
		return err
	}
	return p.Kill()
}

func signalZero(p *os.Process) bool {
	// FindProcess on Windows opens a handle, which fails for a dead pid.
	return p != nil
}

// reload has no signal to send on Windows: the host polls its folder.
func reload(pid int) error { return nil }
