package process

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"

	"minik.dev/minik/drivers"
)

func detached() *syscall.SysProcAttr { return &syscall.SysProcAttr{Setsid: true} }

func terminate(pid int) error { return syscall.Kill(pid, syscall.SIGTERM) }

func kill(pid int) error { return syscall.Kill(pid, syscall.SIGKILL) }

// processMatches reads /proc: the process must be alive and carry the
// node's identifying argument. A process caught mid-exec has an empty
// cmdline for a moment (the parent resumes before the kernel has set up the
// new arguments); it counts as ours, unless it is a kernel thread.
func processMatches(pid int, match []byte) bool {
	state, ppid, ok := procStat(pid)
	if !ok || state == "X" {
		return false
	}
	if state == "Z" {
		// The main thread can be a zombie while the process's other threads
		// are still exiting; they hold its open files (the node's log, its
		// data) until the last one is gone, so a stop that returned now
		// would leave the disk busy.
		return threadsExiting(pid)
	}
	cmdline, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	if err != nil {
		return false
	}
	if len(cmdline) == 0 {
		return ppid != "2" // kthreadd's children are kernel threads
	}
	return argsContain(cmdline, match)
}

// procStat reads a process's state letter and parent pid from
// /proc/PID/stat; they follow the parenthesised command name.
func procStat(pid int) (state, ppid string, ok bool) {
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return "", "", false
	}
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 || i+2 >= len(stat) {
		return "", "", false
	}
	fields := strings.Fields(string(stat[i+1:]))
	if len(fields) < 2 {
		return "", "", false
	}
	return fields[0], fields[1], true
}

// threadsExiting says whether a zombie's thread group still has threads
// besides the zombie main thread.
func threadsExiting(pid int) bool {
	tasks, err := os.ReadDir("/proc/" + strconv.Itoa(pid) + "/task")
	return err == nil && len(tasks) > 1
}

// AllocateIP implements drivers.IPAllocator. On Linux all of 127.0.0.0/8 is
// local, so every node owns an address 127.0.X.Y and keeps the kubelet's
// standard port without clashing with other nodes or clusters. taken holds
// the nodes of this MINIK_HOME; clusters of other homes (parallel CI jobs)
// are avoided by skipping addresses whose kubelet port is in use, and the
// search starts at a random address, so that two starts at the same
// instant rarely try the same one.
func (d *Driver) AllocateIP(taken map[string]bool) (string, error) {
	const first, count = 2, 255*255 - 2
	start := rand.IntN(count)
	for i := range count {
		n := first + (start+i)%count
		ip := net.IPv4(127, 0, byte(n/255), byte(n%255)).String()
		if n%255 == 0 || taken[ip] || !kubeletPortFree(ip) {
			continue
		}
		return ip, nil
	}
	return "", fmt.Errorf("allocate node IP: every loopback address is taken")
}

// reload asks a node host to look at its desired nodes now.
func reload(pid int) error { return syscall.Kill(pid, syscall.SIGHUP) }

// kubeletPort is where every process node serves the kubelet API, on its
// own loopback address.
const kubeletPort = 10250

// kubeletPortFree says whether the kubelet port of ip can be bound now.
func kubeletPortFree(ip string) bool {
	return drivers.Listenable(net.JoinHostPort(ip, strconv.Itoa(kubeletPort)), drivers.PortSettle)
}
