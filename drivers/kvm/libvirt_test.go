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

	"minik.dev/minik/drivers"
	"minik.dev/minik/drivers/kvm/kvmtest"
	vmimage "minik.dev/minik/node-image/vm"
	"minik.dev/minik/node-image/vm/guest"
)

// startLibvirtd starts a libvirtd of the test's own (kvmtest) and returns
// a connection to it, and it.
func startLibvirtd(t *testing.T) (*libvirt.Libvirt, kvmtest.Libvirtd) {
	t.Helper()
	d := kvmtest.StartLibvirtd(t)
	l := libvirt.NewWithDialer(dialers.NewLocal(dialers.WithSocket(d.Socket), dialers.WithLocalTimeout(5*time.Second)))
	require.Eventually(t, func() bool { return l.ConnectToURI(libvirt.QEMUSystem) == nil }, 60*time.Second, 200*time.Millisecond)
	t.Cleanup(func() { _ = l.Disconnect() })
	return l, d
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
	l, daemon := startLibvirtd(t)
	ns := daemon.Netns
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

// TestClusterOfAnotherHome: two minik homes with a cluster named dev on
// one libvirtd. The second home's start is refused, naming the first
// home, and its stop, delete and rollback leave the first home's domains
// and network alone, a domain made before the profile label included
// (known by its disk's folder).
func TestClusterOfAnotherHome(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a libvirtd")
	}
	kvmtest.Need(t, "qemu-system-x86_64")
	l, daemon := startLibvirtd(t)
	d := New(nil, nil, nil)
	d.getenv = func(k string) string {
		if k == EnvSocket {
			return daemon.Socket
		}
		return ""
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	homeA, homeB := filepath.Join(t.TempDir(), "ha"), filepath.Join(t.TempDir(), "hb")
	a := drivers.Cluster{Name: "dev", ProfileDir: filepath.Join(homeA, "profiles", "dev")}
	b := drivers.Cluster{Name: "dev", ProfileDir: filepath.Join(homeB, "profiles", "dev")}
	const subnet = "172.30.0.0/16"
	require.NoError(t, d.ReserveSubnet(ctx, a, subnet))
	require.NoError(t, d.ReserveSubnet(ctx, a, subnet), "the same home reserves again")

	// Home A's nodes: dev labelled with its profile, dev-m02 made before
	// the label.
	define := func(node, role, profile string) {
		t.Helper()
		xml, err := DomainXML(DomainSpec{
			Labels: Labels{Cluster: "dev", Node: node, Role: role, Profile: profile},
			Name:   node, MemoryMiB: 256, CPUs: 1, Accel: AccelTCG,
			Kernel: "/nonexistent/vmlinuz", Initrd: "/nonexistent/initrd", Cmdline: "console=ttyS0",
			DataDisk: filepath.Join(a.ProfileDir, "nodes", node, vmDir, "data.img"),
			Network:  NetworkName("dev"), MAC: MAC("dev", node),
			ConsoleLog: filepath.Join(a.ProfileDir, "nodes", node, vmDir, "console.log"),
		})
		require.NoError(t, err)
		_, err = l.DomainDefineXML(xml)
		require.NoError(t, err)
	}
	define("dev", "control-plane", a.ProfileDir)
	define("dev-m02", "worker", "")
	remaining := func() (doms, nets []string) {
		t.Helper()
		ds, _, err := l.ConnectListAllDomains(1, 0)
		require.NoError(t, err)
		for _, x := range ds {
			doms = append(doms, x.Name)
		}
		ns, _, err := l.ConnectListAllNetworks(1, 0)
		require.NoError(t, err)
		for _, x := range ns {
			if strings.HasPrefix(x.Name, "minik-") { // not the package's "default"
				nets = append(nets, x.Name)
			}
		}
		return doms, nets
	}

	err := d.ReserveSubnet(ctx, b, subnet)
	require.ErrorContains(t, err, "libvirt already has a cluster named dev from another minik home (its network minik-dev belongs to MINIK_HOME="+homeA+")")
	for _, node := range []string{"dev", "dev-m02"} {
		n := drivers.Node{Cluster: "dev", Name: node, ProfileDir: b.ProfileDir, Dir: filepath.Join(b.ProfileDir, "nodes", node), Subnet: subnet}
		_, _, err := ownDomain(l, n)
		require.ErrorContains(t, err, "(its domain "+node+" belongs to MINIK_HOME="+homeA+")")
		state, err := d.NodeState(ctx, n)
		require.NoError(t, err)
		assert.Equal(t, drivers.StateStopped, state, "another home's domain is not this home's node")
		require.NoError(t, d.StopNode(ctx, n))
		require.NoError(t, d.DeleteNode(ctx, n))

		n.ProfileDir, n.Dir = a.ProfileDir, filepath.Join(a.ProfileDir, "nodes", node)
		_, found, err := ownDomain(l, n)
		require.NoError(t, err)
		assert.True(t, found, "home A's own node %s", node)
	}
	require.NoError(t, d.DeleteCluster(ctx, b))
	doms, nets := remaining()
	assert.ElementsMatch(t, []string{"dev", "dev-m02"}, doms)
	assert.Equal(t, []string{"minik-dev"}, nets)

	// A network made before the label stays while home A's domains do.
	nw, err := l.NetworkLookupByName(NetworkName("dev"))
	require.NoError(t, err)
	require.NoError(t, l.NetworkDestroy(nw))
	require.NoError(t, l.NetworkUndefine(nw))
	old, err := NetworkXML(NetworkSpec{Cluster: "dev", Name: NetworkName("dev"), Subnet: netip.MustParsePrefix(subnet)})
	require.NoError(t, err)
	_, err = l.NetworkDefineXML(old)
	require.NoError(t, err)
	require.NoError(t, d.DeleteCluster(ctx, b))
	_, nets = remaining()
	assert.Equal(t, []string{"minik-dev"}, nets)

	require.NoError(t, d.DeleteCluster(ctx, a))
	doms, nets = remaining()
	assert.Empty(t, doms)
	assert.Empty(t, nets)
}
