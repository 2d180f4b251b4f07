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

// heapProfileEnv names a file for a heap profile written once,
// heapProfileDelayEnv seconds (default 30) after the node starts: what a
// settled node holds ("%p" as above).
const (
	heapProfileEnv      = "MINIK_NODE_HEAPPROFILE"
	heapProfileDelayEnv = "MINIK_NODE_HEAPPROFILE_DELAY"
)

// startProfile starts the profiles asked for; they stop on their own.
func startProfile() {
	startHeapProfile()
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

func startHeapProfile() {
	path := os.Getenv(heapProfileEnv)
	if path == "" {
		return
	}
	path = strings.ReplaceAll(path, "%p", strconv.Itoa(os.Getpid()))
	delay, err := strconv.Atoi(os.Getenv(heapProfileDelayEnv))
	if err != nil || delay <= 0 {
		delay = 30
	}
	time.AfterFunc(time.Duration(delay)*time.Second, func() {
		f, err := os.Create(path)
		if err != nil {
			klog.ErrorS(err, "create heap profile")
			return
		}
		defer f.Close()
		if err := pprof.Lookup("heap").WriteTo(f, 0); err != nil {
			klog.ErrorS(err, "write heap profile")
		}
	})
}
