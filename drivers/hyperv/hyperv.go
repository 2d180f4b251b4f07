// Package hyperv will be the hyperv driver: nodes as Hyper-V Generation 2
// VMs on Windows, booted from a disk minik writes (node-image/vm/efidisk)
// and reached on an Internal switch of the cluster's own, where the host
// has an address. Hyper-V is driven through PowerShell scripts (built
// here, every value quoted) behind a small Executor, which answer in JSON
// and report errors as PowerShell's error records, never as text to
// parse. It is not a registered driver yet: the VM node image's guest
// does not run minik-node so far.
package hyperv

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"runtime"
	"strings"
	"sync"

	"minik.dev/minik/drivers"
	"minik.dev/minik/drivers/vmnode"
	"minik.dev/minik/node-image/vm/guest"
	"minik.dev/minik/nodeconfig"
)

// Name is the driver's name.
const Name = "hyperv"

const doc = "docs/drivers/hyperv.md"

// Labels are minik's marks on a VM or switch, kept as JSON in its Notes,
// with the keys of the docker driver's labels.
type Labels struct {
	Cluster string `json:"dev.minik.cluster"`
	Kind    string `json:"dev.minik.kind"`
	Node    string `json:"dev.minik.node,omitempty"`
	Role    string `json:"dev.minik.role,omitempty"`
}

// Notes is the Notes text that carries l.
func (l Labels) Notes() string {
	b, _ := json.Marshal(l)
	return string(b)
}

// ParseNotes reads minik's labels from a VM's or switch's Notes; ok is
// false for one minik did not make.
func ParseNotes(notes string) (l Labels, ok bool) {
	if err := json.Unmarshal([]byte(strings.TrimSpace(notes)), &l); err != nil || l.Cluster == "" || l.Kind == "" {
		return Labels{}, false
	}
	return l, true
}

func nodeLabels(n drivers.Node) Labels {
	return Labels{Cluster: n.Cluster, Kind: nodeconfig.KindNode, Node: n.Name, Role: n.Role}
}

// SwitchName is the cluster's Internal switch.
func SwitchName(cluster string) string { return "minik-" + cluster }

// MAC is a node's stable, locally administered address, in Hyper-V's
// spelling (12 hex digits).
func MAC(cluster, node string) string {
	sum := sha256.Sum256([]byte(cluster + "/" + node))
	return fmt.Sprintf("026D6B%02X%02X%02X", sum[0], sum[1], sum[2])
}

// BootDiskRequest asks for a node's boot disk: a fixed VHD at Path that
// boots Node (see BootDiskWriter).
type BootDiskRequest struct {
	Node drivers.Node
	Path string
}

// Config sets up a Driver.
type Config struct {
	// Exec runs the scripts; nil is PowerShell (Windows only).
	Exec Executor
	// GOOS is the system the driver runs on; empty is runtime.GOOS.
	GOOS string
	// BootDisk writes a node's boot disk; nil is BootDiskWriter of the
	// image Prepare makes.
	BootDisk func(ctx context.Context, r BootDiskRequest) error
	// FindBinary locates minik-node for linux/amd64, the VMs' init;
	// CacheDir the folder kernels and initramfs images are kept in.
	FindBinary, CacheDir func() (string, error)
	// Getenv reads the environment; nil is os.Getenv.
	Getenv func(string) string
	// MemoryMiB and CPUs size every node's VM (defaults 2048 and 2);
	// DataDiskGiB its data disk (default 20, allocated as written).
	MemoryMiB, CPUs, DataDiskGiB uint
}

// Driver makes nodes as Hyper-V VMs.
type Driver struct {
	cfg Config

	mu       sync.Mutex
	vm       drivers.VMOptions
	prepared *vmnode.BootImage
}

// New returns a driver.
func New(cfg Config) *Driver {
	if cfg.Exec == nil {
		cfg.Exec = DefaultExecutor()
	}
	if cfg.GOOS == "" {
		cfg.GOOS = runtime.GOOS
	}
	if cfg.Getenv == nil {
		cfg.Getenv = os.Getenv
	}
	if cfg.MemoryMiB == 0 {
		cfg.MemoryMiB = 2048
	}
	cfg.MemoryMiB = (cfg.MemoryMiB + 1) &^ 1 // Hyper-V wants whole 2 MiB
	if cfg.CPUs == 0 {
		cfg.CPUs = 2
	}
	if cfg.DataDiskGiB == 0 {
		cfg.DataDiskGiB = 20
	}
	return &Driver{cfg: cfg}
}

var (
	_ drivers.Driver          = (*Driver)(nil)
	_ drivers.ClusterDeleter  = (*Driver)(nil)
	_ drivers.ClusterNetworks = (*Driver)(nil)
	_ drivers.Preparer        = (*Driver)(nil)
	_ drivers.VMConfigurer    = (*Driver)(nil)
	_ drivers.NodeConfigurer  = (*Driver)(nil)
)

// Info describes the driver.
func (d *Driver) Info() drivers.Info {
	return drivers.Info{
		Name:        Name,
		Description: "nodes are Hyper-V Generation 2 VMs (Windows) booted from a disk made here; pods are runc containers",
		Runtime:     nodeconfig.RuntimeRunc,
		// The host has an address on the cluster's Internal switch, where
		// the control plane answers for ClusterIPs.
		ServicesReachable: true,
		// Never picked automatically: VMs are asked for.
		Priority:         -10,
		NodeView:         vmnode.View(),
		HostReachesNodes: true,
	}
}

// healthReport is what HealthScript answers.
type healthReport struct {
	Administrator       bool   `json:"administrator"`
	HyperVAdministrator bool   `json:"hyperVAdministrator"`
	Module              bool   `json:"module"`
	Service             string `json:"service"`
}

// Health says whether Hyper-V can run nodes here, and if not, what to do.
func (d *Driver) Health(ctx context.Context) error {
	if d.cfg.GOOS != "windows" {
		return &drivers.HealthError{Driver: Name, Problem: "Hyper-V runs only on Windows, and this is " + d.cfg.GOOS,
			Fix: "use the docker or process driver here", Doc: doc}
	}
	var r healthReport
	if err := run(ctx, d.cfg.Exec, HealthScript(), &r); err != nil {
		return &drivers.HealthError{Driver: Name, Problem: "cannot ask Windows PowerShell about Hyper-V: " + err.Error(),
			Fix: "make sure powershell.exe (Windows PowerShell 5.1) is on PATH", Doc: doc}
	}
	const enable = "enable it from an elevated PowerShell with `Enable-WindowsOptionalFeature -Online -FeatureName Microsoft-Hyper-V-All` and restart " +
		"(Hyper-V needs Windows Pro, Enterprise, Education or Server)"
	switch {
	case r.Service == "":
		return &drivers.HealthError{Driver: Name, Problem: "the Hyper-V feature is not enabled (no Virtual Machine Management service, vmms)", Fix: enable, Doc: doc}
	case !r.Module:
		return &drivers.HealthError{Driver: Name, Problem: "the Hyper-V PowerShell module is not installed",
			Fix: "enable it from an elevated PowerShell with `Enable-WindowsOptionalFeature -Online -FeatureName Microsoft-Hyper-V-Management-PowerShell`", Doc: doc}
	case !r.Administrator && !r.HyperVAdministrator:
		return &drivers.HealthError{Driver: Name, Problem: "this user may not manage Hyper-V: not an elevated Administrator, not in the Hyper-V Administrators group",
			Fix: "run minik from a terminal started with \"Run as administrator\", or add yourself to Hyper-V Administrators " +
				"(`Add-LocalGroupMember -SID S-1-5-32-578 -Member $env:USERNAME` as Administrator) and sign out and in again", Doc: doc}
	case r.Service != "Running":
		return &drivers.HealthError{Driver: Name, Problem: "the Hyper-V Virtual Machine Management service (vmms) is " + r.Service,
			Fix: "start it from an elevated PowerShell with `Start-Service vmms`", Doc: doc}
	}
	return nil
}

// network is the node's address on the cluster's switch and the host's.
func network(n drivers.Node) (guest.Network, error) {
	subnet, err := netip.ParsePrefix(n.Subnet)
	if err != nil || !subnet.Addr().Is4() {
		return guest.Network{}, fmt.Errorf("node %s: the cluster network %q is not an IPv4 CIDR", n.Name, n.Subnet)
	}
	ip, err := netip.ParseAddr(n.IP)
	if err != nil || !subnet.Contains(ip) {
		return guest.Network{}, fmt.Errorf("node %s: address %q is not in the cluster network %s", n.Name, n.IP, subnet)
	}
	gw := subnet.Masked().Addr().Next()
	if ip == gw {
		return guest.Network{}, fmt.Errorf("node %s: address %s is the host's on the cluster network", n.Name, ip)
	}
	return guest.Network{Address: netip.PrefixFrom(ip, subnet.Bits()), Gateway: gw, Hostname: n.Name}, nil
}

// winJoin joins a Windows path: the driver runs on Windows, and its
// scripts are the same whatever system builds them.
func winJoin(dir string, elem ...string) string {
	return strings.TrimRight(dir, `\/`) + `\` + strings.Join(elem, `\`)
}

// vmDirName is the folder of a node's VM files in its node folder: the
// VM's configuration and disks, and the boot disk written at each start.
// The node never sees it.
const vmDirName = "hyperv"

// vmDir is where a node's VM keeps its configuration and disks.
func vmDir(n drivers.Node) string { return winJoin(n.Dir, vmDirName) }

// StartNode makes the cluster's switch and the node's VM when they are
// missing, then starts the VM.
func (d *Driver) StartNode(ctx context.Context, n drivers.Node) error {
	nw, err := network(n)
	if err != nil {
		return err
	}
	sw := SwitchSpec{Cluster: n.Cluster, Name: SwitchName(n.Cluster), Notes: Labels{Cluster: n.Cluster, Kind: nodeconfig.KindNetwork}.Notes(),
		HostIP: nw.Gateway.String(), PrefixLength: nw.Address.Bits()}
	if err := run(ctx, d.cfg.Exec, EnsureSwitchScript(sw), nil); err != nil {
		return fmt.Errorf("start node %s: %w", n.Name, err)
	}
	notes := nodeLabels(n).Notes()
	var st struct {
		Exists bool   `json:"exists"`
		State  string `json:"state"`
	}
	if err := run(ctx, d.cfg.Exec, VMStateScript(n.Name, notes), &st); err != nil {
		return fmt.Errorf("start node %s: %w", n.Name, err)
	}
	if st.Exists && vmState(st.State) == drivers.StateRunning {
		return nil
	}
	writeBootDisk, err := d.bootDiskWriter(ctx)
	if err != nil {
		return fmt.Errorf("start node %s: %w", n.Name, err)
	}
	// The boot disk holds the node's config and certificates: it is
	// written at every start, and swapped in by the start script.
	dir := vmDir(n)
	spec := VMSpec{Name: n.Name, Notes: notes, Switch: sw.Name, MAC: MAC(n.Cluster, n.Name), Dir: dir,
		SourceVHD: winJoin(dir, "boot.vhd"), BootDisk: winJoin(dir, "boot.vhdx"),
		DataDisk: winJoin(dir, "data.vhdx"), DataDiskGiB: d.cfg.DataDiskGiB,
		MemoryMiB: d.cfg.MemoryMiB, CPUs: d.cfg.CPUs, ComPipe: `\\.\pipe\minik-` + n.Name}
	if err := writeBootDisk(ctx, BootDiskRequest{Node: n, Path: spec.SourceVHD}); err != nil {
		return fmt.Errorf("start node %s: boot disk: %w", n.Name, err)
	}
	if !st.Exists {
		if err := run(ctx, d.cfg.Exec, CreateVMScript(spec), nil); err != nil {
			return fmt.Errorf("start node %s: %w", n.Name, err)
		}
	}
	if err := run(ctx, d.cfg.Exec, StartVMScript(n.Name, notes, spec.SourceVHD, spec.BootDisk), nil); err != nil {
		return fmt.Errorf("start node %s: %w", n.Name, err)
	}
	return nil
}

// StopNode shuts the node's VM down; its disks stay.
func (d *Driver) StopNode(ctx context.Context, n drivers.Node) error {
	if err := run(ctx, d.cfg.Exec, StopVMScript(n.Name, nodeLabels(n).Notes()), nil); err != nil {
		return fmt.Errorf("stop node %s: %w", n.Name, err)
	}
	return nil
}

// DeleteNode removes the node's VM and disks, and the cluster's switch
// with the last node.
func (d *Driver) DeleteNode(ctx context.Context, n drivers.Node) error {
	s := DeleteVMScript(n.Cluster, n.Name, nodeLabels(n).Notes(), vmDir(n), SwitchName(n.Cluster))
	if err := run(ctx, d.cfg.Exec, s, nil); err != nil {
		return fmt.Errorf("delete node %s: %w", n.Name, err)
	}
	return nil
}

// DeleteCluster removes every VM and switch minik made for the cluster.
func (d *Driver) DeleteCluster(ctx context.Context, c drivers.Cluster) error {
	if err := run(ctx, d.cfg.Exec, DeleteClusterScript(c.Name), nil); err != nil {
		return fmt.Errorf("delete cluster %s: %w", c.Name, err)
	}
	return nil
}

// NodeState says Running for a running (or starting) VM, else Stopped;
// a node with no VM is Stopped.
func (d *Driver) NodeState(ctx context.Context, n drivers.Node) (string, error) {
	var st struct {
		Exists bool   `json:"exists"`
		State  string `json:"state"`
	}
	if err := run(ctx, d.cfg.Exec, VMStateScript(n.Name, nodeLabels(n).Notes()), &st); err != nil {
		return "", fmt.Errorf("state of node %s: %w", n.Name, err)
	}
	return vmState(st.State), nil
}

func vmState(s string) string {
	switch s {
	case "Running", "Starting", "Paused", "Saving", "Pausing", "Resuming", "Stopping":
		return drivers.StateRunning
	}
	return drivers.StateStopped
}

// VM is one VM minik made.
type VM struct {
	Name, ID string
	// State is the driver's: Running or Stopped; HyperVState Hyper-V's.
	State, HyperVState string
	Labels             Labels
}

// List returns the VMs minik made (of every cluster), by their notes.
func (d *Driver) List(ctx context.Context) ([]VM, error) {
	var raw []struct {
		Name  string `json:"name"`
		ID    string `json:"id"`
		State string `json:"state"`
		Notes string `json:"notes"`
	}
	if err := run(ctx, d.cfg.Exec, ListVMsScript(), &raw); err != nil {
		return nil, fmt.Errorf("list VMs: %w", err)
	}
	var out []VM
	for _, r := range raw {
		l, ok := ParseNotes(r.Notes)
		if !ok || l.Kind != nodeconfig.KindNode {
			continue
		}
		out = append(out, VM{Name: r.Name, ID: r.ID, State: vmState(r.State), HyperVState: r.State, Labels: l})
	}
	return out, nil
}

// ChooseSubnet returns a private /16 for a new cluster's switch that
// overlaps none of the host's networks (addresses and routes, so VPNs
// and WSL's or Default Switch's networks count) nor any of taken.
func (d *Driver) ChooseSubnet(ctx context.Context, taken []string) (string, error) {
	var host []string
	if err := run(ctx, d.cfg.Exec, HostNetworksScript(), &host); err != nil {
		return "", fmt.Errorf("choose subnet: %w", err)
	}
	var used []netip.Prefix
	for _, s := range append(host, taken...) {
		if p, err := netip.ParsePrefix(s); err == nil && p.Addr().Is4() && p.Bits() > 0 {
			used = append(used, p.Masked())
		}
	}
	if p, ok := drivers.FreeSubnet(used); ok {
		return p.String(), nil
	}
	return "", errors.New("choose subnet: every candidate /16 (172.20-31.0.0, 10.200-254.0.0) overlaps a network of this host")
}
