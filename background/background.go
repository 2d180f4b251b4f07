// Package background runs minik's helper processes that outlive the
// command that starts them (the autoscaler's agent, the kvm driver's
// image server). Each is found again by its pid file and its command
// line, so a reused pid is never taken for it.
package background

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Start starts cmd in a session of its own, its output appended to
// logFile, and writes its pid to pidFile. It returns once the process
// shows marker as one argument of its command line (until it has exec'd, a child shows
// its parent's), so Running finds it from then on.
func Start(cmd *exec.Cmd, pidFile, logFile, marker string) error {
	if err := os.MkdirAll(filepath.Dir(pidFile), 0o700); err != nil {
		return err
	}
	log, err := os.OpenFile(logFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer log.Close()
	cmd.Stdout, cmd.Stderr = log, log
	detach(cmd)
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", filepath.Base(cmd.Path), err)
	}
	if err := os.WriteFile(pidFile, []byte(strconv.Itoa(cmd.Process.Pid)), 0o600); err != nil {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		return err
	}
	for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if _, ok := Running(pidFile, marker); ok {
			break
		}
	}
	return cmd.Process.Release()
}

// Running returns the pid in pidFile when that process runs and marker
// is one argument of its command line.
func Running(pidFile, marker string) (int, bool) {
	b, err := os.ReadFile(pidFile)
	if err != nil {
		return 0, false
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return 0, false
	}
	args, ok := commandLine(pid)
	if !ok || !slices.Contains(args, marker) {
		return 0, false
	}
	return pid, true
}

// Stop asks the process to end, kills it after grace, and removes
// pidFile; one that does not run is no error.
func Stop(pidFile, marker string, grace time.Duration) error {
	if pid, ok := Running(pidFile, marker); ok {
		terminate(pid, false)
		deadline := time.Now().Add(grace)
		for {
			if _, ok := Running(pidFile, marker); !ok {
				break
			}
			if time.Now().After(deadline) {
				terminate(pid, true)
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	if err := os.Remove(pidFile); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}
