package main

import (
	"os"
	"runtime/pprof"
	"strconv"
	"strings"
	"time"

	"k8s.io/klog/v2"
)

// profileEnv names a file for a CPU profile of the first seconds of the
// node (profileSecondsEnv, default 5): where start time goes (make bench).
// With profileDelayEnv (seconds) it starts that much later: where an idle
// node's time goes. A "%p" in the file name becomes the process ID, so the
// control-plane node and the node host of one cluster keep a profile each.
const (
	profileEnv        = "MINIK_NODE_CPUPROFILE"
	profileSecondsEnv = "MINIK_NODE_CPUPROFILE_SECONDS"
	profileDelayEnv   = "MINIK_NODE_CPUPROFILE_DELAY"
)

// startProfile starts the profile when asked; it stops on its own.
func startProfile() {
	path := os.Getenv(profileEnv)
	if path == "" {
		return
	}
	path = strings.ReplaceAll(path, "%p", strconv.Itoa(os.Getpid()))
	seconds, err := strconv.Atoi(os.Getenv(profileSecondsEnv))
	if err != nil || seconds <= 0 {
		seconds = 5
	}
	if delay, err := strconv.Atoi(os.Getenv(profileDelayEnv)); err == nil && delay > 0 {
		time.AfterFunc(time.Duration(delay)*time.Second, func() { profileFor(path, seconds) })
		return
	}
	profileFor(path, seconds)
}

// profileFor writes a CPU profile of the next seconds to path.
func profileFor(path string, seconds int) {
	f, err := os.Create(path)
	if err != nil {
		klog.ErrorS(err, "create CPU profile")
		return
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		klog.ErrorS(err, "start CPU profile")
		f.Close()
		return
	}
	time.AfterFunc(time.Duration(seconds)*time.Second, func() {
		pprof.StopCPUProfile()
		f.Close()
	})
}
