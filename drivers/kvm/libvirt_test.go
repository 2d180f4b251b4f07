package kvm

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/digitalocean/go-libvirt"
	"github.com/digitalocean/go-libvirt/socket/dialers"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	vmimage "minik.dev/minik/node-image/vm"
	"minik.dev/minik/node-image/vm/guest"
)

// need returns the named programs' paths; a missing one skips the test,
// except in CI, where .ci/run installs them and the test fails.
func need(t *testing.T, programs ...string) map[string]string {
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

// startLibvirtd runs a libvirtd of the test's own inside a network
// namespace the test creates, so the cluster network it makes exists only
// there, and in a mount namespace whose /run/libvirt and /var/lib/libvirt
// are empty and whose qemu.conf is the test's: nothing is shared with a
// libvirtd the machine may run. It
// returns a connection; cleanup stops everything.
func startLibvirtd(t *testing.T) (*libvirt.Libvirt, string) {
	t.Helper()
	if os.Geteuid() != 0 {
		if os.Getenv("CI") != "" {
			t.Fatal("the libvirt test runs as root (network namespaces, libvirtd)")
		}
		t.Skip("needs root")
	}
	bins := need(t, "ip", "unshare", "libvirtd", "virtlogd")
	id := make([]byte, 4)
	_, _ = rand.Read(id)
	ns := "minik-kvmtest-" + hex.EncodeToString(id)
	dir := t.TempDir()
	sockDir := filepath.Join(dir, "sock")
	require.NoError(t, os.MkdirAll(sockDir, 0o755))
	conf := filepath.Join(dir, "libvirtd.conf")
	require.NoError(t, os.WriteFile(conf, []byte("unix_sock_dir = \""+sockDir+"\"\nunix_sock_group = \"root\"\n"), 0o644))
	// QEMU runs as root: the test's files are in a folder only root reads.
	qemuConf := filepath.Join(dir, "qemu.conf")
	require.NoError(t, os.WriteFile(qemuConf, []byte("user = \"root\"\ngroup = \"root\"\n"), 0o644))

	out, err := exec.Command(bins["ip"], "netns", "add", ns).CombinedOutput()
	require.NoError(t, err, "ip netns add: %s", out)
	t.Cleanup(func() { _ = exec.Command(bins["ip"], "netns", "del", ns).Run() })

	script := "set -e; for d in /run/libvirt /var/lib/libvirt /var/log/libvirt /var/cache/libvirt; do mkdir -p $d; mount -t tmpfs tmpfs $d; done; " +
		"mount --bind " + qemuConf + " /etc/libvirt/qemu.conf; ip link set lo up; virtlogd & exec libvirtd -f " + conf
	cmd := exec.Command(bins["ip"], "netns", "exec", ns, bins["unshare"], "--mount", "--propagation", "private", "sh", "-c", script)
	var log bytes.Buffer
	cmd.Stdout, cmd.Stderr = &log, &log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
		}
	})

	sock := filepath.Join(sockDir, "libvirt-sock")
	var l *libvirt.Libvirt
	require.Eventually(t, func() bool {
		if _, err := os.Stat(sock); err != nil {
			return false
		}
		l = libvirt.NewWithDialer(dialers.NewLocal(dialers.WithSocket(sock), dialers.WithLocalTimeout(5*time.Second)))
		return l.ConnectToURI(libvirt.QEMUSystem) == nil
	}, 60*time.Second, 100*time.Millisecond, "libvirtd did not answer: %s", &log)
	t.Cleanup(func() { _ = l.Disconnect() })
	return l, ns
}

// dialIn connects to addr from inside the network namespace ns: the
// socket is made on a thread that entered it, and keeps its namespace.
func dialIn(ctx context.Context, ns, addr string) (net.Conn, error) {
	type result struct {
		c   net.Conn
		err error
	}
	ch := make(chan result, 1)
	go func() {
		// Never unlocked: the thread ends with this goroutine, and its
		// namespace with it.
		runtime.LockOSThread()
		f, err := os.Open("/run/netns/" + ns)
		if err != nil {
			ch <- result{nil, err}
			return
		}
		defer f.Close()
		if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
			ch <- result{nil, err}
			return
		}
		var d net.Dialer
		c, err := d.DialContext(ctx, "tcp", addr)
		ch <- result{c, err}
	}()
	r := <-ch
	return r.c, r.err
}

// TestBootNodeImageWithLibvirt makes a cluster network and a node domain
// from this package's XML in a real libvirtd (QEMU under TCG: this
// machine's CPU cannot run KVM guests), boots the VM node image's test
// init with the Debian cloud kernel, and reads the node's console log.
func TestBootNodeImageWithLibvirt(t *testing.T) {
	if testing.Short() {
		t.Skip("boots a VM")
	}
	deb := os.Getenv("MINIK_TEST_KERNEL_DEB")
	if deb == "" {
		if os.Getenv("CI") != "" {
			t.Fatal("MINIK_TEST_KERNEL_DEB is not set: .ci/run downloads a Debian kernel package and sets it")
		}
		t.Skip("MINIK_TEST_KERNEL_DEB names no Debian kernel package")
	}
	bins := need(t, "qemu-system-x86_64", "qemu-img")
	l, ns := startLibvirtd(t)
	dir := t.TempDir()

	k, err := vmimage.UnpackDeb(deb, filepath.Join(dir, "kernel"))
	require.NoError(t, err)
	mods, err := vmimage.ResolveModules(k.ModulesDir, vmimage.NodeModules)
	require.NoError(t, err)
	initBin := filepath.Join(dir, "init")
	build := exec.Command("go", "build", "-trimpath", "-o", initBin, "../../node-image/vm/testdata/init")
	build.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64")
	out, err := build.CombinedOutput()
	require.NoError(t, err, "build the test init: %s", out)
	initrd := filepath.Join(dir, "initrd.gz")
	f, err := os.Create(initrd)
	require.NoError(t, err)
	require.NoError(t, vmimage.WriteInitramfs(f, vmimage.Spec{Init: initBin, Kernel: k, Modules: mods}))
	require.NoError(t, f.Close())
	disk := filepath.Join(dir, "data.qcow2")
	out, err = exec.Command(bins["qemu-img"], "create", "-q", "-f", "qcow2", disk, "1G").CombinedOutput()
	require.NoError(t, err, "qemu-img: %s", out)

	netXML, err := NetworkXML(NetworkSpec{Cluster: "kvmtest", Name: "minik-kvmtest", Subnet: netip.MustParsePrefix("172.30.0.0/16")})
	require.NoError(t, err)
	nw, err := l.NetworkCreateXML(netXML)
	require.NoError(t, err)
	t.Cleanup(func() { _ = l.NetworkDestroy(nw) })
	gotNet, err := l.NetworkGetXMLDesc(nw, 0)
	require.NoError(t, err)
	nl, ok := NetworkLabels(gotNet)
	require.True(t, ok, "libvirt keeps minik's labels: %s", gotNet)
	assert.Equal(t, "kvmtest", nl.Cluster)

	console := filepath.Join(dir, "console.log")
	node := guest.Network{Address: netip.MustParsePrefix("172.30.0.2/16"), Gateway: netip.MustParseAddr("172.30.0.1"), Hostname: "kvmtest"}
	domXML, err := DomainXML(DomainSpec{
		Labels: Labels{Cluster: "kvmtest", Node: "kvmtest", Role: "control-plane"},
		Name:   "minik-kvmtest", MemoryMiB: 512, CPUs: 1, Accel: AccelTCG,
		Kernel: k.Image, Initrd: initrd, Cmdline: "console=ttyS0 panic=-1 quiet " + node.Cmdline(),
		DataDisk: disk, Network: "minik-kvmtest", MAC: MAC("kvmtest", "kvmtest"), ConsoleLog: console,
	})
	require.NoError(t, err)
	start := time.Now()
	dom, err := l.DomainCreateXML(domXML, 0)
	require.NoError(t, err)
	t.Cleanup(func() { _ = l.DomainDestroy(dom) })
	created := time.Since(start)

	gotDom, err := l.DomainGetXMLDesc(dom, 0)
	require.NoError(t, err)
	dl, ok := DomainLabels(gotDom)
	require.True(t, ok, "libvirt keeps minik's labels: %s", gotDom)
	assert.Equal(t, "control-plane", dl.Role)

	// The node answers on its address, through the cluster's bridge, from
	// the namespace the network lives in.
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	web := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, addr string) (net.Conn, error) { return dialIn(ctx, ns, addr) },
	}}
	get := func(path string) (string, error) {
		resp, err := web.Get("http://" + node.Address.Addr().String() + ":8080" + path)
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		return string(body), err
	}
	var hello string
	for ctx.Err() == nil {
		if hello, err = get("/"); err == nil {
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	require.NoError(t, err, "the node did not answer on %s", node.Address.Addr())
	assert.Equal(t, "hello from kvmtest\n", hello)
	answered := time.Since(start)
	_, err = get("/poweroff")
	require.NoError(t, err)

	// The test init powers the VM off; a transient domain then disappears.
	for ctx.Err() == nil {
		doms, _, err := l.ConnectListAllDomains(1, 0)
		require.NoError(t, err)
		if len(doms) == 0 {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	require.NoError(t, ctx.Err(), "the VM did not power off")
	t.Logf("libvirt created the domain in %s; the node answered on its address after %s and was off after %s (TCG)",
		created.Round(time.Millisecond), answered.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
	text, err := os.ReadFile(console)
	require.NoError(t, err)
	assert.Contains(t, string(text), "minik-init: loaded")
	assert.Contains(t, string(text), "minik-init: kernel "+k.Release)
	assert.NotContains(t, string(text), "minik-init: error")
	assert.Contains(t, string(text), "minik-init: network ")
	for _, m := range []string{"virtio_net", "bridge", "overlay"} {
		assert.True(t, strings.Contains(string(text), " "+m), "module %s loaded: %s", m, text)
	}
}
