package efidisk

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	vmimage "minik.dev/minik/node-image/vm"
	"minik.dev/minik/node-image/vm/guest"
)

// need returns the path in env, else def, when the file exists; without it
// the test skips, except in CI, where it fails with hint.
func need(t *testing.T, env, def, hint string) string {
	t.Helper()
	p := os.Getenv(env)
	if p == "" {
		p = def
	}
	if p != "" {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("%s is missing: %s", env, hint)
	}
	t.Skipf("no %s (%s)", env, hint)
	return ""
}

// syncBuffer is the VM's console, read while QEMU writes it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestBootUnderOVMF boots the disk this package writes as Hyper-V would
// boot it: UEFI firmware (Debian's OVMF), no kernel given to the VM, the
// disk a fixed VHD. The unified kernel image on it starts the Debian
// cloud kernel with the test init, which configures the address and
// hostname the disk's command line gives it and answers HTTP there
// (QEMU's user network forwards a loopback port to it).
func TestBootUnderOVMF(t *testing.T) {
	if testing.Short() {
		t.Skip("boots a VM")
	}
	deb := need(t, "MINIK_TEST_KERNEL_DEB", "", ".ci/run downloads a Debian linux-image-cloud-amd64 package and sets it")
	stubPath := need(t, "MINIK_TEST_EFI_STUB", "/usr/lib/systemd/boot/efi/linuxx64.efi.stub", ".ci/run installs Debian's systemd-boot-efi")
	ovmf := need(t, "MINIK_TEST_OVMF", "/usr/share/ovmf/OVMF.fd", ".ci/run installs Debian's ovmf")
	qemu, err := exec.LookPath("qemu-system-x86_64")
	if err != nil {
		qemu = need(t, "MINIK_TEST_QEMU", "", ".ci/run installs Debian's qemu-system-x86")
	}

	dir := t.TempDir()
	k, err := vmimage.UnpackDeb(deb, filepath.Join(dir, "kernel"))
	require.NoError(t, err)
	mods, err := vmimage.ResolveModules(k.ModulesDir, vmimage.NodeModules)
	require.NoError(t, err)
	initBin := filepath.Join(dir, "init")
	build := exec.Command("go", "build", "-trimpath", "-o", initBin, "../testdata/init")
	build.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64")
	out, err := build.CombinedOutput()
	require.NoError(t, err, "build the test init: %s", out)
	var initrd bytes.Buffer
	require.NoError(t, vmimage.WriteInitramfs(&initrd, vmimage.Spec{Init: initBin, Kernel: k, Modules: mods}))
	kernel, err := os.ReadFile(k.Image)
	require.NoError(t, err)
	stub, err := os.ReadFile(stubPath)
	require.NoError(t, err)

	// QEMU's user network: the guest is 10.0.2.15, the host 10.0.2.2.
	node := guest.Network{Address: netip.MustParsePrefix("10.0.2.15/24"), Gateway: netip.MustParseAddr("10.0.2.2"), Hostname: "hv-boot-test"}
	files, err := BootFiles(stub, UKI{Kernel: kernel, Initrd: initrd.Bytes(), Cmdline: "console=ttyS0 panic=-1 quiet " + node.Cmdline(), OSRelease: "ID=minik\nNAME=minik node\n"})
	require.NoError(t, err)
	vhd := filepath.Join(dir, "boot.vhd")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	require.NoError(t, WriteVHD(ctx, vhd, Spec{Files: files}))

	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := l.Addr().(*net.TCPAddr).Port
	require.NoError(t, l.Close())

	cmd := exec.CommandContext(ctx, qemu, "-accel", "tcg", "-m", "512", "-nographic", "-no-reboot", "-nodefaults",
		"-serial", "stdio", "-bios", ovmf,
		"-drive", "file="+vhd+",format=vpc,if=none,id=boot", "-device", "virtio-blk-pci,drive=boot",
		"-netdev", "user,id=net0,restrict=on,hostfwd=tcp:127.0.0.1:"+strconv.Itoa(port)+"-10.0.2.15:8080",
		"-device", "virtio-net-pci,netdev=net0")
	var console syncBuffer
	cmd.Stdout, cmd.Stderr = &console, &console
	start := time.Now()
	require.NoError(t, cmd.Start())
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	waited := false
	defer func() {
		if !waited {
			_ = cmd.Process.Kill()
			<-exited
		}
	}()

	url := fmt.Sprintf("http://127.0.0.1:%d/", port)
	client := &http.Client{Timeout: 2 * time.Second}
	var hello string
	for hello == "" {
		select {
		case err := <-exited:
			waited = true
			t.Fatalf("the VM stopped before it answered (%v):\n%s", err, console.String())
		case <-ctx.Done():
			t.Fatalf("the VM did not answer on its address:\n%s", console.String())
		case <-time.After(500 * time.Millisecond):
		}
		resp, err := client.Get(url)
		if err != nil {
			continue
		}
		body, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		hello = string(body)
	}
	answered := time.Since(start)
	assert.Equal(t, "hello from hv-boot-test\n", hello, "the hostname came from the disk's command line")
	resp, err := client.Get(url + "poweroff")
	require.NoError(t, err)
	_ = resp.Body.Close()
	select {
	case err := <-exited:
		waited = true
		require.NoError(t, err, console.String())
	case <-ctx.Done():
		t.Fatalf("the VM did not power off:\n%s", console.String())
	}
	t.Logf("OVMF (TCG) booted the VHD and the node answered on its address in %s; powered off after %s",
		answered.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
	text := console.String()
	assert.Contains(t, text, "minik-init: kernel "+k.Release)
	assert.Contains(t, text, "minik-init: network ")
	assert.Contains(t, text, " 10.0.2.15/24")
	assert.NotContains(t, text, "minik-init: error")
}
