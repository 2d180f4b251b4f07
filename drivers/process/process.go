// Package process is the embedded default driver: each node is a minik-node
// process on this machine, in its own session so it outlives `minik start`.
package process

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"minik.dev/minik/drivers"
)

// Name is the driver's name on the command line.
const Name = "process"

// stopTimeout bounds a graceful stop before the node is killed.
const stopTimeout = 20 * time.Second

// Driver runs nodes as local processes.
type Driver struct {
	findBinary func() (string, error)
}

// New returns the process driver; findBinary locates minik-node.
func New(findBinary func() (string, error)) *Driver {
	return &Driver{findBinary: findBinary}
}

// Info implements drivers.Driver.
func (d *Driver) Info() drivers.Info {
	return drivers.Info{
		Name:        Name,
		Description: "nodes are minik-node processes on this machine (no dependency)",
		Runtime:     "sim",
		Priority:    0,
	}
}

// Health implements drivers.Driver: the driver needs only minik-node.
func (d *Driver) Health(ctx context.Context) error {
	if _, err := d.findBinary(); err != nil {
		return &drivers.HealthError{Driver: Name, Problem: err.Error()}
	}
	return nil
}

func pidPath(n drivers.Node) string { return filepath.Join(n.Dir, "node.pid") }

// LogPath implements drivers.LogLocator: where a node's output goes.
func (d *Driver) LogPath(n drivers.Node) string { return filepath.Join(n.Dir, "node.log") }

// StartNode implements drivers.Driver.
func (d *Driver) StartNode(ctx context.Context, n drivers.Node) error {
	if _, ok := d.running(n); ok {
		return nil
	}
	bin, err := d.findBinary()
	if err != nil {
		return fmt.Errorf("start node %s: %w", n.Name, err)
	}
	if err := os.MkdirAll(n.Dir, 0o700); err != nil {
		return fmt.Errorf("start node %s: %w", n.Name, err)
	}
	logFile, err := os.OpenFile(d.LogPath(n), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("start node %s: open log: %w", n.Name, err)
	}
	defer logFile.Close()
	fmt.Fprintf(logFile, "==== minik-node starting at %s ====\n", time.Now().Format(time.RFC3339))

	// Not exec.CommandContext: the node must outlive this command.
	cmd := exec.Command(bin, "--config", n.ConfigPath, "--cluster", n.Cluster, "--role", n.Role)
	cmd.Dir = n.Dir
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	cmd.Env = append(os.Environ(), "GOTRACEBACK=all")
	cmd.SysProcAttr = detached()
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start node %s: %w", n.Name, err)
	}
	if err := os.WriteFile(pidPath(n), []byte(strconv.Itoa(cmd.Process.Pid)), 0o600); err != nil {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		return fmt.Errorf("start node %s: write pid file: %w", n.Name, err)
	}
	// Reap the child if it exits while this process lives (tests, bench),
	// so it never lingers as a zombie that looks alive.
	go func() { _ = cmd.Wait() }()
	return nil
}

// StopNode implements drivers.Driver: SIGTERM, then SIGKILL after stopTimeout.
func (d *Driver) StopNode(ctx context.Context, n drivers.Node) error {
	pid, ok := d.running(n)
	if !ok {
		_ = os.Remove(pidPath(n))
		return nil
	}
	if err := terminate(pid); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("stop node %s: %w", n.Name, err)
	}
	deadline := time.Now().Add(stopTimeout)
	for time.Now().Before(deadline) {
		if _, ok := d.running(n); !ok {
			_ = os.Remove(pidPath(n))
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("stop node %s: %w", n.Name, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
	if err := kill(pid); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("stop node %s: kill: %w", n.Name, err)
	}
	for i := 0; i < 100; i++ {
		if _, ok := d.running(n); !ok {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	_ = os.Remove(pidPath(n))
	return nil
}

// DeleteNode implements drivers.Driver.
func (d *Driver) DeleteNode(ctx context.Context, n drivers.Node) error {
	if err := d.StopNode(ctx, n); err != nil {
		return err
	}
	if err := os.RemoveAll(n.Dir); err != nil {
		return fmt.Errorf("delete node %s: %w", n.Name, err)
	}
	return nil
}

// NodeState implements drivers.Driver.
func (d *Driver) NodeState(ctx context.Context, n drivers.Node) (string, error) {
	if _, ok := d.running(n); ok {
		return drivers.StateRunning, nil
	}
	return drivers.StateStopped, nil
}

// PID returns the node's process id when it runs.
func (d *Driver) PID(n drivers.Node) (int, bool) { return d.running(n) }

// running reads the pid file and checks that the process is alive and is
// this node's minik-node, not an unrelated process that reused the pid.
func (d *Driver) running(n drivers.Node) (int, bool) {
	data, err := os.ReadFile(pidPath(n))
	if err != nil {
		return 0, false
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil || pid <= 0 {
		return 0, false
	}
	return pid, processMatches(pid, []byte(n.ConfigPath))
}

// argsContain reports whether a NUL-separated argument list holds want.
func argsContain(cmdline, want []byte) bool {
	for _, arg := range bytes.Split(cmdline, []byte{0}) {
		if bytes.Equal(arg, want) {
			return true
		}
	}
	return false
}
