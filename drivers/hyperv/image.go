package hyperv

import (
	"context"
	"crypto/sha256"
	"debug/elf"
	"errors"
	"fmt"
	"os"
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
	// EnvRunc is a folder of Debian packages holding runc and the
	// libraries it loads (runc, libseccomp2, libc6: `apt-get download`
	// fetches them), unpacked in Go; or, on Linux, runc itself (default:
	// runc on PATH, Linux only).
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
		if vmimage.DebUnpacked(named, cache) {
			named = ""
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
	runcRoot, runc, err := d.findRunc(cache)
	if err != nil {
		return vmnode.BootImage{}, err
	}
	base, err := vmnode.EnsureInitramfs(ctx, cache, bin, runcRoot, runc, k, append(append([]string{}, vmimage.NodeModules...), vmimage.HyperVModules...))
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

// debRunc is where Debian's runc package installs runc.
const debRunc = "/usr/sbin/runc"

// findRunc returns runc for the VMs: a path inside root, a tree unpacked
// from the Debian packages in the folder EnvRunc names, or with root ""
// a runc of this machine (EnvRunc naming it, else on PATH; Linux only).
func (d *Driver) findRunc(cache string) (root, runc string, err error) {
	named := d.cfg.Getenv(EnvRunc)
	howTo := fmt.Sprintf("set %s to a folder holding Debian's runc, libseccomp2 and libc6 packages (`apt-get download runc libseccomp2 libc6` on any Debian or Ubuntu machine)", EnvRunc)
	if named == "" {
		if d.cfg.GOOS == "windows" {
			return "", "", fmt.Errorf("no runc for the VMs: %s", howTo)
		}
		if named, err = exec.LookPath("runc"); err != nil {
			return "", "", fmt.Errorf("no runc for the VMs: install it (on Debian: apt-get install runc) or %s", howTo)
		}
	}
	if st, err := os.Stat(named); err == nil && st.IsDir() {
		debs, _ := filepath.Glob(filepath.Join(named, "*.deb"))
		if len(debs) == 0 {
			return "", "", fmt.Errorf("no runc for the VMs: %s holds no .deb; %s", named, howTo)
		}
		root, err := unpackOnce(cache, debs)
		if err != nil {
			return "", "", err
		}
		if err := checkLinuxProgram(filepath.Join(root, filepath.FromSlash(debRunc))); err != nil {
			return "", "", fmt.Errorf("runc for the VMs: the packages in %s hold no %s (%w); %s", named, debRunc, err, howTo)
		}
		return root, debRunc, nil
	}
	if err := checkLinuxProgram(named); err != nil {
		return "", "", fmt.Errorf("runc for the VMs (%s): %w; %s", named, err, howTo)
	}
	return "", named, nil
}

// unpackOnce unpacks debs into a folder of cache named by their names and
// sizes, unless that was done before.
func unpackOnce(cache string, debs []string) (string, error) {
	var id []string
	for _, deb := range debs {
		st, err := os.Stat(deb)
		if err != nil {
			return "", err
		}
		id = append(id, fmt.Sprintf("%s:%d", filepath.Base(deb), st.Size()))
	}
	sum := sha256.Sum256([]byte(strings.Join(id, ",")))
	root := filepath.Join(cache, fmt.Sprintf("packages-%x", sum[:8]))
	done := filepath.Join(root, ".unpacked")
	if _, err := os.Stat(done); err == nil {
		return root, nil
	}
	if err := os.RemoveAll(root); err != nil {
		return "", err
	}
	if err := vmimage.UnpackDebs(debs, root); err != nil {
		return "", fmt.Errorf("runc for the VMs: %w", err)
	}
	return root, os.WriteFile(done, nil, 0o644)
}
