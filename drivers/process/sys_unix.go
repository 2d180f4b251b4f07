//go:build !linux && !windows

package process

import (
	"os"
	"syscall"
)

func detached() *syscall.SysProcAttr { return &syscall.SysProcAttr{Setsid: true} }

func terminate(pid int) error { return syscall.Kill(pid, syscall.SIGTERM) }

func kill(pid int) error { return syscall.Kill(pid, syscall.SIGKILL) }

func signalZero(p *os.Process) bool { return p.Signal(syscall.Signal(0)) == nil }

func reload(pid int) error { return syscall.Kill(pid, syscall.SIGHUP) }
