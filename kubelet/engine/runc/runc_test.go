//go:build linux

package runc

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vishvananda/netlink"

	"minik.dev/minik/kubelet/engine"
)

// The engine's tests run runc for real, as root, in a network and mount
// namespace of their own (the process re-runs itself under unshare), on a
// bridge they make there: nothing they create is seen outside, and it all
// goes when the process ends.
const (
	inNamespaceEnv = "MINIK_RUNC_TEST_NAMESPACE"
	testBridge     = "mkbr0"
	testGateway    = "10.77.0.1"
	testPodCIDR    = "10.77.129.0/24"
)

func TestMain(m *testing.M) {
	if os.Getenv(inNamespaceEnv) != "" {
		os.Exit(m.Run())
	}
	why := ""
	switch {
	case os.Geteuid() != 0:
		why = "they need root"
	default:
		for _, bin := range []string{"runc", "unshare", "busybox"} {
			if _, err := exec.LookPath(bin); err != nil {
				why = bin + " is not installed"
			}
		}
	}
	if why != "" {
		if os.Getenv("CI") != "" {
			fmt.Fprintf(os.Stderr, "runc engine tests cannot run in CI: %s\n", why)
			os.Exit(1)
		}
		fmt.Fprintf(os.Stderr, "skipping the runc engine tests: %s\n", why)
		os.Exit(0)
	}
	cmd := exec.Command("unshare", append([]string{"--net", "--mount", "--propagation", "private", "--"}, os.Args...)...)
	cmd.Env = append(os.Environ(), inNamespaceEnv+"=1")
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		if exit, ok := err.(*exec.ExitError); ok {
			os.Exit(exit.ExitCode())
		}
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Exit(0)
}

// setUpBridge makes the node's bridge with the gateway's address, once.
func setUpBridge(t *testing.T) {
	t.Helper()
	if _, err := netlink.LinkByName(testBridge); err == nil {
		return
	}
	br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: testBridge}}
	require.NoError(t, netlink.LinkAdd(br))
	addr, err := netlink.ParseAddr(testGateway + "/16")
	require.NoError(t, err)
	require.NoError(t, netlink.AddrAdd(br, addr))
	require.NoError(t, netlink.LinkSetUp(br))
	lo, err := netlink.LinkByName("lo")
	require.NoError(t, err)
	require.NoError(t, netlink.LinkSetUp(lo))
}

// busyboxImage writes a docker-save archive of an image holding Debian's
// static busybox and its applets' links.
func busyboxImage(t *testing.T, tag string, cfg v1.Config) string {
	t.Helper()
	bin, err := exec.LookPath("busybox")
	require.NoError(t, err)
	data, err := os.ReadFile(bin)
	require.NoError(t, err)
	var layer bytes.Buffer
	tw := tar.NewWriter(&layer)
	for _, d := range []string{"bin/", "etc/", "tmp/", "data/"} {
		require.NoError(t, tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: d, Mode: 0o755}))
	}
	require.NoError(t, tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: "bin/busybox", Mode: 0o755, Size: int64(len(data))}))
	_, err = tw.Write(data)
	require.NoError(t, err)
	for _, a := range []string{"sh", "echo", "cat", "sleep", "httpd", "wget", "ip", "hostname", "id", "dd", "ls", "true", "tty", "stty"} {
		require.NoError(t, tw.WriteHeader(&tar.Header{Typeflag: tar.TypeSymlink, Name: "bin/" + a, Linkname: "busybox"}))
	}
	passwd := "root:x:0:0:root:/root:/bin/sh\nwww:x:33:44:www:/:/bin/sh\n"
	require.NoError(t, tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: "etc/passwd", Mode: 0o644, Size: int64(len(passwd))}))
	_, err = tw.Write([]byte(passwd))
	require.NoError(t, err)
	index := "hello from the pod\n"
	require.NoError(t, tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: "data/index.html", Mode: 0o644, Size: int64(len(index))}))
	_, err = tw.Write([]byte(index))
	require.NoError(t, err)
	require.NoError(t, tw.Close())
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(layer.Bytes())), nil })
	require.NoError(t, err)
	img, err := mutate.AppendLayers(empty.Image, l)
	require.NoError(t, err)
	img, err = mutate.Config(img, cfg)
	require.NoError(t, err)
	ref, err := name.NewTag(tag)
	require.NoError(t, err)
	path := filepath.Join(t.TempDir(), "image.tar")
	require.NoError(t, tarball.WriteToFile(path, ref, img))
	return path
}

// newTestEngine is an engine on the test's bridge with the busybox image
// loaded as minik.test/busybox:1.
func newTestEngine(t *testing.T) *Engine {
	t.Helper()
	setUpBridge(t)
	dir := t.TempDir()
	e, err := New(context.Background(), Options{
		Node: "node-a", NodeIP: "10.77.0.2",
		StateDir: filepath.Join(dir, "state"), RunDir: filepath.Join(dir, "run"),
		Bridge: testBridge, Gateway: testGateway, PrefixLen: 16,
		PodCIDR: func(context.Context) (string, error) { return testPodCIDR, nil },
	})
	require.NoError(t, err)
	archive := busyboxImage(t, "minik.test/busybox:1", v1.Config{Cmd: []string{"sh"}, Env: []string{"FROM_IMAGE=yes", "OVERRIDE=image"}})
	f, err := os.Open(archive)
	require.NoError(t, err)
	defer f.Close()
	names, err := e.LoadImage(context.Background(), f)
	require.NoError(t, err)
	require.Equal(t, []string{"minik.test/busybox:1"}, names)
	t.Cleanup(func() {
		ctx := context.Background()
		list, _ := e.List(ctx)
		for _, c := range list {
			_ = e.RemovePod(ctx, c.PodUID)
		}
		// Mounts under TempDir must go before it is removed.
		matches, _ := filepath.Glob(filepath.Join(dir, "state", "containers", "*", "rootfs"))
		assert.Empty(t, matches, "containers left")
	})
	return e
}

// runToEnd starts a container and waits for its run to end.
func runToEnd(t *testing.T, e *Engine, id string) engine.State {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	events := e.Events(ctx)
	require.NoError(t, e.Start(ctx, id))
	for {
		select {
		case ev := <-events:
			if ev.ID == id && ev.Action == "die" {
				st, err := e.Inspect(ctx, id)
				require.NoError(t, err)
				return st
			}
		case <-ctx.Done():
			t.Fatalf("container %s did not end", id)
		}
	}
}

func TestImages(t *testing.T) {
	e := newTestEngine(t)
	ctx := context.Background()
	v, err := e.Version(ctx)
	require.NoError(t, err)
	assert.Regexp(t, `^\d+\.\d+`, v, "runc's version, as the Node reports it after runc://")

	id, ok, err := e.ImagePresent(ctx, "minik.test/busybox:1")
	require.NoError(t, err)
	assert.True(t, ok)
	assert.True(t, strings.HasPrefix(id, "sha256:"))
	_, ok, err = e.ImagePresent(ctx, "minik.test/busybox:2")
	require.NoError(t, err)
	assert.False(t, ok)
	err = e.PullImage(ctx, "minik.test/busybox:2")
	assert.ErrorIs(t, err, ErrImageNotLoaded)
	assert.Contains(t, err.Error(), "minik image load")

	// The archive's layer is unpacked with owners, modes and links.
	img, ok, err := e.images.lookup("minik.test/busybox:1")
	require.NoError(t, err)
	require.True(t, ok)
	fi, err := os.Stat(filepath.Join(img.Rootfs, "bin", "busybox"))
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o755), fi.Mode().Perm())
	link, err := os.Readlink(filepath.Join(img.Rootfs, "bin", "sh"))
	require.NoError(t, err)
	assert.Equal(t, "busybox", link)

	_, err = e.LoadImage(ctx, strings.NewReader("not an archive"))
	assert.Error(t, err)
}

func TestUntarStaysInsideRoot(t *testing.T) {
	root := t.TempDir()
	outside := t.TempDir()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	require.NoError(t, tw.WriteHeader(&tar.Header{Typeflag: tar.TypeSymlink, Name: "escape", Linkname: outside}))
	require.NoError(t, tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: "escape/evil", Mode: 0o644, Size: 1}))
	_, err := tw.Write([]byte("x"))
	require.NoError(t, err)
	require.NoError(t, tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: "../../evil2", Mode: 0o644, Size: 1}))
	_, err = tw.Write([]byte("x"))
	require.NoError(t, err)
	require.NoError(t, tw.Close())
	require.NoError(t, untar(tar.NewReader(&buf), root))
	entries, err := os.ReadDir(outside)
	require.NoError(t, err)
	assert.Empty(t, entries, "an entry was written outside the root")
}

func TestContainerRunsToCompletion(t *testing.T) {
	e := newTestEngine(t)
	ctx := context.Background()
	sb, ip, err := e.RunSandbox(ctx, engine.SandboxSpec{PodUID: "uid-1", Namespace: "default", Name: "one", Hostname: "one",
		DNS: []string{"10.77.64.10"}, DNSSearch: []string{"default.svc.cluster.local"}, ExtraHosts: []string{"alias:1.2.3.4"}})
	require.NoError(t, err)
	_, cidr, _ := net.ParseCIDR(testPodCIDR)
	assert.True(t, cidr.Contains(net.ParseIP(ip)), "pod IP %s outside the node's range", ip)
	sb2, ip2, err := e.RunSandbox(ctx, engine.SandboxSpec{PodUID: "uid-1", Namespace: "default", Name: "one"})
	require.NoError(t, err)
	assert.Equal(t, sb, sb2, "a pod's sandbox is made once")
	assert.Equal(t, ip, ip2)

	vol, err := e.EnsureVolume(ctx, "uid-1", "scratch", engine.EmptyDir{})
	require.NoError(t, err)
	script := `echo out; echo err >&2; echo "$FROM_IMAGE $OVERRIDE $FROM_POD"; cat /config/app.conf; hostname; cat /etc/resolv.conf; ` +
		`grep alias /etc/hosts; ip -4 addr show eth0 | grep -o 'inet [0-9./]*'; echo kept > /scratch/file; id -u`
	id, err := e.CreateContainer(ctx, engine.ContainerSpec{
		PodUID: "uid-1", Namespace: "default", PodName: "one", Name: "app", SandboxID: sb, Image: "minik.test/busybox:1",
		Command: []string{"sh", "-c"}, Args: []string{script},
		Env:    []string{"OVERRIDE=pod", "FROM_POD=yes"},
		Mounts: []engine.Mount{{Volume: vol, Path: "/scratch"}},
		Files:  []engine.File{{Path: "/config/app.conf", Data: []byte("setting=1\n")}},
	})
	require.NoError(t, err)
	st, err := e.Inspect(ctx, id)
	require.NoError(t, err)
	assert.Equal(t, "created", st.Status)

	st = runToEnd(t, e, id)
	assert.Equal(t, 0, st.ExitCode)
	assert.Equal(t, "Completed", st.Reason)
	assert.False(t, st.FinishedAt.Before(st.StartedAt))

	var stdout, stderr bytes.Buffer
	require.NoError(t, e.Logs(ctx, id, engine.LogOptions{Tail: -1}, &stdout, &stderr))
	assert.Equal(t, "err\n", stderr.String())
	out := stdout.String()
	for _, want := range []string{"out\n", "yes pod yes\n", "setting=1\n", "one\n", "nameserver 10.77.64.10\n",
		"search default.svc.cluster.local\n", "1.2.3.4\talias\n", "inet " + ip + "/16\n", "0\n"} {
		assert.Contains(t, out, want)
	}
	b, err := os.ReadFile(filepath.Join(vol, "file"))
	require.NoError(t, err)
	assert.Equal(t, "kept\n", string(b), "the emptyDir is the node's folder")

	// Tail and timestamps, as the Docker Engine gives them.
	stdout.Reset()
	stderr.Reset()
	require.NoError(t, e.Logs(ctx, id, engine.LogOptions{Tail: 1, Timestamps: true}, &stdout, &stderr))
	line := stdout.String() + stderr.String()
	ts, rest, ok := strings.Cut(line, " ")
	require.True(t, ok, line)
	_, err = time.Parse(time.RFC3339Nano, ts)
	assert.NoError(t, err)
	assert.Equal(t, "0\n", rest)

	failed, err := e.CreateContainer(ctx, engine.ContainerSpec{PodUID: "uid-1", Namespace: "default", PodName: "one", Name: "fails",
		SandboxID: sb, Image: "minik.test/busybox:1", Command: []string{"sh", "-c", "exit 3"}})
	require.NoError(t, err)
	st = runToEnd(t, e, failed)
	assert.Equal(t, 3, st.ExitCode)
	assert.Equal(t, "Error", st.Reason)

	missing, err := e.CreateContainer(ctx, engine.ContainerSpec{PodUID: "uid-1", Namespace: "default", PodName: "one", Name: "missing",
		SandboxID: sb, Image: "minik.test/busybox:1", Command: []string{"/no/such/program"}})
	require.NoError(t, err)
	st = runToEnd(t, e, missing)
	assert.Equal(t, engine.StartError, st.Reason)
	assert.Contains(t, st.Error, "/no/such/program")
	assert.NotZero(t, st.ExitCode)

	_, err = e.CreateContainer(ctx, engine.ContainerSpec{PodUID: "uid-1", Namespace: "default", PodName: "one", Name: "x",
		SandboxID: sb, Image: "minik.test/none:1"})
	assert.ErrorIs(t, err, ErrImageNotLoaded)

	veth := hostVethName("uid-1")
	_, err = netlink.LinkByName(veth)
	require.NoError(t, err)
	require.NoError(t, e.RemovePod(ctx, "uid-1"))
	_, err = netlink.LinkByName(veth)
	assert.Error(t, err, "the pod's veth is gone")
	list, err := e.List(ctx)
	require.NoError(t, err)
	assert.Empty(t, list)
	_, err = os.Stat(filepath.Join(e.o.RunDir, "netns", "uid-1"))
	assert.ErrorIs(t, err, os.ErrNotExist)
	_, err = os.Stat(vol)
	assert.ErrorIs(t, err, os.ErrNotExist)
}

func TestServingPodStopsAndExecs(t *testing.T) {
	e := newTestEngine(t)
	ctx := context.Background()
	sb, ip, err := e.RunSandbox(ctx, engine.SandboxSpec{PodUID: "uid-web", Namespace: "default", Name: "web", Hostname: "web"})
	require.NoError(t, err)
	id, err := e.CreateContainer(ctx, engine.ContainerSpec{PodUID: "uid-web", Namespace: "default", PodName: "web", Name: "httpd",
		SandboxID: sb, Image: "minik.test/busybox:1", Command: []string{"httpd", "-f", "-p", "8080", "-h", "/data"},
		Resources: engine.Resources{CPUMillis: 500, MemoryBytes: 64 << 20, CPUShares: 512}})
	require.NoError(t, err)
	require.NoError(t, e.Start(ctx, id))

	// The node reaches the pod on its address.
	client := &http.Client{Timeout: 2 * time.Second}
	var body string
	require.Eventually(t, func() bool {
		res, err := client.Get("http://" + net.JoinHostPort(ip, "8080") + "/index.html")
		if err != nil {
			return false
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		body = string(b)
		return res.StatusCode == http.StatusOK
	}, 20*time.Second, 100*time.Millisecond)
	assert.Equal(t, "hello from the pod\n", body)

	// Another pod reaches it too, over the bridge.
	sbB, _, err := e.RunSandbox(ctx, engine.SandboxSpec{PodUID: "uid-client", Namespace: "default", Name: "client"})
	require.NoError(t, err)
	cl, err := e.CreateContainer(ctx, engine.ContainerSpec{PodUID: "uid-client", Namespace: "default", PodName: "client", Name: "wget",
		SandboxID: sbB, Image: "minik.test/busybox:1", Command: []string{"wget", "-q", "-O", "-", "http://" + ip + ":8080/index.html"}})
	require.NoError(t, err)
	st := runToEnd(t, e, cl)
	assert.Equal(t, 0, st.ExitCode)
	var out, errOut bytes.Buffer
	require.NoError(t, e.Logs(ctx, cl, engine.LogOptions{Tail: -1}, &out, &errOut))
	assert.Equal(t, "hello from the pod\n", out.String(), errOut.String())

	// Exec runs in the container, with its exit code.
	out.Reset()
	code, err := e.Exec(ctx, id, []string{"sh", "-c", "hostname; cat /data/index.html; exit 7"}, nil, &out, &errOut, false, nil)
	require.NoError(t, err)
	assert.Equal(t, 7, code)
	assert.Equal(t, "web\nhello from the pod\n", out.String())

	// With a terminal: its output is one stream, its size follows the client's.
	out.Reset()
	sizes := make(chan engine.Size, 1)
	sizes <- engine.Size{Width: 100, Height: 30}
	close(sizes)
	code, err = e.Exec(ctx, id, []string{"sh", "-c", "tty; sleep 0.5; stty size; echo oops >&2; exit 4"}, nil, &out, nil, true, sizes)
	require.NoError(t, err)
	assert.Equal(t, 4, code)
	assert.Contains(t, out.String(), "/dev/pts/")
	assert.Contains(t, out.String(), "30 100")
	assert.Contains(t, out.String(), "oops", "stderr goes to the terminal too")

	s, err := e.Stats(ctx, id)
	require.NoError(t, err)
	assert.NotZero(t, s.MemoryUsage)
	assert.NotZero(t, s.CPUNanos)
	ns, err := e.Stats(ctx, sb)
	require.NoError(t, err)
	require.NotNil(t, ns.Network)
	assert.NotZero(t, ns.Network.TxBytes, "the pod sent its page")

	// A follower sees the log end when the container stops.
	followed := make(chan error, 1)
	go func() {
		followed <- e.Logs(ctx, id, engine.LogOptions{Follow: true, Tail: -1}, io.Discard, io.Discard)
	}()
	require.NoError(t, e.Stop(ctx, id, 5*time.Second))
	st, err = e.Inspect(ctx, id)
	require.NoError(t, err)
	assert.False(t, st.Running)
	assert.NotEqual(t, 0, st.ExitCode)
	select {
	case err := <-followed:
		assert.NoError(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("a follow did not end with the container")
	}
}

func TestContainerWithTerminal(t *testing.T) {
	e := newTestEngine(t)
	ctx := context.Background()
	sb, _, err := e.RunSandbox(ctx, engine.SandboxSpec{PodUID: "uid-tty", Namespace: "default", Name: "tty"})
	require.NoError(t, err)
	id, err := e.CreateContainer(ctx, engine.ContainerSpec{PodUID: "uid-tty", Namespace: "default", PodName: "tty", Name: "shell",
		SandboxID: sb, Image: "minik.test/busybox:1", Command: []string{"sh", "-c", "tty; read line; echo got $line"},
		Stdin: true, TTY: true})
	require.NoError(t, err)
	require.NoError(t, e.Start(ctx, id))
	var out bytes.Buffer
	attachCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	// Attach writes to the terminal and reads its output until the
	// container ends.
	require.NoError(t, e.Attach(attachCtx, id, strings.NewReader("hello\n"), &out, nil, true, nil))
	assert.Contains(t, out.String(), "got hello")
	// The terminal closes a moment before the engine records the exit.
	var st engine.State
	require.Eventually(t, func() bool {
		st, err = e.Inspect(ctx, id)
		return err == nil && !st.Running
	}, 10*time.Second, 20*time.Millisecond, "the container stops once its shell ends")
	assert.Equal(t, 0, st.ExitCode)
	var logs bytes.Buffer
	require.NoError(t, e.Logs(ctx, id, engine.LogOptions{Tail: -1}, &logs, &logs))
	assert.Contains(t, logs.String(), "/dev/pts/0")
}

func TestMemoryLimitKills(t *testing.T) {
	e := newTestEngine(t)
	ctx := context.Background()
	sb, _, err := e.RunSandbox(ctx, engine.SandboxSpec{PodUID: "uid-oom", Namespace: "default", Name: "oom"})
	require.NoError(t, err)
	id, err := e.CreateContainer(ctx, engine.ContainerSpec{PodUID: "uid-oom", Namespace: "default", PodName: "oom", Name: "hog",
		SandboxID: sb, Image: "minik.test/busybox:1", Command: []string{"dd", "if=/dev/zero", "of=/dev/null", "bs=256M", "count=1"},
		Resources: engine.Resources{MemoryBytes: 32 << 20}})
	require.NoError(t, err)
	st := runToEnd(t, e, id)
	assert.True(t, st.OOMKilled, "state %+v", st)
	assert.Equal(t, "OOMKilled", st.Reason)
	assert.Equal(t, 137, st.ExitCode)
}

func TestHostNetworkPod(t *testing.T) {
	e := newTestEngine(t)
	ctx := context.Background()
	sb, ip, err := e.RunSandbox(ctx, engine.SandboxSpec{PodUID: "uid-host", Namespace: "kube-system", Name: "agent", HostNetwork: true})
	require.NoError(t, err)
	assert.Empty(t, ip, "a host-network pod has the node's address")
	id, err := e.CreateContainer(ctx, engine.ContainerSpec{PodUID: "uid-host", Namespace: "kube-system", PodName: "agent", Name: "c",
		SandboxID: sb, Image: "minik.test/busybox:1", Command: []string{"sh", "-c", "ip link show " + testBridge + " >/dev/null && echo sees-bridge"}})
	require.NoError(t, err)
	st := runToEnd(t, e, id)
	var out, errOut bytes.Buffer
	require.NoError(t, e.Logs(ctx, id, engine.LogOptions{Tail: -1}, &out, &errOut))
	assert.Equal(t, 0, st.ExitCode, errOut.String())
	assert.Equal(t, "sees-bridge\n", out.String())
}

func TestSubPath(t *testing.T) {
	root := t.TempDir()
	require.NoError(t, os.Symlink("/etc", filepath.Join(root, "link")))
	tests := []struct {
		name, sub, want string
		wantErr         string
	}{
		{name: "directory made", sub: "a/b"},
		{name: "file made", sub: "f.txt", want: engine.SubPathFileOrCreate},
		{name: "file missing", sub: "nofile", want: engine.SubPathFile, wantErr: "does not exist"},
		{name: "through a link", sub: "link/passwd", wantErr: "symbolic link"},
		{name: "up and out", sub: "../x", wantErr: "inside the volume"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, err := subPath(root, tc.sub, tc.want, -1)
			if tc.wantErr != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tc.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, filepath.Join(root, tc.sub), p)
			_, err = os.Stat(p)
			assert.NoError(t, err)
		})
	}
}

func TestRemoveClaimVolume(t *testing.T) {
	e := &Engine{o: Options{StateDir: t.TempDir()}}
	ctx := context.Background()
	dir, err := e.volumePath("pvc-1")
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "data"), []byte("x"), 0o644))
	require.NoError(t, e.RemoveClaimVolume(ctx, "pvc-1"))
	assert.NoDirExists(t, dir)
	require.NoError(t, e.RemoveClaimVolume(ctx, "pvc-1"), "a volume that is gone already")
	for _, bad := range []string{"", "..", "a/b"} {
		assert.Error(t, e.RemoveClaimVolume(ctx, bad), bad)
	}
}

func TestCapabilities(t *testing.T) {
	tests := []struct {
		name string
		sec  engine.Security
		has  []string
		not  []string
		n    int
	}{
		{name: "the engine's defaults", n: len(defaultCapabilities), has: []string{"CAP_CHOWN", "CAP_NET_RAW"}, not: []string{"CAP_NET_ADMIN"}},
		{name: "add one", sec: engine.Security{CapAdd: []string{"NET_ADMIN"}}, n: len(defaultCapabilities) + 1, has: []string{"CAP_NET_ADMIN"}},
		{name: "drop one", sec: engine.Security{CapDrop: []string{"net_raw"}}, n: len(defaultCapabilities) - 1, not: []string{"CAP_NET_RAW"}},
		{name: "drop all, add one", sec: engine.Security{CapDrop: []string{"ALL"}, CapAdd: []string{"CAP_NET_BIND_SERVICE"}}, n: 1, has: []string{"CAP_NET_BIND_SERVICE"}},
		{name: "privileged", sec: engine.Security{Privileged: true, CapDrop: []string{"ALL"}}, n: len(allCapabilities), has: []string{"CAP_SYS_ADMIN"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := capabilities(tt.sec)
			assert.Len(t, got, tt.n)
			for _, c := range tt.has {
				assert.Contains(t, got, c)
			}
			for _, c := range tt.not {
				assert.NotContains(t, got, c)
			}
		})
	}
}

// A file volume's generations, laid out as the docker engine lays them out:
// readers follow ..data, and a name gone from the source dangles.
func TestWriteVolumeFiles(t *testing.T) {
	e := &Engine{o: Options{StateDir: t.TempDir()}}
	ctx := context.Background()
	dir, err := e.EnsureVolume(ctx, "uid-1", "cfg", engine.EmptyDir{})
	require.NoError(t, err)
	require.NoError(t, e.WriteVolumeFiles(ctx, "", dir, "..1", []engine.File{{Path: "a", Data: []byte("one")}, {Path: "dir/b", Data: []byte("bee"), Mode: 0o600}}))
	read := func(p string) string {
		b, err := os.ReadFile(filepath.Join(dir, p))
		require.NoError(t, err)
		return string(b)
	}
	assert.Equal(t, "one", read("a"))
	assert.Equal(t, "bee", read("dir/b"))
	fi, err := os.Stat(filepath.Join(dir, "dir/b"))
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
	require.NoError(t, e.WriteVolumeFiles(ctx, "", dir, "..2", []engine.File{{Path: "a", Data: []byte("two")}}))
	assert.Equal(t, "two", read("a"))
	_, err = os.ReadFile(filepath.Join(dir, "dir/b"))
	assert.ErrorIs(t, err, os.ErrNotExist)
	require.Error(t, e.WriteVolumeFiles(ctx, "", dir, "..3", []engine.File{{Path: "..data"}}), "names of the layout are no files")

	// Given to an fsGroup: the file and the folders made for it.
	require.NoError(t, e.WriteVolumeFiles(ctx, "", dir, "..4", []engine.File{{Path: "sub/c", Data: []byte("c"), Mode: 0o440, GID: 1234}}))
	for p, want := range map[string]os.FileMode{"sub/c": 0o440, "sub": 0o755 | os.ModeDir | os.ModeSetgid, "..4": 0o755 | os.ModeDir | os.ModeSetgid} {
		fi, err := os.Stat(filepath.Join(dir, p))
		require.NoError(t, err)
		assert.Equal(t, want, fi.Mode(), p)
		assert.Equal(t, uint32(1234), fi.Sys().(*syscall.Stat_t).Gid, p)
	}
}
