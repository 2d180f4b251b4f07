// Package vmimage builds what a VM node boots from, on the user's machine
// and offline once a kernel is at hand: a Linux kernel (the host's, one
// the user names, or one unpacked from a Debian kernel package) and an
// initramfs written here (cpio, gzip) that holds the init program and the
// kernel modules a node needs, with the order to load them in. The VM
// drivers (kvm; hyperv later) will boot nodes from it; package guest is the
// side that runs inside the VM.
package vmimage

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"github.com/blakesmith/ar"
	"github.com/ulikunitz/xz"
)

// Kernel is a kernel image and its modules.
type Kernel struct {
	// Release is the kernel's release, as `uname -r` prints it.
	Release string
	// Image is the kernel file (vmlinuz), booted directly.
	Image string
	// ModulesDir is the kernel's /lib/modules/RELEASE folder.
	ModulesDir string
	// Source says where the kernel came from, for the user.
	Source string
}

// Where FindKernel looks on the host.
type Host struct {
	BootDir    string // /boot
	ModulesDir string // /lib/modules
}

// DefaultHost is this machine's kernel folders.
var DefaultHost = Host{BootDir: "/boot", ModulesDir: "/lib/modules"}

// ErrNoKernel is returned when no kernel is available offline.
var ErrNoKernel = errors.New("no kernel for VM nodes")

// FindKernel returns the kernel to boot VM nodes with: the one named
// (a vmlinuz with /lib/modules/RELEASE beside the host's or a Debian
// linux-image .deb, unpacked into cacheDir), else one already unpacked in
// cacheDir, else the host's own when readable.
func FindKernel(named, cacheDir string, host Host) (Kernel, error) {
	if named != "" {
		if strings.HasSuffix(named, ".deb") {
			return UnpackDeb(named, cacheDir)
		}
		return hostKernel(named, host)
	}
	if k, err := cachedKernel(cacheDir); err == nil {
		return k, nil
	}
	images, _ := filepath.Glob(filepath.Join(host.BootDir, "vmlinuz-*"))
	sort.Sort(sort.Reverse(sort.StringSlice(images)))
	for _, img := range images {
		if k, err := hostKernel(img, host); err == nil {
			return k, nil
		}
	}
	return Kernel{}, fmt.Errorf("%w: %s has no readable vmlinuz-* with modules in %s, and %s holds no unpacked kernel; "+
		"pass --vm-kernel with a kernel or a Debian linux-image-*-cloud-amd64 .deb (`apt-get download linux-image-cloud-amd64` fetches one)",
		ErrNoKernel, host.BootDir, host.ModulesDir, cacheDir)
}

// hostKernel takes a vmlinuz-RELEASE file whose modules are in the host's
// modules folder.
func hostKernel(image string, host Host) (Kernel, error) {
	f, err := os.Open(image)
	if err != nil {
		return Kernel{}, fmt.Errorf("kernel %s: %w", image, err)
	}
	_ = f.Close()
	release, ok := strings.CutPrefix(filepath.Base(image), "vmlinuz-")
	if !ok {
		return Kernel{}, fmt.Errorf("kernel %s: name it vmlinuz-RELEASE, with its modules in %s/RELEASE", image, host.ModulesDir)
	}
	mods := filepath.Join(host.ModulesDir, release)
	if st, err := os.Stat(mods); err != nil || !st.IsDir() {
		return Kernel{}, fmt.Errorf("kernel %s: no modules folder %s", image, mods)
	}
	return Kernel{Release: release, Image: image, ModulesDir: mods, Source: "the host's kernel " + image}, nil
}

// cachedKernel returns the newest kernel unpacked in cacheDir.
func cachedKernel(cacheDir string) (Kernel, error) {
	k, err := hostKernelNewest(filepath.Join(cacheDir, "boot"), filepath.Join(cacheDir, "lib", "modules"))
	if err != nil {
		return Kernel{}, err
	}
	k.Source = "the kernel unpacked in " + cacheDir
	return k, nil
}

func hostKernelNewest(bootDir, modulesDir string) (Kernel, error) {
	images, _ := filepath.Glob(filepath.Join(bootDir, "vmlinuz-*"))
	sort.Sort(sort.Reverse(sort.StringSlice(images)))
	for _, img := range images {
		if k, err := hostKernel(img, Host{BootDir: bootDir, ModulesDir: modulesDir}); err == nil {
			return k, nil
		}
	}
	return Kernel{}, ErrNoKernel
}

// DebUnpacked says whether the kernel of the Debian package deb is in
// cacheDir already (UnpackDeb ran before): then FindKernel need not be
// named the package, and unpack it again (xz in Go takes half a minute).
// Only the cache is looked in: the host's kernel says nothing of deb.
func DebUnpacked(deb, cacheDir string) bool {
	inCache := Host{BootDir: filepath.Join(cacheDir, "boot"), ModulesDir: filepath.Join(cacheDir, "lib", "modules")}
	k, err := FindKernel("", cacheDir, inCache)
	return err == nil && strings.Contains(filepath.Base(deb), k.Release)
}

// UnpackDeb unpacks the kernel and its modules from a Debian linux-image
// package into cacheDir (boot/ and lib/modules/, as in the package) and
// returns that kernel. Unpacking again overwrites.
func UnpackDeb(deb, cacheDir string) (Kernel, error) {
	err := readDebData(deb, func(tr *tar.Reader) error { return untarKernel(tr, cacheDir) })
	if err != nil {
		return Kernel{}, fmt.Errorf("kernel package %s: %w", deb, err)
	}
	k, err := hostKernelNewest(filepath.Join(cacheDir, "boot"), filepath.Join(cacheDir, "lib", "modules"))
	if err != nil {
		return Kernel{}, fmt.Errorf("kernel package %s holds no kernel: %w", deb, err)
	}
	k.Source = "the kernel package " + deb + ", unpacked in " + cacheDir
	return k, nil
}

// readDebData hands the files of a Debian package (its data.tar.xz) to fn.
func readDebData(deb string, fn func(*tar.Reader) error) error {
	f, err := os.Open(deb)
	if err != nil {
		return err
	}
	defer f.Close()
	r := ar.NewReader(f)
	for {
		h, err := r.Next()
		if errors.Is(err, io.EOF) {
			return fmt.Errorf("no data.tar.xz: is it a Debian package?")
		}
		if err != nil {
			return err
		}
		if strings.TrimSuffix(h.Name, "/") != "data.tar.xz" {
			continue
		}
		xr, err := xz.NewReader(r)
		if err != nil {
			return err
		}
		return fn(tar.NewReader(xr))
	}
}

// untarKernel writes the package's boot/vmlinuz-* and lib/modules/ tree.
func untarKernel(tr *tar.Reader, dir string) error {
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		name := path.Clean(strings.TrimPrefix(h.Name, "./"))
		if !strings.HasPrefix(name, "boot/vmlinuz-") && !strings.HasPrefix(name, "lib/modules/") && !strings.HasPrefix(name, "usr/lib/modules/") {
			continue
		}
		name = strings.TrimPrefix(name, "usr/")
		if !filepath.IsLocal(name) {
			return fmt.Errorf("unsafe path %q", h.Name)
		}
		dst := filepath.Join(dir, filepath.FromSlash(name))
		if err := writeEntry(tr, h, dst); err != nil {
			return err
		}
	}
}

// writeEntry writes a package's folder or regular file at dst; other
// entries are skipped.
func writeEntry(tr *tar.Reader, h *tar.Header, dst string) error {
	switch h.Typeflag {
	case tar.TypeDir:
		return os.MkdirAll(dst, 0o755)
	case tar.TypeReg:
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return err
		}
		return writeFile(dst, tr, fs.FileMode(h.Mode)&0o755|0o644)
	}
	return nil
}

func writeFile(dst string, r io.Reader, mode fs.FileMode) error {
	tmp := dst + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, r); err != nil {
		_ = f.Close()
		_ = os.Remove(tmp)
		return err
	}
	if err := f.Close(); err != nil {
		_ = os.Remove(tmp)
		return err
	}
	return os.Rename(tmp, dst)
}
