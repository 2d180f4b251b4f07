// Package process is the embedded default driver: nodes run as minik-node
// processes on this machine, in their own session so they outlive
// `minik start`. The control-plane node has a process of its own; worker
// nodes share one "node host" process per cluster, so a hundred simulated
// nodes cost megabytes rather than a process each.
package process

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"minik.dev/minik/drivers"
	"minik.dev/minik/nodeconfig"
)

// Name is the driver's name on the command line.
const Name = "process"

// Timeouts of process operations.
const (
	stopTimeout  = 20 * time.Second
	hostedWait   = 30 * time.Second
	pollInterval = 20 * time.Millisecond
)

// The optional capabilities the driver has.
var (
	_ drivers.Driver          = (*Driver)(nil)
	_ drivers.IPAllocator     = (*Driver)(nil)
	_ drivers.LogTailer       = (*Driver)(nil)
	_ drivers.NodeConfigurer  = (*Driver)(nil)
	_ drivers.NodeLogStreamer = (*Driver)(nil)
)

// Driver runs nodes as local processes.
type Driver struct {
	findBinary func() (string, error)
	// hostMu serialises spawning node hosts: nodes start concurrently.
	hostMu sync.Mutex
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

// proc is one minik-node process: its pid file, log and the argument that
// identifies it in /proc (so a reused pid is never mistaken for it).
type proc struct {
	dir   string
	args  []string
	match string
}

func (p proc) pidPath() string { return filepath.Join(p.dir, "node.pid") }
func (p proc) logPath() string { return filepath.Join(p.dir, "node.log") }

// hosted reports whether a node runs inside its cluster's node host.
func hosted(n drivers.Node) bool { return n.Role == nodeconfig.RoleWorker }

// hostDir is the node host's folder, beside the nodes' folders.
func hostDir(n drivers.Node) string { return filepath.Join(filepath.Dir(n.Dir), ".host") }

func nodeProc(n drivers.Node) proc {
	if hosted(n) {
		dir := hostDir(n)
		return proc{dir: dir, args: []string{"--host-dir", dir, "--cluster", n.Cluster}, match: dir}
	}
	return proc{dir: n.Dir, args: []string{"--config", n.ConfigPath, "--cluster", n.Cluster, "--role", n.Role}, match: n.ConfigPath}
}

// ConfigureNode implements drivers.NodeConfigurer: the node log query
// reads the node's log file (a worker's: its node host's).
func (d *Driver) ConfigureNode(n drivers.Node, cfg *nodeconfig.Config) {
	cfg.AgentLog = d.LogPath(n)
	// The control-plane node runs in this machine's own network
	// namespace: its routes to joined nodes' pods are the host's.
	cfg.RouteJoinedPods = cfg.Role == nodeconfig.RoleControlPlane
}

// LogPath is the file a node's output goes to (a worker's is its node
// host's, which all workers of the cluster share).
func (d *Driver) LogPath(n drivers.Node) string { return nodeProc(n).logPath() }

// TailNodeLog implements drivers.LogTailer: the last lines of the node's
// log file, under its path.
func (d *Driver) TailNodeLog(_ context.Context, n drivers.Node, lines int) string {
	path := d.LogPath(n)
	return "last lines of " + path + ":\n" + drivers.TailLog(path, lines)
}

// StreamNodeLog implements drivers.NodeLogStreamer: the node's log file
// (a worker's is its node host's, which holds every worker of the cluster).
func (d *Driver) StreamNodeLog(ctx context.Context, n drivers.Node, o drivers.NodeLogOptions, w io.Writer) error {
	return drivers.StreamLogFile(ctx, d.LogPath(n), o, w)
}

// StartNode implements drivers.Driver.
func (d *Driver) StartNode(ctx context.Context, n drivers.Node) error {
	if err := os.MkdirAll(n.Dir, 0o700); err != nil {
		return fmt.Errorf("start node %s: %w", n.Name, err)
	}
	p := nodeProc(n)
	// A node that does not run yet needs its kubelet port: another program
	// on it (a cluster of another MINIK_HOME) would take its kubelet API.
	if st, err := d.NodeState(ctx, n); err == nil && st != drivers.StateRunning && n.IP != "" && !kubeletPortFree(n.IP) {
		return fmt.Errorf("start node %s: %s is in use by another program (a cluster of another MINIK_HOME?): stop it, or delete this cluster and create it again to get a free address",
			n.Name, net.JoinHostPort(n.IP, strconv.Itoa(kubeletPort)))
	}
	if !hosted(n) {
		if err := d.spawn(p); err != nil {
			return fmt.Errorf("start node %s: %w", n.Name, err)
		}
		return nil
	}
	desired := filepath.Join(p.dir, nodeconfig.HostDesiredDir, n.Name)
	if err := nodeconfig.WriteFileAtomic(desired, []byte(n.ConfigPath), 0o600); err != nil {
		return fmt.Errorf("start node %s: %w", n.Name, err)
	}
	d.hostMu.Lock()
	if pid, ok := d.alive(p); ok {
		d.reload(p, pid)
	} else if err := d.spawn(p); err != nil {
		d.hostMu.Unlock()
		return fmt.Errorf("start node %s: %w", n.Name, err)
	}
	d.hostMu.Unlock()
	err := d.waitHosted(ctx, p, n, true)
	if err != nil {
		return fmt.Errorf("start node %s: %w", n.Name, err)
	}
	return nil
}

// spawn starts p unless it runs already.
func (d *Driver) spawn(p proc) error {
	if _, ok := d.alive(p); ok {
		return nil
	}
	bin, err := d.findBinary()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(p.dir, 0o700); err != nil {
		return err
	}
	logFile, err := os.OpenFile(p.logPath(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("open log: %w", err)
	}
	defer logFile.Close()
	fmt.Fprintf(logFile, "%s%s ====\n", drivers.LogRunMarker, time.Now().Format(time.RFC3339))

	// Not exec.CommandContext: the node must outlive this command.
	cmd := exec.Command(bin, p.args...)
	cmd.Dir = p.dir
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	cmd.Env = append(os.Environ(), "GOTRACEBACK=all")
	cmd.SysProcAttr = detached()
	if err := cmd.Start(); err != nil {
		return err
	}
	if err := os.WriteFile(p.pidPath(), []byte(strconv.Itoa(cmd.Process.Pid)), 0o600); err != nil {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		return fmt.Errorf("write pid file: %w", err)
	}
	// Reap the child if it exits while this process lives (tests, bench),
	// so it never lingers as a zombie that looks alive.
	go func() { _ = cmd.Wait() }()
	return nil
}

// reload signals a node host to act now, once it has said it handles the
// signal; before that, it reads its folder when it starts.
func (d *Driver) reload(p proc, pid int) {
	data, err := os.ReadFile(filepath.Join(p.dir, nodeconfig.HostReadyFile))
	if err == nil && strings.TrimSpace(string(data)) == strconv.Itoa(pid) {
		_ = reload(pid)
	}
}

// waitHosted waits until the node host runs (or no longer runs) node n.
func (d *Driver) waitHosted(ctx context.Context, p proc, n drivers.Node, want bool) error {
	marker := filepath.Join(p.dir, nodeconfig.HostRunningDir, n.Name)
	deadline := time.Now().Add(hostedWait)
	for {
		_, err := os.Stat(marker)
		if (err == nil) == want {
			return nil
		}
		if _, ok := d.alive(p); !ok {
			if !want {
				return nil
			}
			return errors.New("the node host process exited; last lines of " + p.logPath() + ":\n" + drivers.TailLog(p.logPath(), 15))
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the node host did not act on it within %s; see %s", hostedWait, p.logPath())
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(pollInterval):
		}
	}
}

// StopNode implements drivers.Driver: a node's own process gets SIGTERM,
// then SIGKILL after stopTimeout; a hosted node is dropped from its host,
// which exits with its last node.
func (d *Driver) StopNode(ctx context.Context, n drivers.Node) error {
	p := nodeProc(n)
	if !hosted(n) {
		if err := d.stop(ctx, p); err != nil {
			return fmt.Errorf("stop node %s: %w", n.Name, err)
		}
		return nil
	}
	d.hostMu.Lock()
	_ = os.Remove(filepath.Join(p.dir, nodeconfig.HostDesiredDir, n.Name))
	pid, ok := d.alive(p)
	if !ok {
		d.hostMu.Unlock()
		return nil
	}
	entries, _ := os.ReadDir(filepath.Join(p.dir, nodeconfig.HostDesiredDir))
	if len(entries) == 0 {
		err := d.stop(ctx, p)
		d.hostMu.Unlock()
		if err != nil {
			return fmt.Errorf("stop node %s: %w", n.Name, err)
		}
		return nil
	}
	d.reload(p, pid)
	d.hostMu.Unlock()
	if err := d.waitHosted(ctx, p, n, false); err != nil {
		return fmt.Errorf("stop node %s: %w", n.Name, err)
	}
	return nil
}

func (d *Driver) stop(ctx context.Context, p proc) error {
	pid, ok := d.alive(p)
	if !ok {
		_ = os.Remove(p.pidPath())
		return nil
	}
	if err := terminate(pid); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return err
	}
	deadline := time.Now().Add(stopTimeout)
	for time.Now().Before(deadline) {
		if _, ok := d.alive(p); !ok {
			_ = os.Remove(p.pidPath())
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	if err := kill(pid); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("kill: %w", err)
	}
	for i := 0; i < 100; i++ {
		if _, ok := d.alive(p); !ok {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	_ = os.Remove(p.pidPath())
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
	if hosted(n) {
		// The host folder goes with the last node.
		if entries, err := os.ReadDir(filepath.Join(hostDir(n), nodeconfig.HostDesiredDir)); err == nil && len(entries) == 0 {
			if _, ok := d.alive(nodeProc(n)); !ok {
				_ = os.RemoveAll(hostDir(n))
			}
		}
	}
	return nil
}

// NodeState implements drivers.Driver.
func (d *Driver) NodeState(ctx context.Context, n drivers.Node) (string, error) {
	p := nodeProc(n)
	if _, ok := d.alive(p); !ok {
		return drivers.StateStopped, nil
	}
	if hosted(n) {
		if _, err := os.Stat(filepath.Join(p.dir, nodeconfig.HostRunningDir, n.Name)); err != nil {
			return drivers.StateStopped, nil
		}
	}
	return drivers.StateRunning, nil
}

// PID returns the pid of the process a node runs in.
func (d *Driver) PID(n drivers.Node) (int, bool) { return d.alive(nodeProc(n)) }

// alive reads the pid file and checks that the process is alive and is
// this minik-node, not an unrelated process that reused the pid.
func (d *Driver) alive(p proc) (int, bool) {
	data, err := os.ReadFile(p.pidPath())
	if err != nil {
		return 0, false
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil || pid <= 0 {
		return 0, false
	}
	return pid, processMatches(pid, []byte(p.match))
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
