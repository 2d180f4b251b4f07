package vmimage

import (
	"bufio"
	"bytes"
	"debug/elf"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// NodeModules are the modules a node needs beyond what the kernel has
// built in: virtio disks, network and entropy, overlay for container
// images, bridge and veth for pod networks, netfilter for Services, and the
// ACPI power button (as an input device) through which libvirt asks a
// node to shut down.
var NodeModules = []string{
	"virtio_pci", "virtio_blk", "virtio_net", "virtio_console", "virtio_rng",
	"overlay", "bridge", "br_netfilter", "veth",
	"button", "evdev",
	"nf_tables", "nft_compat", "nf_nat", "nf_conntrack",
}

// HyperVModules are what a node needs on Hyper-V besides NodeModules: the
// VMBus, its network and SCSI devices, and the integration services
// (shutdown, time sync, heartbeat) through which Stop-VM asks the guest
// to shut down.
var HyperVModules = []string{"hv_vmbus", "hv_netvsc", "hv_storvsc", "hv_utils"}

// Module is one loadable module of a kernel.
type Module struct {
	Name string
	// Path is relative to the kernel's modules folder (kernel/...ko).
	Path string
	// Depends are the modules it needs loaded first.
	Depends []string
}

// ResolveModules returns the modules named and everything they depend on,
// each after its dependencies: the order to load them in. Names may use -
// or _ alike. Modules the kernel has built in (modules.builtin) are left
// out; a name that is neither built in nor a module is an error.
func ResolveModules(modulesDir string, names []string) ([]Module, error) {
	index, err := indexModules(modulesDir)
	if err != nil {
		return nil, err
	}
	builtin := builtinModules(modulesDir)
	var order []Module
	state := map[string]int{} // 1 visiting, 2 done
	var visit func(name string, from []string) error
	visit = func(name string, from []string) error {
		name = canonical(name)
		switch state[name] {
		case 2:
			return nil
		case 1:
			return fmt.Errorf("module %s depends on itself through %s", name, strings.Join(from, " -> "))
		}
		path, ok := index[name]
		if !ok {
			if builtin[name] {
				state[name] = 2
				return nil
			}
			return fmt.Errorf("module %s is not in %s (needed by %s)", name, modulesDir, strings.Join(append(from, "the node"), ", "))
		}
		state[name] = 1
		deps, err := moduleDepends(filepath.Join(modulesDir, path))
		if err != nil {
			return err
		}
		for _, d := range deps {
			if err := visit(d, append(from, name)); err != nil {
				return err
			}
		}
		state[name] = 2
		order = append(order, Module{Name: name, Path: path, Depends: deps})
		return nil
	}
	for _, n := range names {
		if err := visit(n, nil); err != nil {
			return nil, err
		}
	}
	return order, nil
}

// canonical spells a module name as the kernel does: _ for -.
func canonical(name string) string { return strings.ReplaceAll(name, "-", "_") }

// indexModules maps each module's name to its path under modulesDir.
func indexModules(modulesDir string) (map[string]string, error) {
	index := map[string]string{}
	err := filepath.WalkDir(filepath.Join(modulesDir, "kernel"), func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() || !strings.HasSuffix(p, ".ko") {
			return nil
		}
		rel, err := filepath.Rel(modulesDir, p)
		if err != nil {
			return err
		}
		index[canonical(strings.TrimSuffix(d.Name(), ".ko"))] = filepath.ToSlash(rel)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list kernel modules: %w", err)
	}
	return index, nil
}

// builtinModules reads modules.builtin: kernel/fs/ext4/ext4.ko per line.
func builtinModules(modulesDir string) map[string]bool {
	out := map[string]bool{}
	f, err := os.Open(filepath.Join(modulesDir, "modules.builtin"))
	if err != nil {
		return out
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		out[canonical(strings.TrimSuffix(filepath.Base(sc.Text()), ".ko"))] = true
	}
	return out
}

// moduleDepends reads "depends=" from the module's .modinfo section.
func moduleDepends(path string) ([]string, error) {
	f, err := elf.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read module %s: %w", filepath.Base(path), err)
	}
	defer f.Close()
	sec := f.Section(".modinfo")
	if sec == nil {
		return nil, fmt.Errorf("read module %s: no .modinfo section", filepath.Base(path))
	}
	data, err := sec.Data()
	if err != nil {
		return nil, fmt.Errorf("read module %s: %w", filepath.Base(path), err)
	}
	for _, field := range bytes.Split(data, []byte{0}) {
		if v, ok := bytes.CutPrefix(field, []byte("depends=")); ok {
			if len(v) == 0 {
				return nil, nil
			}
			return strings.Split(string(v), ","), nil
		}
	}
	return nil, nil
}
