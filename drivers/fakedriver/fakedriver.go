// Package fakedriver is a drivers.Driver for tests of the registry, the
// cluster library and the CLI: a node is an entry in memory, so nothing
// runs, no process and no container, and every call is recorded.
package fakedriver

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"

	"minik.dev/minik/drivers"
	"minik.dev/minik/nodeconfig"
)

// The optional capabilities the fake has.
var (
	_ drivers.Driver         = (*Driver)(nil)
	_ drivers.IPAllocator    = (*Driver)(nil)
	_ drivers.ClusterDeleter = (*Driver)(nil)
	_ drivers.LogTailer      = (*Driver)(nil)

	_ drivers.NodeLogStreamer      = (*Driver)(nil)
	_ drivers.DiagnosticsCollector = (*Driver)(nil)
)

// Name is the fake's name when Driver.Name is empty.
const Name = "fake"

// Driver keeps node states in memory and records what it was asked. Set
// its fields before use; its methods are safe for concurrent use.
type Driver struct {
	// Name is what Info reports ("" for Name).
	Name string
	// Priority orders auto-selection, as drivers.Info.Priority.
	Priority int
	// ServicesReachable is what Info reports.
	ServicesReachable bool
	// HealthErr is what Health returns.
	HealthErr error
	// StartErr, when set, fails every StartNode (the call is recorded and
	// the node stays as it was).
	StartErr error
	// Logs are the nodes' logs, by node name, for StreamNodeLog; a node
	// with none has no log.
	Logs map[string]string
	// Diagnostics are files CollectDiagnostics writes, by relative path.
	Diagnostics map[string]string

	mu     sync.Mutex
	states map[string]string
	calls  []string
}

// Info implements drivers.Driver. Nodes report the sim runtime, the one
// node configs accept besides docker.
func (d *Driver) Info() drivers.Info {
	name := d.Name
	if name == "" {
		name = Name
	}
	return drivers.Info{
		Name:              name,
		Description:       "nodes are entries in memory (tests only)",
		Runtime:           nodeconfig.RuntimeSim,
		Priority:          d.Priority,
		ServicesReachable: d.ServicesReachable,
	}
}

// Health implements drivers.Driver.
func (d *Driver) Health(context.Context) error { return d.HealthErr }

// StartNode implements drivers.Driver.
func (d *Driver) StartNode(_ context.Context, n drivers.Node) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.calls = append(d.calls, "start "+n.Name)
	if d.StartErr != nil {
		return fmt.Errorf("start node %s: %w", n.Name, d.StartErr)
	}
	d.setLocked(n.Name, drivers.StateRunning)
	return nil
}

// StopNode implements drivers.Driver.
func (d *Driver) StopNode(_ context.Context, n drivers.Node) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.calls = append(d.calls, "stop "+n.Name)
	d.setLocked(n.Name, drivers.StateStopped)
	return nil
}

// DeleteNode implements drivers.Driver.
func (d *Driver) DeleteNode(_ context.Context, n drivers.Node) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.calls = append(d.calls, "delete "+n.Name)
	delete(d.states, n.Name)
	return nil
}

// NodeState implements drivers.Driver: Stopped unless started or set.
func (d *Driver) NodeState(_ context.Context, n drivers.Node) (string, error) {
	return d.State(n.Name), nil
}

// AllocateIP implements drivers.IPAllocator: the first free address of
// 127.0.0.2 to 127.0.0.254.
func (d *Driver) AllocateIP(taken map[string]bool) (string, error) {
	for i := 2; i < 255; i++ {
		if ip := fmt.Sprintf("127.0.0.%d", i); !taken[ip] {
			return ip, nil
		}
	}
	return "", fmt.Errorf("no free address in 127.0.0.0/24")
}

// DeleteCluster implements drivers.ClusterDeleter.
func (d *Driver) DeleteCluster(_ context.Context, c drivers.Cluster) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.calls = append(d.calls, "delete cluster "+c.Name)
	return nil
}

// TailNodeLog implements drivers.LogTailer.
func (d *Driver) TailNodeLog(_ context.Context, n drivers.Node, _ int) string {
	return "last lines of its log:\n  (no log: the fake driver runs nothing on node " + n.Name + ")"
}

// StreamNodeLog implements drivers.NodeLogStreamer with Logs; following
// writes the log, then waits for ctx to end.
func (d *Driver) StreamNodeLog(ctx context.Context, n drivers.Node, o drivers.NodeLogOptions, w io.Writer) error {
	d.mu.Lock()
	log, ok := d.Logs[n.Name]
	d.mu.Unlock()
	if !ok {
		return fmt.Errorf("node %s has no log", n.Name)
	}
	if o.Tail > 0 {
		lines := strings.SplitAfter(log, "\n")
		if lines[len(lines)-1] == "" {
			lines = lines[:len(lines)-1]
		}
		log = strings.Join(lines[max(len(lines)-o.Tail, 0):], "")
	}
	if _, err := io.WriteString(w, log); err != nil {
		return err
	}
	if o.Follow {
		<-ctx.Done()
	}
	return nil
}

// CollectDiagnostics implements drivers.DiagnosticsCollector: it writes
// Diagnostics, and notes every stopped node as missing its files.
func (d *Driver) CollectDiagnostics(ctx context.Context, _ string, nodes []drivers.Node, sink drivers.DiagnosticsSink) {
	d.mu.Lock()
	paths := make([]string, 0, len(d.Diagnostics))
	for p := range d.Diagnostics {
		paths = append(paths, p)
	}
	files := d.Diagnostics
	d.mu.Unlock()
	sort.Strings(paths)
	for _, p := range paths {
		w, err := sink.Create(ctx, p)
		if err == nil {
			_, err = io.WriteString(w, files[p])
			if cerr := w.Close(); err == nil {
				err = cerr
			}
		}
		if err != nil {
			sink.Missing(p, err)
		}
	}
	for _, n := range nodes {
		if d.State(n.Name) != drivers.StateRunning {
			sink.Missing("files of node "+n.Name, fmt.Errorf("node %s is stopped", n.Name))
		}
	}
}

// State is a node's state: Stopped unless started or set.
func (d *Driver) State(node string) string {
	d.mu.Lock()
	defer d.mu.Unlock()
	if s, ok := d.states[node]; ok {
		return s
	}
	return drivers.StateStopped
}

// SetState sets a node's state without recording a call, as if the node
// had started or stopped by itself.
func (d *Driver) SetState(node, state string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.setLocked(node, state)
}

func (d *Driver) setLocked(node, state string) {
	if d.states == nil {
		d.states = map[string]string{}
	}
	d.states[node] = state
}

// Calls lists what the driver was asked, in order: "start NODE", "stop
// NODE", "delete NODE", "delete cluster CLUSTER".
func (d *Driver) Calls() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]string(nil), d.calls...)
}
