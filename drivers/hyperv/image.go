package hyperv

import (
	"context"
	"debug/elf"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"

	"minik.dev/minik/drivers"
	"minik.dev/minik/drivers/vmnode"
	vmimage "minik.dev/minik/node-image/vm"
	"minik.dev/minik/nodeconfig"
)

// Environment variables that set the driver up, for the CLI and tests.
const (
	// EnvKernel names the kernel when the profile does not (--vm-kernel):
	// a Debian linux-image .deb (unpacked in Go, so on Windows too) or a
	// vmlinuz-RELEASE with its modules in /lib/modules/RELEASE.
	EnvKernel = "MINIK_VM_KERNEL"
	// EnvEFIStub is systemd's EFI stub, or Debian's systemd-boot-efi .deb.
	EnvEFIStub = "MINIK_VM_EFI_STUB"
	// EnvNodeBinary is minik-node built for linux/amd64, the VMs' init
	// (default: drivers.FindNodeBinary, which on Windows finds a Windows
	// build, so there it must be set).
	EnvNodeBinary = "MINIK_VM_NODE_BINARY"
	// EnvRunc is runc for linux/amd64, statically linked or with its
	// shared libraries where the program's interpreter and run path
	// (vmimage.LibraryDirs) name them (default: runc on PATH, Linux only).
	EnvRunc = "MINIK_VM_RUNC"
)

// ConfigureVMs implements drivers.VMConfigurer: the profile's kernel.
// Generation 2 VMs boot through UEFI only, whatever the firmware option
// says; the accelerator is Hyper-V's.
func (d *Driver) ConfigureVMs(o drivers.VMOptions) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.vm = o
}

// ConfigureNode implements drivers.NodeConfigurer: pods are runc
// containers on the node's bridge (vmnode.Configure).
func (d *Driver) ConfigureNode(n drivers.Node, cfg *nodeconfig.Config) {
	vmnode.Configure(n, cfg, "")
}

// Prepare implements drivers.Preparer: it finds the kernel, the EFI stub,
// minik-node and runc, and writes the initramfs every node shares unless
// the cache holds it already.
func (d *Driver) Prepare(ctx context.Context, progress func(msg string)) error {
	if progress == nil {
		progress = func(string) {}
	}
	if _, err := d.image(ctx, progress); err != nil {
		return fmt.Errorf("prepare hyperv driver: %w", err)
	}
	return nil
}

// bootDiskWriter is the configured writer, else BootDiskWriter of the
// prepared image.
func (d *Driver) bootDiskWriter(ctx context.Context) (func(context.Context, BootDiskRequest) error, error) {
	if d.cfg.BootDisk != nil {
		return d.cfg.BootDisk, nil
	}
	img, err := d.image(ctx, nil)
	if err != nil {
		return nil, err
	}
	return BootDiskWriter(img), nil
}

// image returns the boot image, making it once per driver.
func (d *Driver) image(ctx context.Context, progress func(string)) (vmnode.BootImage, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.prepared != nil {
		return *d.prepared, nil
	}
	if d.vm.Firmware == drivers.FirmwareDirect {
		return vmnode.BootImage{}, errors.New("Hyper-V's Generation 2 VMs boot through UEFI only: leave out --vm-firmware or say efi")
	}
	if d.cfg.CacheDir == nil || d.cfg.FindBinary == nil {
		return vmnode.BootImage{}, errors.New("no cache folder or minik-node finder configured")
	}
	cache, err := d.cfg.CacheDir()
	if err != nil {
		return vmnode.BootImage{}, err
	}
	named := d.vm.Kernel
	if named == "" {
		named = d.cfg.Getenv(EnvKernel)
	}
	if named != "" && strings.HasSuffix(named, ".deb") {
		// Only the cache is looked in: the host's kernel says nothing of the package.
		inCache := vmimage.Host{BootDir: filepath.Join(cache, "boot"), ModulesDir: filepath.Join(cache, "lib", "modules")}
		if k, err := vmimage.FindKernel("", cache, inCache); err == nil && strings.Contains(filepath.Base(named), k.Release) {
			named = "" // unpacked before: xz in Go takes half a minute
		} else if progress != nil {
			progress("unpacking kernel package " + named)
		}
	}
	host := vmimage.DefaultHost
	hostStub := vmimage.EFIStubPath
	if d.cfg.GOOS == "windows" {
		host, hostStub = vmimage.Host{}, ""
	}
	k, err := vmimage.FindKernel(named, cache, host)
	if err != nil {
		return vmnode.BootImage{}, err
	}
	stub, err := vmimage.FindEFIStub(d.cfg.Getenv(EnvEFIStub), cache, hostStub)
	if err != nil {
		return vmnode.BootImage{}, fmt.Errorf("%w; or set %s", err, EnvEFIStub)
	}
	bin := d.cfg.Getenv(EnvNodeBinary)
	if bin == "" {
		if bin, err = d.cfg.FindBinary(); err != nil {
			return vmnode.BootImage{}, err
		}
	}
	if err := checkLinuxProgram(bin); err != nil {
		return vmnode.BootImage{}, fmt.Errorf("minik-node for the VMs (%s): %w; set %s to a linux/amd64 build (GOOS=linux make build)", bin, err, EnvNodeBinary)
	}
	runc := d.cfg.Getenv(EnvRunc)
	if runc == "" {
		if runc, err = exec.LookPath("runc"); err != nil || d.cfg.GOOS == "windows" {
			return vmnode.BootImage{}, fmt.Errorf("no runc for the VMs: set %s to runc for linux/amd64 (on Debian: apt-get install runc)", EnvRunc)
		}
	}
	if err := checkLinuxProgram(runc); err != nil {
		return vmnode.BootImage{}, fmt.Errorf("runc for the VMs (%s): %w", runc, err)
	}
	base, err := vmnode.EnsureInitramfs(ctx, cache, bin, runc, k, append(append([]string{}, vmimage.NodeModules...), vmimage.HyperVModules...))
	if err != nil {
		return vmnode.BootImage{}, err
	}
	if progress != nil {
		progress(fmt.Sprintf("kernel %s, from %s; EFI stub %s", k.Release, k.Source, filepath.Base(stub)))
	}
	d.prepared = &vmnode.BootImage{Stub: stub, Kernel: k.Image, Initramfs: base}
	return *d.prepared, nil
}

// checkLinuxProgram says why p is not a program for linux/amd64, or nil.
func checkLinuxProgram(p string) error {
	f, err := elf.Open(p)
	if err != nil {
		return fmt.Errorf("not a Linux program: %w", err)
	}
	defer f.Close()
	if f.Machine != elf.EM_X86_64 {
		return fmt.Errorf("built for %s, not amd64", f.Machine)
	}
	return nil
}
