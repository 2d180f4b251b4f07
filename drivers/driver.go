// Package drivers defines how minik makes nodes: a small Driver interface,
// and a registry that picks one by name or automatically.
package drivers

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
)

// Node states, as `minik status` reports them.
const (
	StateRunning = "Running"
	StateStopped = "Stopped"
)

// Node is what a driver needs to know about one node.
type Node struct {
	Cluster string
	Name    string
	Role    string
	// Dir is the node's folder in the profile: its config, logs and state.
	Dir string
	// ConfigPath is the node config file minik-node reads.
	ConfigPath string
}

// Info describes a driver: capabilities are data, not name checks.
type Info struct {
	Name        string
	Description string
	// Runtime is the pod runtime the driver's nodes use.
	Runtime string
	// Priority orders auto-selection: the highest healthy driver wins.
	Priority int
}

// Driver makes nodes. Every method takes ctx first and is safe to repeat.
type Driver interface {
	Info() Info
	// Health returns nil when the driver can run nodes here, else a *HealthError.
	Health(ctx context.Context) error
	// StartNode starts a node, creating it if needed; a running node is left alone.
	StartNode(ctx context.Context, n Node) error
	// StopNode stops a node and keeps its state; a stopped node is left alone.
	StopNode(ctx context.Context, n Node) error
	// DeleteNode stops a node and removes everything the driver made for it.
	DeleteNode(ctx context.Context, n Node) error
	// NodeState says whether the node is Running or Stopped.
	NodeState(ctx context.Context, n Node) (string, error)
}

// IPAllocator is implemented by drivers that choose node IPs themselves.
type IPAllocator interface {
	// AllocateIP returns a node IP not in taken.
	AllocateIP(taken map[string]bool) (string, error)
}

// HealthError says what is wrong with a driver here and how to fix it.
type HealthError struct {
	Driver  string
	Problem string
	Fix     string
	Doc     string
}

func (e *HealthError) Error() string {
	msg := fmt.Sprintf("driver %s is not usable: %s", e.Driver, e.Problem)
	if e.Fix != "" {
		msg += "; " + e.Fix
	}
	if e.Doc != "" {
		msg += " (see " + e.Doc + ")"
	}
	return msg
}

// ErrUnknownDriver is returned for a driver name the registry does not hold.
var ErrUnknownDriver = errors.New("unknown driver")

// Registry holds the drivers this build of minik offers.
type Registry struct {
	drivers map[string]Driver
}

// NewRegistry returns a registry of exactly the given drivers.
func NewRegistry(ds ...Driver) *Registry {
	r := &Registry{drivers: map[string]Driver{}}
	for _, d := range ds {
		r.drivers[d.Info().Name] = d
	}
	return r
}

// Names lists the registered drivers, sorted.
func (r *Registry) Names() []string {
	names := make([]string, 0, len(r.drivers))
	for n := range r.drivers {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Get returns the named driver.
func (r *Registry) Get(name string) (Driver, error) {
	d, ok := r.drivers[name]
	if !ok {
		return nil, fmt.Errorf("%w %q: known drivers are %s", ErrUnknownDriver, name, strings.Join(r.Names(), ", "))
	}
	return d, nil
}

// Select returns the named driver after its health check, or with name ""
// the healthiest by priority (docker when an engine answers, else process).
func (r *Registry) Select(ctx context.Context, name string) (Driver, error) {
	if name != "" {
		d, err := r.Get(name)
		if err != nil {
			return nil, err
		}
		if err := d.Health(ctx); err != nil {
			return nil, err
		}
		return d, nil
	}
	ds := make([]Driver, 0, len(r.drivers))
	for _, d := range r.drivers {
		ds = append(ds, d)
	}
	sort.Slice(ds, func(i, j int) bool { return ds[i].Info().Priority > ds[j].Info().Priority })
	var problems []error
	for _, d := range ds {
		err := d.Health(ctx)
		if err == nil {
			return d, nil
		}
		problems = append(problems, err)
	}
	return nil, fmt.Errorf("select driver: none is usable: %w", errors.Join(problems...))
}

// LogLocator is implemented by drivers that keep a node's log in a file.
type LogLocator interface {
	LogPath(n Node) string
}

// TailLog returns the last lines of a log file, indented, for error
// messages that must stand on their own (a failed create removes the log).
func TailLog(path string, lines int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return "  (no log: " + err.Error() + ")"
	}
	all := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(all) > lines {
		all = all[len(all)-lines:]
	}
	return "  " + strings.Join(all, "\n  ")
}
