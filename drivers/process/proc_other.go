//go:build !linux

package process

import "os"

// processMatches falls back to "the pid is alive" where there is no /proc.
func processMatches(pid int, configPath []byte) bool {
	p, err := os.FindProcess(pid)
	if err != nil {
		return false
	}
	return signalZero(p)
}

// AllocateIP implements drivers.IPAllocator. Outside Linux only 127.0.0.1
// is surely local, so every node shares it.
func (d *Driver) AllocateIP(taken map[string]bool) (string, error) {
	return "127.0.0.1", nil
}

// kubeletPort is where every process node serves the kubelet API.
const kubeletPort = 10250

// kubeletPortFree is not checked outside Linux, where every node shares
// 127.0.0.1.
func kubeletPortFree(string) bool { return true }
