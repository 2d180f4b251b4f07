//go:build linux

package kvm

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/digitalocean/go-libvirt"
	"github.com/digitalocean/go-libvirt/socket/dialers"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"minik.dev/minik/drivers/kvm/kvmtest"
	vmimage "minik.dev/minik/node-image/vm"
	"minik.dev/minik/node-image/vm/guest"
)

// startLibvirtd starts a libvirtd of the test's own (kvmtest) and returns
// a connection to it and its network namespace.
func startLibvirtd(t *testing.T) (*libvirt.Libvirt, string) {
	t.Helper()
	d := kvmtest.StartLibvirtd(t)
	l := libvirt.NewWithDialer(dialers.NewLocal(dialers.WithSocket(d.Socket), dialers.WithLocalTimeout(5*time.Second)))
	require.Eventually(t, func() bool { return l.ConnectToURI(libvirt.QEMUSystem) == nil }, 60*time.Second, 200*time.Millisecond)
	t.Cleanup(func() { _ = l.Disconnect() })
	return l, d.Netns
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
	deb := kvmtest.KernelDeb(t)
	bins := kvmtest.Need(t, "qemu-system-x86_64", "qemu-img")
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
	disk := filepath.Join(dir, "data.img")
	out, err = exec.Command(bins["qemu-img"], "create", "-q", "-f", "raw", disk, "1G").CombinedOutput()
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
