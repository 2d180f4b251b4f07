package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/debug"
	"time"

	"golang.org/x/sys/unix"
	"gopkg.in/natefinch/lumberjack.v2"
	"k8s.io/klog/v2"
)

// keepAgentLog copies everything this process writes to stderr (klog, the
// control plane's components, the Go runtime) into path as well, rotated,
// for the node log query; the output still reaches the original stderr
// (the node container's log) first. It does nothing when stderr already
// is path (a process node's log file). stop drains and restores stderr.
func keepAgentLog(path string) (stop func(), err error) {
	if same(path, os.Stderr) {
		return func() {}, nil
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("keep the agent log: %w", err)
	}
	file := &lumberjack.Logger{Filename: path, MaxSize: 10, MaxBackups: 3}
	origFD, err := unix.Dup(2)
	if err != nil {
		return nil, fmt.Errorf("keep the agent log: %w", err)
	}
	orig := os.NewFile(uintptr(origFD), "stderr")
	r, w, err := os.Pipe()
	if err != nil {
		_ = orig.Close()
		return nil, fmt.Errorf("keep the agent log: %w", err)
	}
	if err := unix.Dup3(int(w.Fd()), 2, 0); err != nil {
		_, _ = orig.Close(), w.Close()
		return nil, fmt.Errorf("keep the agent log: %w", err)
	}
	_ = w.Close() // fd 2 holds the pipe's write end now
	// A crash kills the process before the copy below could pass it on.
	_ = debug.SetCrashOutput(orig, debug.CrashOptions{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _ = io.Copy(teeWriter{orig, file}, r)
	}()
	return func() {
		klog.Flush()
		_ = unix.Dup3(origFD, 2, 0) // closes the pipe's last write end
		select {
		case <-done:
		case <-time.After(2 * time.Second):
		}
		_ = file.Close()
	}, nil
}

func same(path string, f *os.File) bool {
	a, err := os.Stat(path)
	if err != nil {
		return false
	}
	b, err := f.Stat()
	return err == nil && os.SameFile(a, b)
}

// teeWriter writes to primary, and to secondary when it can: a full disk
// under the log file must not block the process's output.
type teeWriter struct{ primary, secondary io.Writer }

func (t teeWriter) Write(p []byte) (int, error) {
	n, err := t.primary.Write(p)
	_, _ = t.secondary.Write(p)
	return n, err
}
