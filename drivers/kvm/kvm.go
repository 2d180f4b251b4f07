package kvm

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"

	"github.com/digitalocean/go-libvirt"
	"github.com/digitalocean/go-libvirt/socket/dialers"

	"minik.dev/minik/drivers"
	"minik.dev/minik/drivers/vmnode"
	vmimage "minik.dev/minik/node-image/vm"
	"minik.dev/minik/nodeconfig"
)

// Name is the driver's name.
const Name = "kvm"

const doc = "docs/drivers/kvm.md"

// nodeDataDisk is the node's data disk in the VM: the first virtio disk.
const nodeDataDisk = "/dev/vda"

// Environment variables that set the driver up, for the CLI and tests.
const (
	// EnvSocket is libvirtd's socket (default DefaultSocket).
	EnvSocket = "MINIK_LIBVIRT_SOCKET"
	// EnvKernel names the kernel when the profile does not (--vm-kernel):
	// a vmlinuz-RELEASE with its modules in /lib/modules/RELEASE, or a
	// Debian linux-image .deb.
	EnvKernel = "MINIK_VM_KERNEL"
	// EnvAccel is kvm or tcg when the profile does not say (--vm-accel),
	// overriding what the driver detects.
	EnvAccel = "MINIK_VM_ACCEL"
	// EnvFirmware is direct or efi when the profile does not say
	// (--vm-firmware).
	EnvFirmware = "MINIK_VM_FIRMWARE"
	// EnvOVMF is the UEFI firmware nodes boot with under --vm-firmware
	// efi (default DefaultOVMF, from Debian's ovmf package).
	EnvOVMF = "MINIK_VM_OVMF"
	// EnvEFIStub is systemd's EFI stub for the nodes' unified kernel
	// images, or Debian's systemd-boot-efi .deb (see vmimage.FindEFIStub).
	EnvEFIStub = "MINIK_VM_EFI_STUB"
)

// DefaultOVMF is Debian's OVMF build, one file of code and variables
// that QEMU maps as the machine's ROM.
const DefaultOVMF = "/usr/share/ovmf/OVMF.fd"

// DefaultSocket is where libvirtd's system instance listens.
const DefaultSocket = "/var/run/libvirt/libvirt-sock"

// VM sizes: the control plane runs etcd and the apiserver in memory, and
// every node holds minik-node in its initramfs.
const (
	controlPlaneMemoryMiB = 2048
	workerMemoryMiB       = 1024
	nodeCPUs              = 2
	dataDiskBytes         = 20 << 30
)

// Driver makes nodes as libvirt domains through libvirtd's RPC protocol
// (pure Go: no libvirt library is needed on this machine).
type Driver struct {
	findBinary func() (string, error)
	cacheDir   func() (string, error)
	getenv     func(string) string
	// kvmUnusable says why KVM cannot run guests here, or "".
	kvmUnusable func() string
	vm          drivers.VMOptions
	// imageServer is the host-side image server's command (nil: none).
	imageServer ImageServerCommand

	mu     sync.Mutex
	kernel vmimage.Kernel
	base   string // the shared initramfs: minik-node, modules
	accel  string
	// efi is how nodes boot under FirmwareEFI; nil boots them directly.
	efi *efiBoot
}

// efiBoot is what UEFI-booted nodes need besides the kernel and initramfs.
type efiBoot struct {
	firmware string // OVMF, as the machine's ROM
	stub     string // systemd's EFI stub
}

// New returns the kvm driver: findBinary locates minik-node (the VMs'
// init), cacheDir the folder kernels and initramfs images are kept in,
// and imageServer (nil for none) serves this machine's engine images to
// the nodes while a cluster runs.
func New(findBinary, cacheDir func() (string, error), imageServer ImageServerCommand) *Driver {
	return &Driver{findBinary: findBinary, cacheDir: cacheDir, getenv: os.Getenv, kvmUnusable: kvmUnusable, imageServer: imageServer}
}

// Info implements drivers.Driver.
func (d *Driver) Info() drivers.Info {
	return drivers.Info{
		Name:        Name,
		Description: "nodes are libvirt VMs (QEMU, with KVM when the CPU has it) booted from a kernel and an initramfs made here; pods are runc containers",
		Runtime:     nodeconfig.RuntimeRunc,
		// The host is on the VM network, where the control plane answers
		// for ClusterIPs.
		ServicesReachable: true,
		// Never picked automatically: VMs are asked for.
		Priority:         -10,
		NodeView:         vmnode.View(),
		HostReachesNodes: true,
	}
}

// ConfigureVMs implements drivers.VMConfigurer: the profile's kernel and
// accelerator, over EnvKernel and EnvAccel.
func (d *Driver) ConfigureVMs(o drivers.VMOptions) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.vm = o
}

func (d *Driver) socket() string {
	if s := d.getenv(EnvSocket); s != "" {
		return s
	}
	return DefaultSocket
}

// connect opens a connection to libvirtd's QEMU driver; the caller
// disconnects.
func (d *Driver) connect(ctx context.Context) (*libvirt.Libvirt, error) {
	sock := d.socket()
	l := libvirt.NewWithDialer(dialers.NewLocal(dialers.WithSocket(sock), dialers.WithLocalTimeout(5*time.Second)))
	done := make(chan error, 1)
	go func() { done <- l.ConnectToURI(libvirt.QEMUSystem) }()
	select {
	case err := <-done:
		if err != nil {
			return nil, fmt.Errorf("connect to libvirtd at %s: %w", sock, err)
		}
		return l, nil
	case <-ctx.Done():
		go func() {
			if <-done == nil {
				_ = l.Disconnect()
			}
		}()
		return nil, ctx.Err()
	}
}

// socketPermissionFix is what to do when libvirtd's socket is not ours to use.
const socketPermissionFix = "add yourself to the libvirt group (`sudo usermod -aG libvirt $USER`, then log in again), or run as root"

// Health implements drivers.Driver: libvirtd must answer on its socket,
// mkfs.ext4 must be there to format data disks, and runc to run pods.
func (d *Driver) Health(ctx context.Context) error {
	sock := d.socket()
	if _, err := os.Stat(sock); errors.Is(err, os.ErrPermission) {
		return &drivers.HealthError{Driver: Name, Problem: err.Error(), Fix: socketPermissionFix, Doc: doc}
	} else if err != nil {
		return &drivers.HealthError{Driver: Name,
			Problem: fmt.Sprintf("libvirtd is not running: no socket at %s", sock),
			Fix:     "start it (`sudo systemctl start libvirtd`; without systemd, as root: `mkdir -p /run/libvirt; virtlogd -d; libvirtd -d`), or set " + EnvSocket + " to its socket",
			Doc:     doc}
	}
	l, err := d.connect(ctx)
	if err != nil {
		fix := "check that libvirtd runs (`virsh -c qemu:///system version`)"
		if errors.Is(err, os.ErrPermission) || strings.Contains(err.Error(), "permission denied") {
			fix = socketPermissionFix
		}
		return &drivers.HealthError{Driver: Name, Problem: err.Error(), Fix: fix, Doc: doc}
	}
	_ = l.Disconnect()
	if _, err := mkfsExt4(); err != nil {
		return &drivers.HealthError{Driver: Name, Problem: err.Error(), Fix: "install e2fsprogs", Doc: doc}
	}
	if _, err := exec.LookPath("runc"); err != nil {
		return &drivers.HealthError{Driver: Name, Problem: "runc is not installed: the VMs run pods with this machine's runc",
			Fix: "install it (Debian and Ubuntu: `sudo apt-get install runc`)", Doc: doc}
	}
	return nil
}

// mkfsExt4 finds mkfs.ext4, which is in sbin folders that users' PATHs
// often lack.
func mkfsExt4() (string, error) {
	if p, err := exec.LookPath("mkfs.ext4"); err == nil {
		return p, nil
	}
	for _, p := range []string{"/usr/sbin/mkfs.ext4", "/sbin/mkfs.ext4"} {
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", errors.New("mkfs.ext4 is not installed: the kvm driver formats each node's data disk with it")
}

// Prepare implements drivers.Preparer: it finds the kernel and writes the
// initramfs shared by every node (minik-node as /init and the kernel's
// modules), unless the cache holds it already.
func (d *Driver) Prepare(ctx context.Context, progress func(msg string)) error {
	if progress == nil {
		progress = func(string) {}
	}
	if _, err := d.image(ctx, progress); err != nil {
		return fmt.Errorf("prepare kvm driver: %w", err)
	}
	return nil
}

// image returns the kernel and the shared initramfs, making them once per
// driver.
func (d *Driver) image(ctx context.Context, progress func(string)) (vmimage.Kernel, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.base != "" {
		return d.kernel, nil
	}
	// First: KVM asked for where it cannot run fails before minutes of
	// unpacking.
	accel, err := d.chooseAccel(progress)
	if err != nil {
		return vmimage.Kernel{}, err
	}
	cache, err := d.cacheDir()
	if err != nil {
		return vmimage.Kernel{}, err
	}
	named := d.vm.Kernel
	if named == "" {
		named = d.getenv(EnvKernel)
	}
	if named != "" && strings.HasSuffix(named, ".deb") {
		if vmimage.DebUnpacked(named, cache) {
			named = ""
		} else if progress != nil {
			progress("unpacking kernel package " + named)
		}
	}
	k, err := vmimage.FindKernel(named, cache, vmimage.DefaultHost)
	if err != nil {
		return vmimage.Kernel{}, err
	}
	if progress != nil {
		progress(fmt.Sprintf("kernel %s, from %s", k.Release, k.Source))
	}
	bin, err := d.findBinary()
	if err != nil {
		return vmimage.Kernel{}, err
	}
	runc, err := exec.LookPath("runc")
	if err != nil {
		return vmimage.Kernel{}, errors.New("runc is not installed: the kvm driver puts the host's runc in its VMs to run pods (on Debian: apt-get install runc)")
	}
	base, err := vmnode.EnsureInitramfs(ctx, cache, bin, "", runc, k, vmimage.NodeModules)
	if err != nil {
		return vmimage.Kernel{}, err
	}
	efi, err := d.findEFI(cache, progress)
	if err != nil {
		return vmimage.Kernel{}, err
	}
	d.accel = accel
	d.kernel, d.base, d.efi = k, base, efi
	return k, nil
}

// findEFI finds the firmware and the EFI stub when nodes boot through
// UEFI (the profile's firmware, else EnvFirmware); nil when they boot
// directly.
func (d *Driver) findEFI(cache string, progress func(string)) (*efiBoot, error) {
	firmware := d.vm.Firmware
	if firmware == "" {
		firmware = strings.ToLower(d.getenv(EnvFirmware))
	}
	switch firmware {
	case "", drivers.FirmwareDirect:
		return nil, nil
	case drivers.FirmwareEFI:
	default:
		return nil, fmt.Errorf("firmware %q (%s): use %s or %s", firmware, EnvFirmware, drivers.FirmwareDirect, drivers.FirmwareEFI)
	}
	ovmf := d.getenv(EnvOVMF)
	if ovmf == "" {
		ovmf = DefaultOVMF
	}
	if _, err := os.Stat(ovmf); err != nil {
		return nil, fmt.Errorf("UEFI firmware for --vm-firmware efi: %w (on Debian: apt-get install ovmf; or set %s)", err, EnvOVMF)
	}
	stub, err := vmimage.FindEFIStub(d.getenv(EnvEFIStub), cache, vmimage.EFIStubPath)
	if err != nil {
		return nil, fmt.Errorf("%w; or set %s", err, EnvEFIStub)
	}
	if progress != nil {
		progress("nodes boot through UEFI (" + ovmf + ") from a disk with a unified kernel image")
	}
	return &efiBoot{firmware: ovmf, stub: stub}, nil
}

// chooseAccel is kvm when the CPU has vmx or svm and /dev/kvm opens, else
// TCG (QEMU's emulation), unless the profile or EnvAccel says which. KVM
// asked for where it cannot run is an error now rather than a VM that
// QEMU aborts later.
func (d *Driver) chooseAccel(progress func(string)) (string, error) {
	choice := d.vm.Accel
	if choice == "" {
		choice = strings.ToLower(d.getenv(EnvAccel))
	}
	switch choice {
	case drivers.AccelKVM:
		if reason := d.kvmUnusable(); reason != "" {
			return "", &drivers.HealthError{Driver: Name,
				Problem: "KVM was asked for (--vm-accel kvm) but cannot run guests here: " + reason,
				Fix:     kvmFix(reason) + ", or start with --vm-accel tcg (QEMU's emulation, many times slower)",
				Doc:     doc}
		}
		return AccelKVM, nil
	case drivers.AccelTCG, "qemu":
		return AccelTCG, nil
	}
	if reason := d.kvmUnusable(); reason != "" {
		if progress != nil {
			progress("no KVM here (" + reason + "): VMs run under QEMU's emulation (TCG), many times slower; to use KVM, " + kvmFix(reason))
		}
		return AccelTCG, nil
	}
	return AccelKVM, nil
}

// kvmFix says what makes KVM usable, given why it is not.
func kvmFix(reason string) string {
	if strings.Contains(reason, "permission denied") {
		return "give yourself access to /dev/kvm (`sudo usermod -aG kvm $USER`, then log in again)"
	}
	if strings.Contains(reason, "no such file") {
		return "load the kvm module (`sudo modprobe kvm_intel` or `kvm_amd`)"
	}
	return "turn on the CPU's virtualization (VT-x or AMD-V) in the firmware, or use a machine or VM that has it"
}

// kvmUnusable says why KVM cannot run guests here, or "".
func kvmUnusable() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return err.Error()
	}
	defer f.Close()
	virt := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "flags") {
			fields := strings.Fields(line)
			for _, fl := range fields {
				if fl == "vmx" || fl == "svm" {
					virt = true
				}
			}
			break
		}
	}
	if !virt {
		return "the CPU shows no vmx or svm"
	}
	kvm, err := os.OpenFile("/dev/kvm", os.O_RDWR, 0)
	if err != nil {
		return err.Error()
	}
	_ = kvm.Close()
	return ""
}
