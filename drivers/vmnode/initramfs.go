package vmnode

import (
	"bufio"
	"context"
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	vmimage "minik.dev/minik/node-image/vm"
)

// EnsureInitramfs returns the initramfs every node of a VM driver shares:
// minik-node as /init (bin, a linux/amd64 build), runc with its libraries
// (runc is a path inside runcRoot, a tree of unpacked packages; "" is this
// machine's), and the kernel's modules, in dependency order. It is written
// into cache when it is not there; older ones go.
func EnsureInitramfs(ctx context.Context, cache, bin, runcRoot, runc string, k vmimage.Kernel, modules []string) (string, error) {
	st, err := os.Stat(bin)
	if err != nil {
		return "", fmt.Errorf("minik-node: %w", err)
	}
	rst, err := os.Stat(filepath.Join(runcRoot, filepath.FromSlash(runc)))
	if err != nil {
		return "", fmt.Errorf("runc: %w", err)
	}
	key := cacheKey(bin, st.Size(), st.ModTime().UnixNano(), runcRoot, runc, rst.Size(), rst.ModTime().UnixNano(), k.Release, strings.Join(modules, ","))
	path := filepath.Join(cache, "initramfs-"+key+".cpio")
	if _, err := os.Stat(path); err == nil {
		return path, nil
	}
	if err := ctx.Err(); err != nil {
		return "", err
	}
	mods, err := vmimage.ResolveModules(k.ModulesDir, modules)
	if err != nil {
		return "", err
	}
	var runcFiles []vmimage.File
	if runcRoot == "" {
		runcFiles, err = vmimage.HostProgram(runc)
	} else {
		runcFiles, err = vmimage.ProgramIn(runcRoot, runc)
	}
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(cache, 0o755); err != nil {
		return "", err
	}
	tmp, err := os.CreateTemp(cache, "initramfs-*.tmp")
	if err != nil {
		return "", err
	}
	defer os.Remove(tmp.Name())
	w := bufio.NewWriterSize(tmp, 1<<20)
	err = vmimage.WriteInitramfs(w, vmimage.Spec{Init: bin, Kernel: k, Modules: mods, Files: runcFiles, Uncompressed: true})
	if err == nil {
		err = w.Flush()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", fmt.Errorf("write the VM initramfs: %w", err)
	}
	// QEMU reads it as whatever user libvirt runs it as. It holds no key.
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return "", err
	}
	old, _ := filepath.Glob(filepath.Join(cache, "initramfs-*.cpio"))
	if err := os.Rename(tmp.Name(), path); err != nil {
		return "", err
	}
	for _, o := range old {
		_ = os.Remove(o)
	}
	return path, nil
}

func cacheKey(parts ...any) string {
	sum := sha256.Sum256([]byte(fmt.Sprint(parts...)))
	return fmt.Sprintf("%x", sum[:8])
}
