package process

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"strconv"
	"syscall"
)

func detached() *syscall.SysProcAttr { return &syscall.SysProcAttr{Setsid: true} }

func terminate(pid int) error { return syscall.Kill(pid, syscall.SIGTERM) }

func kill(pid int) error { return syscall.Kill(pid, syscall.SIGKILL) }

// processMatches reads /proc: the process must be alive (not a zombie) and
// carry the node's config path among its arguments.
func processMatches(pid int, configPath []byte) bool {
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	// The state follows the parenthesised command name.
	if i := bytes.LastIndexByte(stat, ')'); i < 0 || i+2 >= len(stat) || stat[i+2] == 'Z' || stat[i+2] == 'X' {
		return false
	}
	cmdline, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	if err != nil {
		return false
	}
	return argsContain(cmdline, configPath)
}

// AllocateIP implements drivers.IPAllocator. On Linux all of 127.0.0.0/8 is
// local, so every node owns an address 127.0.N.1 and keeps the kubelet's
// standard port without clashing with other nodes or clusters.
func (d *Driver) AllocateIP(taken map[string]bool) (string, error) {
	for n := 2; n < 255*255; n++ {
		ip := net.IPv4(127, 0, byte(n/255), byte(n%255)).String()
		if n%255 == 0 || taken[ip] {
			continue
		}
		return ip, nil
	}
	return "", fmt.Errorf("allocate node IP: every loopback address is taken")
}

// reload asks a node host to look at its desired nodes now.
func reload(pid int) error { return syscall.Kill(pid, syscall.SIGHUP) }
