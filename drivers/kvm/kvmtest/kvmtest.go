//go:build linux

// Package kvmtest starts a libvirtd of a test's own, in a network
// namespace the test creates, for the kvm driver's tests.
package kvmtest

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// Need returns the named programs' paths; a missing one skips the test,
// except in CI, where .ci/run installs them and the test fails.
func Need(t *testing.T, programs ...string) map[string]string {
	t.Helper()
	paths := map[string]string{}
	for _, p := range programs {
		path, err := exec.LookPath(p)
		if err != nil {
			if os.Getenv("CI") != "" {
				t.Fatalf("%s is missing: .ci/run installs Debian's libvirt-daemon-system and qemu-system-x86", p)
			}
			t.Skipf("%s is not installed", p)
		}
		paths[p] = path
	}
	return paths
}

// KernelDeb is the Debian kernel package .ci/run downloads; without it
// the test skips, except in CI, where it fails.
func KernelDeb(t *testing.T) string {
	t.Helper()
	deb := os.Getenv("MINIK_TEST_KERNEL_DEB")
	if deb == "" {
		if os.Getenv("CI") != "" {
			t.Fatal("MINIK_TEST_KERNEL_DEB is not set: .ci/run downloads a Debian kernel package and sets it")
		}
		t.Skip("MINIK_TEST_KERNEL_DEB names no Debian kernel package")
	}
	return deb
}

// Libvirtd is a running libvirtd of the test's own.
type Libvirtd struct {
	// Socket is its read-write socket.
	Socket string
	// Netns is the network namespace it (and the networks it makes) lives in.
	Netns string
}

// StartLibvirtd runs a libvirtd inside a network namespace the test
// creates, so the cluster networks it makes exist only there, and in a
// mount namespace whose /run/libvirt and /var/lib/libvirt are empty and
// whose qemu.conf is the test's (QEMU runs as root): nothing is shared
// with a libvirtd the machine may run. Cleanup stops it, its VMs and the
// namespace.
func StartLibvirtd(t *testing.T) Libvirtd {
	t.Helper()
	if os.Geteuid() != 0 {
		if os.Getenv("CI") != "" {
			t.Fatal("the libvirt tests run as root (network namespaces, libvirtd)")
		}
		t.Skip("needs root")
	}
	bins := Need(t, "ip", "unshare", "libvirtd", "virtlogd")
	id := make([]byte, 4)
	_, _ = rand.Read(id)
	ns := "minik-kvmtest-" + hex.EncodeToString(id)
	dir := t.TempDir()
	sockDir := filepath.Join(dir, "sock")
	require.NoError(t, os.MkdirAll(sockDir, 0o755))
	conf := filepath.Join(dir, "libvirtd.conf")
	require.NoError(t, os.WriteFile(conf, []byte("unix_sock_dir = \""+sockDir+"\"\nunix_sock_group = \"root\"\n"), 0o644))
	qemuConf := filepath.Join(dir, "qemu.conf")
	require.NoError(t, os.WriteFile(qemuConf, []byte("user = \"root\"\ngroup = \"root\"\n"), 0o644))

	out, err := exec.Command(bins["ip"], "netns", "add", ns).CombinedOutput()
	require.NoError(t, err, "ip netns add: %s", out)
	t.Cleanup(func() {
		// Whatever is left in the namespace (QEMUs of a failed test) goes.
		if pids, err := exec.Command(bins["ip"], "netns", "pids", ns).Output(); err == nil {
			for _, f := range strings.Fields(string(pids)) {
				// The test itself may be listed: a thread of it that
				// entered the namespace to dial may be its first.
				if pid, err := strconv.Atoi(f); err == nil && pid != os.Getpid() {
					_ = syscall.Kill(pid, syscall.SIGKILL)
				}
			}
		}
		_ = exec.Command(bins["ip"], "netns", "del", ns).Run()
	})

	script := "set -e; for d in /run/libvirt /var/lib/libvirt /var/log/libvirt /var/cache/libvirt; do mkdir -p $d; mount -t tmpfs tmpfs $d; done; " +
		"mount --bind " + qemuConf + " /etc/libvirt/qemu.conf; ip link set lo up; virtlogd -p " + filepath.Join(dir, "virtlogd.pid") + " & exec libvirtd -p " + filepath.Join(dir, "libvirtd.pid") + " -f " + conf
	cmd := exec.Command(bins["ip"], "netns", "exec", ns, bins["unshare"], "--mount", "--propagation", "private", "sh", "-c", script)
	var log bytes.Buffer
	cmd.Stdout, cmd.Stderr = &log, &log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		// libvirtd leaves running QEMUs behind when it stops: they are
		// in its process group, and go with it.
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
		}
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	})
	sock := filepath.Join(sockDir, "libvirt-sock")
	require.Eventually(t, func() bool {
		c, err := net.Dial("unix", sock)
		if err != nil {
			return false
		}
		_ = c.Close()
		return true
	}, 60*time.Second, 100*time.Millisecond, "libvirtd did not answer: %s", &log)
	return Libvirtd{Socket: sock, Netns: ns}
}
