package kvm

import (
	"os"
	"os/exec"
)

// detach does nothing: libvirt's kvm driver does not run on Windows.
func detach(*exec.Cmd) {}

func terminate(pid int, _ bool) {
	if p, err := os.FindProcess(pid); err == nil {
		_ = p.Kill()
	}
}
