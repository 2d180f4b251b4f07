// Package drivers defines how minik makes nodes: a small Driver interface,
// optional capabilities a driver may add (one interface each: IPAllocator,
// ClusterNetworks, ClusterDeleter, Preparer, NodeConfigurer, LogTailer,
// NodeLogStreamer, DiagnosticsCollector),
// Info that describes a driver as data, a registry that picks one by name or
// automatically, and where to find minik-node. The drivers live in
// subpackages (process, docker; fakedriver for tests).
package drivers

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"minik.dev/minik/nodeconfig"
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
	// ConfigPath is the node config file minik-node reads (a host path).
	ConfigPath string
	// ProfileDir is the profile's folder on the host; drivers with a
	// NodeView make it visible inside the node at NodeView.ProfileDir.
	ProfileDir string
	// IP is the node's address.
	IP string
	// Subnet is the cluster network's CIDR (drivers with ClusterNetworks).
	Subnet string
	// APIServerPort is the host port the apiserver is published on
	// (control-plane node of drivers with a NodeView).
	APIServerPort int
	// ManifestsDir is a folder outside the profile that the control plane
	// applies; drivers with a NodeView show it at NodeView.ManifestsDir.
	ManifestsDir string
	// ServiceCIDR is the cluster's Service range and DNSDomain its DNS
	// zone (cluster.local), for drivers whose NodeConfigurer hands them to
	// the node's pod runtime.
	ServiceCIDR string
	DNSDomain   string
	// PublishLocalhost asks for LoadBalancer Services' ports on the host's
	// 127.0.0.1 too, for drivers whose host may not route to the cluster's
	// network.
	PublishLocalhost bool
	// ListenAddress is an address of the host where the apiserver is
	// also published (the same port as on 127.0.0.1), for nodes that join
	// from other machines; empty: loopback only.
	ListenAddress string
}

// Info describes a driver: capabilities are data, not name checks.
type Info struct {
	Name        string
	Description string
	// Runtime is the pod runtime the driver's nodes use.
	Runtime string
	// Priority orders auto-selection: the highest healthy driver wins.
	Priority int
	// ServicesReachable says that pods are real and this machine reaches
	// a Service's ClusterIP (the cluster's network is routed here); else
	// nothing answers on a Service's address.
	ServicesReachable bool
	// NodeView is nil when nodes see the host's filesystem and network as
	// they are (process); else it says how a node sees the profile.
	NodeView *NodeView
	// HostReachesNodes says that this machine reaches nodes on their
	// addresses (a VM network's bridge): clients use the apiserver at the
	// control-plane node's address and NodeView.APIServerPort, and no
	// port of the host's 127.0.0.1 is published.
	HostReachesNodes bool
}

// NodeView says how a node that is not the host (a container, a VM) sees
// the profile: paths in node configs and kubeconfigs are written as the
// node sees them.
type NodeView struct {
	// ProfileDir is where the profile folder appears in the node (read-only).
	ProfileDir string
	// DataDir is the node's own writable state, kept across stop and start.
	DataDir string
	// APIServerPort is the apiserver's port inside the control-plane node;
	// Node.APIServerPort on 127.0.0.1 of the host forwards to it.
	APIServerPort int
	// ManifestsDir is where Node.ManifestsDir appears in the control-plane
	// node (read-only).
	ManifestsDir string
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

// ClusterNetworks is implemented by drivers that give every cluster a
// network of its own. Node IPs, Service IPs and pod IPs all come from it
// (see nodeconfig.SplitSubnet).
type ClusterNetworks interface {
	// ChooseSubnet returns a free IPv4 /16 for a new cluster: one that
	// overlaps no network the driver's backend has nor any of taken.
	ChooseSubnet(ctx context.Context, taken []string) (string, error)
}

// SubnetReserver is implemented by ClusterNetworks drivers whose backend
// can hold a chosen subnet at once (a docker network), so that two minik
// processes choosing at the same time do not both take it.
type SubnetReserver interface {
	// ReserveSubnet makes subnet the cluster's; ErrSubnetTaken when
	// something else took it since it was chosen.
	ReserveSubnet(ctx context.Context, c Cluster, subnet string) error
}

// ErrSubnetTaken: a chosen subnet was taken before it could be reserved.
var ErrSubnetTaken = errors.New("subnet taken meanwhile")

// ClusterDeleter is implemented by drivers that make things per cluster
// besides nodes (networks, volumes, pod containers): DeleteCluster removes
// everything labelled with the cluster, whatever state it is in, and
// nothing that another minik home's cluster of the same name holds.
type ClusterDeleter interface {
	DeleteCluster(ctx context.Context, c Cluster) error
}

// Cluster is a cluster as a whole, to a driver. ProfileDir, the profile's
// folder on this machine, tells apart clusters of the same name that two
// minik homes (two CI jobs, say) made on one backend.
type Cluster struct {
	Name       string
	ProfileDir string
}

// TakenError is a cluster name whose names on a backend (the Docker
// Engine, libvirt) another minik home's cluster holds.
type TakenError struct {
	// Backend names where the names are held, as a user knows it.
	Backend string
	Cluster string
	// What is the thing found ("its network minik-dev"), ProfileDir the
	// profile folder it belongs to.
	What, ProfileDir string
}

func (e *TakenError) Error() string {
	// A profile's folder is MINIK_HOME/profiles/NAME.
	home := filepath.Dir(filepath.Dir(e.ProfileDir))
	return fmt.Sprintf("%s already has a cluster named %s from another minik home (%s belongs to MINIK_HOME=%s): choose another profile name with -p, or delete that cluster from its home", e.Backend, e.Cluster, e.What, home)
}

// Preparer is implemented by drivers with one-time work before nodes start,
// such as building the node image; progress reports what it does.
type Preparer interface {
	Prepare(ctx context.Context, progress func(msg string)) error
}

// Accelerators a VM driver runs its nodes with.
const (
	AccelKVM = "kvm" // the CPU's virtualization, through /dev/kvm
	AccelTCG = "tcg" // QEMU's emulation: slower, runs anywhere
)

// VMOptions choose how a VM driver boots its nodes; "" lets it choose.
type VMOptions struct {
	// Kernel is a kernel (vmlinuz-RELEASE, its modules in
	// /lib/modules/RELEASE) or a Debian linux-image .deb.
	Kernel string
	// Accel is AccelKVM or AccelTCG.
	Accel string
	// Firmware is FirmwareDirect or FirmwareEFI.
	Firmware string
}

// How a VM driver boots its nodes.
const (
	// FirmwareDirect: the hypervisor loads the kernel and initramfs itself.
	FirmwareDirect = "direct"
	// FirmwareEFI: UEFI firmware boots a disk holding a unified kernel
	// image (node-image/vm/efidisk), as Hyper-V's Generation 2 VMs do.
	FirmwareEFI = "efi"
)

// VMConfigurer is implemented by drivers whose nodes are VMs: the cluster
// hands them the profile's VM options before Prepare.
type VMConfigurer interface {
	ConfigureVMs(o VMOptions)
}

// NodeConfigurer is implemented by drivers that add to a node's config what
// only they know, such as the pod runtime's engine, network and image.
type NodeConfigurer interface {
	ConfigureNode(n Node, cfg *nodeconfig.Config)
}

// LogTailer is implemented by drivers that can show the end of a node's
// log (a log file, container logs, a VM console), for error messages that
// must stand on their own: a failed create removes the node and its log.
type LogTailer interface {
	// TailNodeLog returns a heading that says where the node's log is,
	// such as "last lines of /path/node.log:", then its last lines,
	// indented; or, after the heading, a note saying why there are none.
	TailNodeLog(ctx context.Context, n Node, lines int) string
}

// NodeLogOptions say how much of a node's log to stream.
type NodeLogOptions struct {
	// Follow keeps streaming what the node appends until ctx is done.
	Follow bool
	// Tail is how many of the last lines to start with; 0 or less is all.
	Tail int
}

// NodeLogStreamer is implemented by drivers that can hand out a node's whole
// agent log: what minik-node printed, which for the control-plane node
// holds the control plane's log too (it runs in-process).
type NodeLogStreamer interface {
	// StreamNodeLog copies the node's log to w. With o.Follow it returns
	// nil once ctx is done; a node with no log yet is an error that says so.
	StreamNodeLog(ctx context.Context, n Node, o NodeLogOptions, w io.Writer) error
}

// DiagnosticsSink is where a DiagnosticsCollector puts what it finds: files
// under a relative slash-separated path, and notes of what it could not get.
type DiagnosticsSink interface {
	// Create makes a file at the relative path; the caller closes it.
	Create(ctx context.Context, path string) (io.WriteCloser, error)
	// Missing records something that could not be collected, and why.
	Missing(what string, why error)
}

// DiagnosticsCollector is implemented by drivers that keep more about a
// cluster than node logs, such as engine objects or node filesystems, for
// `minik export logs`. A failure to collect one thing is noted in the sink
// and the rest is still collected.
type DiagnosticsCollector interface {
	CollectDiagnostics(ctx context.Context, cluster string, nodes []Node, sink DiagnosticsSink)
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

// Availability is whether a driver can make nodes here, and if not why.
type Availability struct {
	Name        string `json:"name"`
	Description string `json:"description"`
	Available   bool   `json:"available"`
	// Problem and Fix are the health check's (see HealthError).
	Problem string `json:"problem,omitempty"`
	Fix     string `json:"fix,omitempty"`
}

// Availability runs every driver's health check, at once, and reports
// them by name.
func (r *Registry) Availability(ctx context.Context) []Availability {
	names := r.Names()
	out := make([]Availability, len(names))
	var wg sync.WaitGroup
	for i, name := range names {
		d := r.drivers[name]
		out[i] = Availability{Name: name, Description: d.Info().Description}
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := d.Health(ctx)
			out[i].Available = err == nil
			var he *HealthError
			switch {
			case err == nil:
			case errors.As(err, &he):
				out[i].Problem, out[i].Fix = he.Problem, he.Fix
			default:
				out[i].Problem = err.Error()
			}
		}()
	}
	wg.Wait()
	return out
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

// LogRunMarker begins the line a driver writes into a node's log file
// each time it starts minik-node, when runs share one file.
const LogRunMarker = "==== minik-node starting at "

// TailLog returns the last lines of a log file, indented, for error
// messages that must stand on their own (a failed create removes the log).
// When the log ends in a Go crash, whose last lines are only goroutine
// stacks, it returns the crash's first lines instead: they say why.
func TailLog(path string, lines int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return "  (no log: " + err.Error() + ")"
	}
	all := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	// Only the last run counts: an older crash in the same log is history.
	for i := len(all) - 1; i >= 0; i-- {
		if strings.HasPrefix(all[i], LogRunMarker) {
			all = all[i:]
			break
		}
	}
	for i := len(all) - 1; i >= 0 && i >= len(all)-100000; i-- {
		if strings.HasPrefix(all[i], "panic: ") || strings.HasPrefix(all[i], "fatal error: ") {
			return "  " + strings.Join(all[i:min(len(all), i+lines)], "\n  ")
		}
	}
	if len(all) > lines {
		all = all[len(all)-lines:]
	}
	return "  " + strings.Join(all, "\n  ")
}
