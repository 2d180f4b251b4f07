package kvm

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/digitalocean/go-libvirt"

	"minik.dev/minik/drivers"
	"minik.dev/minik/drivers/vmnode"
	vmimage "minik.dev/minik/node-image/vm"
	"minik.dev/minik/nodeconfig"
)

// vmDir is the folder of a node's VM files in its node folder: the data
// disk, the per-node initramfs and the console log. The node never sees it.
const vmDir = "vm"

// How long a node gets to stop after the power button before it is
// turned off: etcd's write-ahead log makes a hard stop safe, only slower
// to start again.
const shutdownTimeout = 60 * time.Second

// NetworkName is the cluster's libvirt network.
func NetworkName(cluster string) string { return "minik-" + cluster }

func nodeFiles(n drivers.Node) (disk, initrd, console string) {
	dir := filepath.Join(n.Dir, vmDir)
	return filepath.Join(dir, "data.img"), filepath.Join(dir, "initrd.cpio"), filepath.Join(dir, "console.log")
}

// bootDiskFile is a UEFI-booted node's boot disk (a fixed VHD).
func bootDiskFile(n drivers.Node) string { return filepath.Join(n.Dir, vmDir, "boot.vhd") }

// StartNode implements drivers.Driver: it makes the cluster's network and
// the node's data disk when missing, writes the node's initramfs (the
// shared one and the profile as the node sees it) and boots the domain.
func (d *Driver) StartNode(ctx context.Context, n drivers.Node) error {
	if err := d.startNode(ctx, n); err != nil {
		return fmt.Errorf("start node %s: %w", n.Name, err)
	}
	return nil
}

func (d *Driver) startNode(ctx context.Context, n drivers.Node) error {
	k, err := d.image(ctx, nil)
	if err != nil {
		return err
	}
	l, err := d.connect(ctx)
	if err != nil {
		return err
	}
	defer l.Disconnect()
	dom, found, err := ownDomain(l, n)
	if err != nil {
		return err
	}
	if found {
		if state, _, err := l.DomainGetState(dom, 0); err == nil && running(state) {
			return nil
		}
	}
	if err := d.ensureNetwork(l, drivers.Cluster{Name: n.Cluster, ProfileDir: n.ProfileDir}, n.Subnet); err != nil {
		return err
	}
	if n.Role == nodeconfig.RoleControlPlane {
		if err := d.ensureImageServer(n); err != nil {
			return err
		}
	}
	memory := uint(workerMemoryMiB)
	if n.Role == nodeconfig.RoleControlPlane {
		memory = controlPlaneMemoryMiB
	}
	if err := checkMemory(memory); err != nil {
		return err
	}
	disk, initrd, console := nodeFiles(n)
	if err := ensureDataDisk(ctx, disk); err != nil {
		return err
	}
	cmdline, err := vmnode.Cmdline(n, nodeDataDisk)
	if err != nil {
		return err
	}
	// The node's initramfs is written at every start, so the node boots
	// with the configs and certificates of this start.
	var bootDisk, firmware string
	if d.efi != nil {
		_ = os.Remove(initrd)
		bootDisk, firmware = bootDiskFile(n), d.efi.firmware
		if err := d.writeBootDisk(ctx, n, bootDisk); err != nil {
			return err
		}
	} else {
		_ = os.Remove(bootDiskFile(n))
		if err := d.writeNodeInitramfs(n, initrd); err != nil {
			return err
		}
	}
	// The console log starts afresh at every boot, as a container's log
	// would with a new container.
	if err := os.WriteFile(console, nil, 0o644); err != nil {
		return err
	}
	spec := DomainSpec{
		Labels: Labels{Cluster: n.Cluster, Node: n.Name, Role: n.Role, Profile: n.ProfileDir},
		Name:   n.Name, MemoryMiB: memory, CPUs: nodeCPUs, Accel: d.accel,
		Kernel: k.Image, Initrd: initrd, Cmdline: cmdline,
		DataDisk: disk, Network: NetworkName(n.Cluster), MAC: MAC(n.Cluster, n.Name), ConsoleLog: console,
	}
	if firmware != "" {
		spec.Kernel, spec.Initrd, spec.Cmdline = "", "", ""
		spec.Firmware, spec.BootDisk = firmware, bootDisk
	}
	if found {
		u := dom.UUID
		spec.UUID = fmt.Sprintf("%x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:16])
	}
	xml, err := DomainXML(spec)
	if err != nil {
		return err
	}
	// Defining again updates a stopped domain to this minik's kernel,
	// initramfs and command line.
	dom, err = l.DomainDefineXML(xml)
	if err != nil {
		return fmt.Errorf("define domain %s: %w", n.Name, err)
	}
	if err := l.DomainCreate(dom); err != nil {
		return fmt.Errorf("boot domain %s: %w", n.Name, err)
	}
	return nil
}

func running(state int32) bool {
	switch libvirt.DomainState(state) {
	case libvirt.DomainRunning, libvirt.DomainBlocked, libvirt.DomainPaused, libvirt.DomainShutdown:
		return true
	}
	return false
}

// ownDomain finds the node's domain; found is false when there is none.
// A domain of that name that minik did not make for this node is an
// error: it is never touched.
func ownDomain(l *libvirt.Libvirt, n drivers.Node) (libvirt.Domain, bool, error) {
	dom, err := l.DomainLookupByName(n.Name)
	if isNoDomain(err) {
		return dom, false, nil
	}
	if err != nil {
		return dom, false, fmt.Errorf("look up domain %s: %w", n.Name, err)
	}
	xml, err := l.DomainGetXMLDesc(dom, 0)
	if err != nil {
		return dom, false, fmt.Errorf("read domain %s: %w", n.Name, err)
	}
	if lb, ok := DomainLabels(xml); !ok || lb.Cluster != n.Cluster || lb.Node != n.Name {
		return dom, false, &foreignError{fmt.Sprintf("a libvirt domain named %s exists and is not minik's node %s of cluster %s: rename or remove it (virsh undefine %s), or choose another profile name",
			n.Name, n.Name, n.Cluster, n.Name)}
	}
	if p := DomainProfile(xml); otherProfile(p, n.ProfileDir) {
		return dom, false, &foreignError{takenError(n.Cluster, "its domain "+n.Name, p).Error()}
	}
	return dom, true, nil
}

// existingDomain is ownDomain for callers to whom a foreign domain of the
// node's name just means the node does not exist: they never touch it.
func existingDomain(l *libvirt.Libvirt, n drivers.Node) (libvirt.Domain, bool, error) {
	dom, found, err := ownDomain(l, n)
	var foreign *foreignError
	if errors.As(err, &foreign) {
		return dom, false, nil
	}
	return dom, found, err
}

// otherProfile tells whether a thing labelled with profile folder p is
// another minik home's than profileDir's; unlabelled things are taken to
// be ours, as before the label.
func otherProfile(p, profileDir string) bool {
	return p != "" && profileDir != "" && filepath.Clean(p) != filepath.Clean(profileDir)
}

// takenError: another minik home's cluster holds the names that cluster
// needs in libvirt; what is the thing found, profileDir its profile folder.
func takenError(cluster, what, profileDir string) error {
	return &drivers.TakenError{Backend: "libvirt", Cluster: cluster, What: what, ProfileDir: profileDir}
}

// foreignError: a libvirt object of a node's or cluster's name is not
// minik's, or is another minik home's.
type foreignError struct{ msg string }

func (e *foreignError) Error() string { return e.msg }

// checkMemory refuses a VM this machine has no memory left for.
func checkMemory(mib uint) error {
	data, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return nil // not Linux's /proc: libvirt will say
	}
	for _, line := range strings.Split(string(data), "\n") {
		var kib uint64
		if _, err := fmt.Sscanf(line, "MemAvailable: %d kB", &kib); err == nil {
			if avail := kib >> 10; avail < uint64(mib)+256 {
				return fmt.Errorf("the node needs %d MiB of memory and this machine has %d MiB available: stop other clusters or programs, or ask for fewer nodes", mib, avail)
			}
			return nil
		}
	}
	return nil
}

// ensureDataDisk makes a sparse raw disk with an ext4 filesystem, unless
// the node has one: it keeps etcd's and the agent's state.
func ensureDataDisk(ctx context.Context, disk string) error {
	if _, err := os.Stat(disk); err == nil {
		return nil
	}
	mkfs, err := mkfsExt4()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(disk), 0o755); err != nil {
		return err
	}
	// Only its owner reads it (libvirt hands it to QEMU's user): it
	// holds etcd, Secrets included.
	tmp := disk + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	err = f.Truncate(dataDiskBytes)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("make data disk: %w", err)
	}
	out, err := exec.CommandContext(ctx, mkfs, "-q", "-F", "-L", "minik-data", tmp).CombinedOutput()
	if err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("format data disk: %w: %s", err, strings.TrimSpace(string(out)))
	}
	return os.Rename(tmp, disk)
}

// writeNodeInitramfs writes the node's initramfs (see nodeInitramfs) to
// dst.
func (d *Driver) writeNodeInitramfs(n drivers.Node, dst string) error {
	// It holds the profile's keys: only its owner reads it (libvirt
	// hands it to QEMU's user while the VM runs).
	tmp := dst + ".tmp"
	out, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	defer os.Remove(tmp)
	w := bufio.NewWriterSize(out, 1<<20)
	err = d.nodeInitramfs(w, n)
	if err == nil {
		err = w.Flush()
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	return os.Rename(tmp, dst)
}

// nodeInitramfs writes the node's initramfs: the shared one, then an
// archive of the profile folder as the node sees it (/minik), which the
// kernel unpacks over it.
func (d *Driver) nodeInitramfs(w io.Writer, n drivers.Node) error {
	files, err := vmnode.ProfileFiles(n, vmDir)
	if err != nil {
		return err
	}
	base, err := os.Open(d.base)
	if err != nil {
		return err
	}
	defer base.Close()
	if _, err := io.Copy(w, base); err != nil {
		return fmt.Errorf("write the node's initramfs: %w", err)
	}
	if err := vmimage.WriteFiles(w, files); err != nil {
		return fmt.Errorf("write the node's initramfs: %w", err)
	}
	return nil
}

// writeBootDisk writes a UEFI-booted node's boot disk to dst: the disk
// the hyperv driver gives its VMs (vmnode.WriteBootDisk).
func (d *Driver) writeBootDisk(ctx context.Context, n drivers.Node, dst string) error {
	img := vmnode.BootImage{Stub: d.efi.stub, Kernel: d.kernel.Image, Initramfs: d.base}
	return vmnode.WriteBootDisk(ctx, dst, n, img, nodeDataDisk, vmDir)
}

// ConfigureNode implements drivers.NodeConfigurer: pods are runc
// containers (vmnode.Configure), with this machine's images from the
// image server.
func (d *Driver) ConfigureNode(n drivers.Node, cfg *nodeconfig.Config) {
	imageServer := ""
	if d.imageServer != nil {
		imageServer, _ = imageServerAddress(n.Subnet)
	}
	vmnode.Configure(n, cfg, imageServer)
}

// StopNode implements drivers.Driver: the power button, then, when the
// node has not stopped in time, the plug.
func (d *Driver) StopNode(ctx context.Context, n drivers.Node) error {
	if n.Role == nodeconfig.RoleControlPlane {
		if err := d.stopImageServer(n); err != nil {
			return fmt.Errorf("stop node %s: %w", n.Name, err)
		}
	}
	l, err := d.connect(ctx)
	if err != nil {
		return fmt.Errorf("stop node %s: %w", n.Name, err)
	}
	defer l.Disconnect()
	dom, found, err := existingDomain(l, n)
	if err != nil || !found {
		return err
	}
	if err := stopDomain(ctx, l, dom); err != nil {
		return fmt.Errorf("stop node %s: %w", n.Name, err)
	}
	return nil
}

func stopDomain(ctx context.Context, l *libvirt.Libvirt, dom libvirt.Domain) error {
	state, _, err := l.DomainGetState(dom, 0)
	if err != nil {
		return err
	}
	if !running(state) {
		return nil
	}
	if err := l.DomainShutdown(dom); err == nil {
		deadline := time.Now().Add(shutdownTimeout)
		for time.Now().Before(deadline) && ctx.Err() == nil {
			state, _, err := l.DomainGetState(dom, 0)
			if err == nil && !running(state) {
				return nil
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	if err := l.DomainDestroy(dom); err != nil {
		if state, _, serr := l.DomainGetState(dom, 0); serr == nil && !running(state) {
			return nil
		}
		return err
	}
	return nil
}

// DeleteNode implements drivers.Driver: the domain and the node's VM files.
func (d *Driver) DeleteNode(ctx context.Context, n drivers.Node) error {
	if n.Role == nodeconfig.RoleControlPlane {
		if err := d.stopImageServer(n); err != nil {
			return fmt.Errorf("delete node %s: %w", n.Name, err)
		}
	}
	l, err := d.connect(ctx)
	if err != nil {
		return fmt.Errorf("delete node %s: %w", n.Name, err)
	}
	defer l.Disconnect()
	dom, found, err := existingDomain(l, n)
	if err != nil {
		return fmt.Errorf("delete node %s: %w", n.Name, err)
	}
	if found {
		if err := removeDomain(l, dom); err != nil {
			return fmt.Errorf("delete node %s: %w", n.Name, err)
		}
	}
	if err := os.RemoveAll(filepath.Join(n.Dir, vmDir)); err != nil {
		return fmt.Errorf("delete node %s: %w", n.Name, err)
	}
	return nil
}

// removeDomain turns a domain off and removes its definition.
func removeDomain(l *libvirt.Libvirt, dom libvirt.Domain) error {
	if state, _, err := l.DomainGetState(dom, 0); err == nil && running(state) {
		if err := l.DomainDestroy(dom); err != nil && !isNoDomain(err) {
			return err
		}
	}
	if err := l.DomainUndefineFlags(dom, 0); err != nil && !isNoDomain(err) {
		return err
	}
	return nil
}

// NodeState implements drivers.Driver.
func (d *Driver) NodeState(ctx context.Context, n drivers.Node) (string, error) {
	l, err := d.connect(ctx)
	if err != nil {
		return "", fmt.Errorf("state of node %s: %w", n.Name, err)
	}
	defer l.Disconnect()
	dom, found, err := existingDomain(l, n)
	if err != nil {
		return "", fmt.Errorf("state of node %s: %w", n.Name, err)
	}
	if !found {
		return drivers.StateStopped, nil
	}
	state, _, err := l.DomainGetState(dom, 0)
	if err != nil {
		return "", fmt.Errorf("state of node %s: %w", n.Name, err)
	}
	if running(state) {
		return drivers.StateRunning, nil
	}
	return drivers.StateStopped, nil
}

// TailNodeLog implements drivers.LogTailer: the node's serial console,
// where minik-node writes its log.
func (d *Driver) TailNodeLog(_ context.Context, n drivers.Node, lines int) string {
	_, _, console := nodeFiles(n)
	return "last lines of " + console + ":\n" + drivers.TailLog(console, lines)
}

// StreamNodeLog implements drivers.NodeLogStreamer: the node's serial
// console since its last boot, which holds minik-node's whole log.
func (d *Driver) StreamNodeLog(ctx context.Context, n drivers.Node, o drivers.NodeLogOptions, w io.Writer) error {
	_, _, console := nodeFiles(n)
	return drivers.StreamLogFile(ctx, console, o, w)
}

// isNoDomain and isNoNetwork tell libvirt's "not found" errors apart from
// the others (go-libvirt's IsNotFound knows domains only).
func isNoDomain(err error) bool  { return libvirtCode(err) == libvirt.ErrNoDomain }
func isNoNetwork(err error) bool { return libvirtCode(err) == libvirt.ErrNoNetwork }

func libvirtCode(err error) libvirt.ErrorNumber {
	var le libvirt.Error
	if errors.As(err, &le) {
		return libvirt.ErrorNumber(le.Code)
	}
	return -1
}
