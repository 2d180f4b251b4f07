package vmimage

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cavaliergopher/cpio"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// testKernelDeb is the Debian kernel package .ci/run downloads; without
// it the kernel tests skip, except in CI, where they fail.
func testKernelDeb(t *testing.T) string {
	t.Helper()
	deb := os.Getenv("MINIK_TEST_KERNEL_DEB")
	if deb == "" {
		if os.Getenv("CI") != "" {
			t.Fatal("MINIK_TEST_KERNEL_DEB is not set: .ci/run downloads a Debian linux-image-cloud-amd64 package and sets it")
		}
		t.Skip("MINIK_TEST_KERNEL_DEB names no Debian kernel package (`apt-get download linux-image-6.1.0-*-cloud-amd64`)")
	}
	return deb
}

// The package is unpacked once for all tests: xz in Go takes a while.
var unpacked struct {
	once sync.Once
	dir  string
	k    Kernel
	err  error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if unpacked.dir != "" {
		_ = os.RemoveAll(unpacked.dir)
	}
	os.Exit(code)
}

// testKernel is the test package's kernel, unpacked, and its cache folder.
func testKernel(t *testing.T) (Kernel, string) {
	t.Helper()
	deb := testKernelDeb(t)
	unpacked.once.Do(func() {
		unpacked.dir, unpacked.err = os.MkdirTemp("", "vmimage-kernel-")
		if unpacked.err == nil {
			unpacked.k, unpacked.err = UnpackDeb(deb, unpacked.dir)
		}
	})
	require.NoError(t, unpacked.err)
	return unpacked.k, unpacked.dir
}

func TestUnpackAndFindKernel(t *testing.T) {
	deb := testKernelDeb(t)
	k, cache := testKernel(t)
	assert.Contains(t, k.Release, "cloud-amd64")
	assert.FileExists(t, k.Image)
	assert.DirExists(t, filepath.Join(k.ModulesDir, "kernel"))
	assert.Contains(t, k.Source, deb)

	noHost := Host{BootDir: t.TempDir(), ModulesDir: t.TempDir()}
	found, err := FindKernel("", cache, noHost)
	require.NoError(t, err)
	assert.Equal(t, k.Image, found.Image, "the unpacked kernel is found again, offline")

	_, err = FindKernel("", t.TempDir(), noHost)
	require.ErrorIs(t, err, ErrNoKernel)
	assert.Contains(t, err.Error(), "--vm-kernel")

	_, err = FindKernel(filepath.Join(t.TempDir(), "vmlinuz-9.9"), cache, noHost)
	require.ErrorIs(t, err, os.ErrNotExist)

	notDeb := filepath.Join(t.TempDir(), "kernel.deb")
	require.NoError(t, os.WriteFile(notDeb, []byte("not a package"), 0o644))
	_, err = FindKernel(notDeb, t.TempDir(), noHost)
	require.Error(t, err)
}

func TestResolveModules(t *testing.T) {
	k, _ := testKernel(t)
	mods, err := ResolveModules(k.ModulesDir, NodeModules)
	require.NoError(t, err)
	pos := map[string]int{}
	for i, m := range mods {
		_, dup := pos[m.Name]
		require.False(t, dup, "%s listed twice", m.Name)
		pos[m.Name] = i
		assert.FileExists(t, filepath.Join(k.ModulesDir, m.Path))
	}
	for _, m := range mods {
		for _, d := range m.Depends {
			if i, ok := pos[d]; ok {
				assert.Less(t, i, pos[m.Name], "%s loads before %s, which needs it", d, m.Name)
			}
		}
	}
	for _, want := range []string{"virtio_net", "virtio_ring", "bridge", "stp", "llc", "overlay", "veth", "nf_tables"} {
		assert.Contains(t, pos, want)
	}

	hv, err := ResolveModules(k.ModulesDir, HyperVModules)
	require.NoError(t, err)
	var hvNames []string
	for _, m := range hv {
		hvNames = append(hvNames, m.Name)
	}
	assert.Subset(t, hvNames, HyperVModules, "the Debian cloud kernel has Hyper-V's drivers as modules")

	_, err = ResolveModules(k.ModulesDir, []string{"no_such_module"})
	require.ErrorContains(t, err, "module no_such_module is not in")
	// Built in: not a file to load, not an error.
	builtin := builtinModules(k.ModulesDir)
	require.NotEmpty(t, builtin)
	var name string
	for n := range builtin {
		name = n
		break
	}
	mods, err = ResolveModules(k.ModulesDir, []string{name})
	require.NoError(t, err)
	assert.Empty(t, mods)
}

func TestWriteInitramfs(t *testing.T) {
	dir := t.TempDir()
	initBin := filepath.Join(dir, "init")
	require.NoError(t, os.WriteFile(initBin, []byte("#!init"), 0o755))
	modDir := filepath.Join(dir, "lib", "modules", "6.1.0-test")
	require.NoError(t, os.MkdirAll(filepath.Join(modDir, "kernel", "net"), 0o755))
	for _, m := range []string{"llc", "stp", "bridge"} {
		require.NoError(t, os.WriteFile(filepath.Join(modDir, "kernel", "net", m+".ko"), []byte("ko:"+m), 0o644))
	}
	spec := Spec{
		Init:   initBin,
		Kernel: Kernel{Release: "6.1.0-test", ModulesDir: modDir},
		Modules: []Module{
			{Name: "llc", Path: "kernel/net/llc.ko"},
			{Name: "stp", Path: "kernel/net/stp.ko", Depends: []string{"llc"}},
			{Name: "bridge", Path: "kernel/net/bridge.ko", Depends: []string{"stp", "llc"}},
		},
		Files: []File{{Path: "/etc/minik/node.json", Mode: 0o600, Data: []byte(`{"name":"n1"}`)}},
	}
	var buf bytes.Buffer
	require.NoError(t, WriteInitramfs(&buf, spec))

	zr, err := gzip.NewReader(&buf)
	require.NoError(t, err)
	r := cpio.NewReader(zr)
	files := map[string]string{}
	modes := map[string]cpio.FileMode{}
	var dirs []string
	for {
		h, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		require.NoError(t, err)
		if h.Mode.IsDir() {
			dirs = append(dirs, h.Name)
			continue
		}
		data, err := io.ReadAll(r)
		require.NoError(t, err)
		files[h.Name] = string(data)
		modes[h.Name] = h.Mode.Perm()
	}
	assert.Equal(t, "#!init", files["init"])
	assert.Equal(t, cpio.FileMode(0o755), modes["init"])
	assert.Equal(t, "ko:bridge", files["lib/modules/6.1.0-test/kernel/net/bridge.ko"])
	assert.Equal(t, "/lib/modules/6.1.0-test/kernel/net/llc.ko\n/lib/modules/6.1.0-test/kernel/net/stp.ko\n/lib/modules/6.1.0-test/kernel/net/bridge.ko\n",
		files["etc/minik/modules"])
	assert.Equal(t, `{"name":"n1"}`, files["etc/minik/node.json"])
	assert.Equal(t, cpio.FileMode(0o600), modes["etc/minik/node.json"])
	for _, d := range []string{"dev", "proc", "sys", "etc", "etc/minik", "lib", "lib/modules/6.1.0-test/kernel/net"} {
		assert.Contains(t, dirs, d)
	}
	assert.True(t, slices.IsSorted(dirs), "parents come before their children")
}

// readCPIO returns the names and contents of an uncompressed archive's
// entries (folders with a trailing /).
func readCPIO(t *testing.T, data []byte) map[string]string {
	t.Helper()
	r := cpio.NewReader(bytes.NewReader(data))
	out := map[string]string{}
	for {
		h, err := r.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		require.NoError(t, err)
		if h.Mode.IsDir() {
			out[h.Name+"/"] = ""
			continue
		}
		b, err := io.ReadAll(r)
		require.NoError(t, err)
		out[h.Name] = string(b)
	}
}

// An uncompressed initramfs and a per-node archive after it: each is a
// whole archive the kernel unpacks in turn, 4-byte aligned.
func TestWriteUncompressedAndAppended(t *testing.T) {
	dir := t.TempDir()
	initBin := filepath.Join(dir, "init")
	require.NoError(t, os.WriteFile(initBin, []byte("#!init"), 0o755))
	var base, node bytes.Buffer
	require.NoError(t, WriteInitramfs(&base, Spec{Init: initBin, Uncompressed: true}))
	require.NoError(t, WriteFiles(&node, []File{{Path: "/minik/nodes/n1/config.json", Mode: 0o600, Data: []byte("{}")}}))

	assert.True(t, bytes.HasPrefix(base.Bytes(), []byte("070701")), "a newc archive, not gzip")
	assert.Zero(t, base.Len()%4)
	assert.Zero(t, node.Len()%4)
	assert.Equal(t, "#!init", readCPIO(t, base.Bytes())["init"])
	got := readCPIO(t, node.Bytes())
	assert.Equal(t, map[string]string{"minik/": "", "minik/nodes/": "", "minik/nodes/n1/": "", "minik/nodes/n1/config.json": "{}"}, got)
}

// TestBootUnderQEMU boots the kernel with an initramfs of this package
// under QEMU (software emulation: no /dev/kvm needed) and reads what its
// init program reports on the serial console.
func TestBootUnderQEMU(t *testing.T) {
	if testing.Short() {
		t.Skip("boots a VM")
	}
	k, _ := testKernel(t)
	qemu, err := exec.LookPath("qemu-system-x86_64")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("qemu-system-x86_64 is missing: .ci/run installs Debian's qemu-system-x86")
		}
		t.Skip("qemu-system-x86_64 is not installed")
	}
	dir := t.TempDir()
	mods, err := ResolveModules(k.ModulesDir, NodeModules)
	require.NoError(t, err)

	initBin := filepath.Join(dir, "init")
	build := exec.Command("go", "build", "-trimpath", "-o", initBin, "./testdata/init")
	build.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64")
	out, err := build.CombinedOutput()
	require.NoError(t, err, "build the test init: %s", out)

	initrd := filepath.Join(dir, "initrd.gz")
	f, err := os.Create(initrd)
	require.NoError(t, err)
	require.NoError(t, WriteInitramfs(f, Spec{Init: initBin, Kernel: k, Modules: mods}))
	require.NoError(t, f.Close())

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, qemu, "-accel", "tcg", "-m", "512", "-nographic", "-no-reboot", "-nodefaults", "-serial", "stdio",
		"-kernel", k.Image, "-initrd", initrd, "-append", "console=ttyS0 panic=-1 quiet")
	var console bytes.Buffer
	cmd.Stdout, cmd.Stderr = &console, &console
	start := time.Now()
	err = cmd.Run()
	t.Logf("QEMU (TCG) booted and powered off in %s", time.Since(start).Round(time.Millisecond))
	require.NoError(t, err, "qemu: %s", console.String())
	text := console.String()
	require.Contains(t, text, "minik-init: loaded", text)
	assert.NotContains(t, text, "minik-init: error")
	assert.Contains(t, text, "minik-init: kernel "+k.Release)
	var loaded []string
	for _, l := range strings.Split(text, "\n") {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(l), "minik-init: /proc/modules: "); ok {
			loaded = strings.Fields(rest)
		}
	}
	for _, want := range []string{"virtio_net", "bridge", "overlay", "veth", "nf_tables", "br_netfilter"} {
		assert.Contains(t, loaded, want)
	}
}
