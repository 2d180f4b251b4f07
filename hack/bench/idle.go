package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// clockTicks is the kernel's USER_HZ, the unit of /proc/PID/stat's times:
// 100 on every Linux this runs on.
const clockTicks = 100

// benchIdle starts a 1-node cluster, lets it settle, and measures what it
// costs doing nothing: CPU (% of one core) over a window, and memory.
func benchIdle(mk minikCmd, home string, settle, window time.Duration) error {
	if out, err := mk("start", "-p", "idle").CombinedOutput(); err != nil {
		return fmt.Errorf("start: %w: %s", err, out)
	}
	defer func() { _ = mk("delete", "-p", "idle").Run() }()
	cost, err := measureIdle(home+"/profiles/idle/", settle, window)
	if err != nil {
		return err
	}
	fmt.Printf("idle 1-node cluster (after %s settling, over %s): %s\n\n", settle, window, cost)
	return nil
}

// idleCost is what a settled cluster's node processes used over a window.
type idleCost struct {
	busy   time.Duration // CPU time
	window time.Duration
	pssKiB int64
}

func (c idleCost) String() string {
	return fmt.Sprintf("%.1f%% of one core (%.2f CPU-s), node processes' PSS %d MiB",
		100*c.busy.Seconds()/c.window.Seconds(), c.busy.Seconds(), c.pssKiB/1024)
}

// measureIdle lets the cluster whose node processes name dir settle, then
// measures their CPU over window and their memory at its end.
func measureIdle(dir string, settle, window time.Duration) (idleCost, error) {
	time.Sleep(settle)
	before, err := nodeCPUTicks(dir)
	if err != nil {
		return idleCost{}, err
	}
	time.Sleep(window)
	after, err := nodeCPUTicks(dir)
	if err != nil {
		return idleCost{}, err
	}
	_, pss, err := nodeMemory(dir)
	if err != nil {
		return idleCost{}, err
	}
	return idleCost{busy: time.Duration(after-before) * time.Second / clockTicks, window: window, pssKiB: pss}, nil
}

// nodeCPUTicks sums user and system time of the processes whose command
// line names dir: a cluster's nodes, or a peer's components.
func nodeCPUTicks(dir string) (int64, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return 0, errors.New("CPU figures need /proc (Linux)")
	}
	var ticks int64
	for _, e := range entries {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || !bytes.Contains(cmdline, []byte(dir)) {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// The command may hold spaces: fields count from after its ')'.
		i := bytes.LastIndexByte(stat, ')')
		f := strings.Fields(string(stat[i+1:]))
		if len(f) < 13 {
			continue
		}
		utime, _ := strconv.ParseInt(f[11], 10, 64)
		stime, _ := strconv.ParseInt(f[12], 10, 64)
		ticks += utime + stime
	}
	return ticks, nil
}
