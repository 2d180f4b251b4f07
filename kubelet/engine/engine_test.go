package engine

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/utils/ptr"

	"minik.dev/minik/nodeconfig"
)

// testEnv is what every subtest shares: a FROM scratch image of the probe
// (testdata/probe) and a network of its own, both removed when the test
// ends.
type testEnv struct {
	cli     *client.Client
	image   string
	network string
	ipRange netip.Prefix
}

// TestEngine runs against this machine's Docker Engine. Without one it
// skips, except in CI, where an engine always answers and its absence is a
// failure.
func TestEngine(t *testing.T) {
	v := setupEnv(t)
	t.Run("Sandbox", v.testSandbox)
	t.Run("SharedNetwork", v.testSharedNetwork)
	t.Run("CommandArgs", v.testCommandArgs)
	t.Run("EnvFilesResources", v.testEnvFilesResources)
	t.Run("EmptyDir", v.testEmptyDir)
	t.Run("SubPathsTmpfsAndFSGroup", v.testSubPathsTmpfsAndFSGroup)
	t.Run("ExitAndInspect", v.testExitAndInspect)
	t.Run("PodFilesAndSecurity", v.testPodFilesAndSecurity)
	t.Run("Logs", v.testLogs)
	t.Run("Exec", v.testExec)
	t.Run("Stats", v.testStats)
	t.Run("Images", v.testImages)
	t.Run("Events", v.testEvents)
	t.Run("RemovePod", v.testRemovePod)
	t.Run("RemoveOrphans", v.testRemoveOrphans)
	t.Run("PodNetwork", v.testPodNetwork)
}

func setupEnv(t *testing.T) *testEnv {
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	cli, err := client.New(client.FromEnv)
	require.NoError(t, err)
	t.Cleanup(func() { _ = cli.Close() })
	pctx, pcancel := context.WithTimeout(ctx, 10*time.Second)
	_, err = cli.Ping(pctx, client.PingOptions{NegotiateAPIVersion: true})
	pcancel()
	if err != nil {
		if os.Getenv("CI") == "" {
			t.Skipf("no docker engine answers: %v", err)
		}
		t.Fatalf("no docker engine answers (CI is set, so that is a failure): %v", err)
	}
	ver, err := cli.ServerVersion(ctx, client.ServerVersionOptions{})
	require.NoError(t, err)

	v := &testEnv{cli: cli}
	v.image = "minik-engine-test:" + randHex(6)
	buildImage(ctx, t, cli, ver.Arch, v.image)
	v.network, v.ipRange = createNetwork(ctx, t, cli)
	return v
}

// buildImage compiles the probe for the engine's platform and builds a FROM
// scratch image of it through the Engine API.
func buildImage(ctx context.Context, t *testing.T, cli *client.Client, arch, tag string) {
	bin := filepath.Join(t.TempDir(), "probe")
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-o", bin, "./testdata/probe")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+arch)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "build probe: %s", out)
	probe, err := os.ReadFile(bin)
	require.NoError(t, err)

	var tarball bytes.Buffer
	tw := tar.NewWriter(&tarball)
	for _, f := range []struct {
		name string
		mode int64
		data []byte
	}{
		{"Dockerfile", 0o644, []byte("FROM scratch\nCOPY probe /probe\nENTRYPOINT [\"/probe\"]\nCMD [\"echo\", \"default-cmd\"]\n")},
		{"probe", 0o755, probe},
	} {
		require.NoError(t, tw.WriteHeader(&tar.Header{Name: f.name, Mode: f.mode, Size: int64(len(f.data))}))
		_, err := tw.Write(f.data)
		require.NoError(t, err)
	}
	require.NoError(t, tw.Close())

	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		_, err := cli.ImageRemove(ctx, tag, client.ImageRemoveOptions{Force: true, PruneChildren: true})
		assert.NoError(t, err, "remove test image")
	})
	res, err := cli.ImageBuild(ctx, &tarball, client.ImageBuildOptions{Tags: []string{tag}, Remove: true, ForceRemove: true})
	require.NoError(t, err)
	defer res.Body.Close()
	// Build errors arrive inside the 200 response's JSON stream.
	msgs, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	require.NotContains(t, string(msgs), `"errorDetail"`, "build test image")
}

// createNetwork makes a bridge network on the first free /16 of a few
// candidates, with the upper half as its --ip-range like a cluster
// network.
func createNetwork(ctx context.Context, t *testing.T, cli *client.Client) (string, netip.Prefix) {
	taken := hostPrefixes(ctx, t, cli)
	name := "minik-engine-test-" + randHex(6)
	for _, cidr := range []string{"172.29.0.0/16", "172.28.0.0/16", "172.27.0.0/16", "10.213.0.0/16", "10.214.0.0/16", "192.168.213.0/24"} {
		subnet := netip.MustParsePrefix(cidr)
		if overlapsAny(subnet, taken) {
			continue
		}
		ipRange := netip.PrefixFrom(subnet.Addr(), subnet.Bits()+1)
		b := ipRange.Addr().As4()
		b[2] |= 0x80 // upper half of a /16 (x.y.128.0/17)
		if subnet.Bits() == 24 {
			b[2] &^= 0x80
			b[3] |= 0x80
		}
		ipRange = netip.PrefixFrom(netip.AddrFrom4(b), subnet.Bits()+1)
		_, err := cli.NetworkCreate(ctx, name, client.NetworkCreateOptions{
			Driver: "bridge",
			IPAM:   &network.IPAM{Config: []network.IPAMConfig{{Subnet: subnet, IPRange: ipRange}}},
			Labels: map[string]string{"dev.minik.test": "engine"},
		})
		if err != nil {
			// Another user of the engine may have taken it since we looked.
			t.Logf("create test network on %s: %v", subnet, err)
			continue
		}
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			_, err := cli.NetworkRemove(ctx, name, client.NetworkRemoveOptions{})
			assert.NoError(t, err, "remove test network")
		})
		return name, ipRange
	}
	t.Fatal("no free subnet for the test network")
	return "", netip.Prefix{}
}

// hostPrefixes are the subnets of the engine's networks and of this
// host's interfaces.
func hostPrefixes(ctx context.Context, t *testing.T, cli *client.Client) []netip.Prefix {
	var out []netip.Prefix
	nets, err := cli.NetworkList(ctx, client.NetworkListOptions{})
	require.NoError(t, err)
	for _, n := range nets.Items {
		for _, c := range n.IPAM.Config {
			if c.Subnet.IsValid() {
				out = append(out, c.Subnet)
			}
		}
	}
	addrs, err := net.InterfaceAddrs()
	require.NoError(t, err)
	for _, a := range addrs {
		if p, err := netip.ParsePrefix(a.String()); err == nil {
			out = append(out, p.Masked())
		}
	}
	return out
}

func overlapsAny(p netip.Prefix, all []netip.Prefix) bool {
	for _, q := range all {
		if p.Overlaps(q) {
			return true
		}
	}
	return false
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// cluster returns a fresh cluster name whose containers and volumes are
// all force-removed when the test ends, whatever the test did.
func (v *testEnv) cluster(t *testing.T) string {
	name := "enginetest-" + randHex(4)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		f := labelFilter(map[string]string{nodeconfig.LabelCluster: name})
		list, err := v.cli.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: f})
		if assert.NoError(t, err) {
			// App containers first: the engine will not remove a sandbox
			// whose namespaces are still in use.
			for _, pass := range []bool{false, true} {
				for _, c := range list.Items {
					if (c.Labels[nodeconfig.LabelKind] == nodeconfig.KindSandbox) == pass {
						_, err := v.cli.ContainerRemove(ctx, c.ID, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true})
						assert.NoError(t, err, "remove test container")
					}
				}
			}
		}
		vols, err := v.cli.VolumeList(ctx, client.VolumeListOptions{Filters: f})
		if assert.NoError(t, err) {
			for _, vol := range vols.Items {
				_, err := v.cli.VolumeRemove(ctx, vol.Name, client.VolumeRemoveOptions{Force: true})
				assert.NoError(t, err, "remove test volume")
			}
		}
	})
	return name
}

func (v *testEnv) engine(t *testing.T, cluster, node string) *Engine {
	e, err := New(testCtx(t), cluster, node, nodeconfig.DockerRuntime{
		Network:        v.network,
		SandboxImage:   v.image,
		SandboxCommand: []string{"/probe", "pause"},
	})
	require.NoError(t, err)
	t.Cleanup(func() { _ = e.Close() })
	return e
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

var podSeq struct {
	sync.Mutex
	n int
}

// pod runs a sandbox for a new pod and returns the spec of an app
// container in it, to be completed by the caller.
func pod(t *testing.T, e *Engine) (ContainerSpec, string) {
	podSeq.Lock()
	podSeq.n++
	n := podSeq.n
	podSeq.Unlock()
	uid := fmt.Sprintf("%s-%04d", randHex(8), n)
	name := fmt.Sprintf("pod%d", n)
	id, ip, err := e.RunSandbox(testCtx(t), SandboxSpec{PodUID: uid, Namespace: "default", Name: name, Hostname: name})
	require.NoError(t, err)
	return ContainerSpec{PodUID: uid, Namespace: "default", PodName: name, Name: "app", SandboxID: id}, ip
}

// run creates and starts an app container.
func run(t *testing.T, e *Engine, spec ContainerSpec) string {
	ctx := testCtx(t)
	id, err := e.CreateContainer(ctx, spec)
	require.NoError(t, err)
	require.NoError(t, e.Start(ctx, id))
	return id
}

// waitExit waits for a container to stop and returns its state.
func waitExit(t *testing.T, e *Engine, id string) State {
	ctx := testCtx(t)
	for {
		st, err := e.Inspect(ctx, id)
		require.NoError(t, err)
		if !st.Running && !st.FinishedAt.IsZero() {
			return st
		}
		select {
		case <-ctx.Done():
			t.Fatalf("container %s did not exit", id)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func logs(t *testing.T, e *Engine, id string, o LogOptions) string {
	var buf bytes.Buffer
	require.NoError(t, e.Logs(testCtx(t), id, o, &buf, &buf))
	return buf.String()
}

// runToEnd runs an app container to its exit and returns its output.
func runToEnd(t *testing.T, e *Engine, spec ContainerSpec) string {
	id := run(t, e, spec)
	waitExit(t, e, id)
	return logs(t, e, id, LogOptions{Tail: -1})
}

func (v *testEnv) testSandbox(t *testing.T) {
	ctx := testCtx(t)
	e := v.engine(t, v.cluster(t), "node-a")
	spec := SandboxSpec{PodUID: "uid-sandbox-" + randHex(4), Namespace: "ns1", Name: "web", Hostname: "web"}
	id, ip, err := e.RunSandbox(ctx, spec)
	require.NoError(t, err)
	addr, err := netip.ParseAddr(ip)
	require.NoError(t, err)
	assert.True(t, v.ipRange.Contains(addr), "pod IP %s is in the network's ip-range %s", ip, v.ipRange)

	again, againIP, err := e.RunSandbox(ctx, spec)
	require.NoError(t, err)
	assert.Equal(t, id, again, "a running sandbox is reused")
	assert.Equal(t, ip, againIP)

	res, err := v.cli.ContainerInspect(ctx, id, client.ContainerInspectOptions{})
	require.NoError(t, err)
	assert.Equal(t, "/k8s_POD_web_ns1_"+spec.PodUID+"_0", res.Container.Name)
	assert.Equal(t, nodeconfig.KindSandbox, res.Container.Config.Labels[nodeconfig.LabelKind])
	assert.Equal(t, "node-a", res.Container.Config.Labels[nodeconfig.LabelNode])

	app := run(t, e, ContainerSpec{PodUID: spec.PodUID, Namespace: "ns1", PodName: "web", Name: "app", SandboxID: id, Image: v.image, Args: []string{"pause"}})
	require.NoError(t, e.Stop(ctx, id, 5*time.Second))
	replaced, _, err := e.RunSandbox(ctx, spec)
	require.NoError(t, err)
	assert.NotEqual(t, id, replaced, "a stopped sandbox is replaced")
	_, err = e.Inspect(ctx, id)
	assert.ErrorIs(t, err, ErrNotFound, "the stopped sandbox is removed")
	_, err = e.Inspect(ctx, app)
	assert.ErrorIs(t, err, ErrNotFound, "with the app containers that joined it")

	list, err := e.List(ctx)
	require.NoError(t, err)
	require.Len(t, list, 1)
	assert.Equal(t, PodContainer{ID: replaced, PodUID: spec.PodUID, Namespace: "ns1", PodName: "web", Kind: nodeconfig.KindSandbox, Running: true}, list[0])
}

func (v *testEnv) testSharedNetwork(t *testing.T) {
	ctx := testCtx(t)
	e := v.engine(t, v.cluster(t), "node-a")
	spec, ip := pod(t, e)
	spec.Image = v.image
	spec.Args = []string{"serve"}
	id := run(t, e, spec)

	// The app listens in the sandbox's network namespace, so the pod IP
	// answers; the host reaches the cluster network directly.
	url := "http://" + net.JoinHostPort(ip, "8080") + "/hi"
	var body string
	require.Eventually(t, func() bool {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		body = string(b)
		return resp.StatusCode == http.StatusOK
	}, 20*time.Second, 100*time.Millisecond, "GET %s", url)
	assert.Equal(t, "hello from /hi\n", body)
	// The app logs the request as it answers it, and the engine's log
	// reaches the file a moment later.
	assert.Eventually(t, func() bool {
		return strings.Contains(logs(t, e, id, LogOptions{Tail: -1}), "request /hi")
	}, 10*time.Second, 100*time.Millisecond, "the app's log shows the request")

	// App containers see the pod's hostname through the sandbox.
	spec.Name, spec.Args = "host", []string{"hostname"}
	assert.Equal(t, spec.PodName+"\n", runToEnd(t, e, spec))
}

func (v *testEnv) testCommandArgs(t *testing.T) {
	e := v.engine(t, v.cluster(t), "node-a")
	base, _ := pod(t, e)
	base.Image = v.image
	for i, c := range []struct {
		name          string
		command, args []string
		want          string
	}{
		{"image defaults", nil, nil, "default-cmd\n"},
		{"args replace CMD", nil, []string{"echo", "from-args"}, "from-args\n"},
		// Were the image's CMD kept, the probe would also print default-cmd.
		{"command clears CMD", []string{"/probe", "echo", "from-command"}, nil, "from-command\n"},
		{"command and args", []string{"/probe", "echo"}, []string{"both"}, "both\n"},
	} {
		t.Run(c.name, func(t *testing.T) {
			spec := base
			spec.Name = fmt.Sprintf("c%d", i)
			spec.Command, spec.Args = c.command, c.args
			assert.Equal(t, c.want, runToEnd(t, e, spec))
		})
	}
}

func (v *testEnv) testEnvFilesResources(t *testing.T) {
	ctx := testCtx(t)
	e := v.engine(t, v.cluster(t), "node-a")
	spec, _ := pod(t, e)
	spec.Image = v.image
	spec.Env = []string{"GREETING=hello world", "EMPTY="}
	// The image is FROM scratch: not even /etc exists, so the parents
	// must be created.
	spec.Files = []File{
		{Path: "/etc/minik/deep/config.txt", Data: []byte("config data\n"), Mode: 0o600},
		{Path: "dev-termination-log", Data: []byte("relative\n")},
	}
	spec.Args = []string{"env", "cat", "/etc/minik/deep/config.txt", "cat", "/dev-termination-log"}
	spec.CPUMillis, spec.MemoryBytes = 250, 64<<20
	id := run(t, e, spec)
	st := waitExit(t, e, id)
	assert.Equal(t, 0, st.ExitCode)
	out := logs(t, e, id, LogOptions{Tail: -1})
	assert.Contains(t, out, "GREETING=hello world\n")
	assert.Contains(t, out, "EMPTY=\n")
	assert.Contains(t, out, "config data\nrelative\n")

	res, err := v.cli.ContainerInspect(ctx, id, client.ContainerInspectOptions{})
	require.NoError(t, err)
	assert.Equal(t, int64(25_000), res.Container.HostConfig.CPUQuota, "250m of a 100 ms period")
	assert.Equal(t, int64(100_000), res.Container.HostConfig.CPUPeriod)
	assert.Equal(t, int64(64<<20), res.Container.HostConfig.Memory)
	assert.Equal(t, "container:"+spec.SandboxID, string(res.Container.HostConfig.NetworkMode))
	assert.Equal(t, "/k8s_app_"+spec.PodName+"_default_"+spec.PodUID+"_0", res.Container.Name)
	assert.Equal(t, "app", res.Container.Config.Labels[nodeconfig.LabelContainer])
	assert.Equal(t, "0", res.Container.Config.Labels[nodeconfig.LabelAttempt])
}

func (v *testEnv) testEmptyDir(t *testing.T) {
	ctx := testCtx(t)
	e := v.engine(t, v.cluster(t), "node-a")
	spec, _ := pod(t, e)
	vol, err := e.EnsureVolume(ctx, spec.PodUID, "scratch", EmptyDir{})
	require.NoError(t, err)
	again, err := e.EnsureVolume(ctx, spec.PodUID, "scratch", EmptyDir{})
	require.NoError(t, err)
	assert.Equal(t, vol, again)

	spec.Image = v.image
	spec.Mounts = []Mount{{Volume: vol, Path: "/data"}}
	spec.Name, spec.Args = "writer", []string{"write", "/data/f", "shared", "exit", "0"}
	assert.Equal(t, "", runToEnd(t, e, spec))
	spec.Name, spec.Args = "reader", []string{"cat", "/data/f"}
	assert.Equal(t, "shared", runToEnd(t, e, spec))

	spec.Mounts[0].ReadOnly = true
	spec.Name, spec.Args = "readonly", []string{"write", "/data/g", "x"}
	id := run(t, e, spec)
	assert.Equal(t, 2, waitExit(t, e, id).ExitCode, "a read-only mount refuses writes")

	// An emptyDir's root is open to every user, as the kubelet makes it.
	open, err := e.EnsureVolume(ctx, spec.PodUID, "open", EmptyDir{})
	require.NoError(t, err)
	spec.Mounts = []Mount{{Volume: open, Path: "/open", Owned: true, OpenRoot: true}}
	spec.Security = Security{User: "1001"}
	spec.Name, spec.Args = "nonroot", []string{"stat", "/open", "write", "/open/f", "by 1001", "cat", "/open/f"}
	out := runToEnd(t, e, spec)
	assert.Contains(t, out, "/open drwxrwxrwx")
	assert.Contains(t, out, "by 1001")
}

func (v *testEnv) testSubPathsTmpfsAndFSGroup(t *testing.T) {
	ctx := testCtx(t)
	e := v.engine(t, v.cluster(t), "node-a")
	spec, _ := pod(t, e)
	spec.Image = v.image
	vol, err := e.EnsureVolume(ctx, spec.PodUID, "data", EmptyDir{})
	require.NoError(t, err)

	// A missing sub-path is made; what is written there shows in the volume.
	spec.Mounts = []Mount{{Volume: vol, Path: "/sub", SubPath: "a/b"}, {Volume: vol, Path: "/all"}}
	spec.Name, spec.Args = "subpath", []string{"write", "/sub/f", "in a/b", "cat", "/all/a/b/f"}
	assert.Equal(t, "in a/b", runToEnd(t, e, spec))
	// A file sub-path: made empty with FileOrCreate, refused missing with File.
	spec.Mounts = []Mount{{Volume: vol, Path: "/conf", SubPath: "app.conf", SubPathType: SubPathFileOrCreate}}
	spec.Name, spec.Args = "file", []string{"stat", "/conf"}
	assert.Contains(t, runToEnd(t, e, spec), "/conf -rw-r--r--")
	spec.Mounts = []Mount{{Volume: vol, Path: "/x", SubPath: "missing.sock", SubPathType: SubPathSocket}}
	_, err = e.CreateContainer(ctx, spec)
	require.ErrorContains(t, err, "missing.sock does not exist (type Socket must)")

	// A pod can point a symbolic link anywhere on the engine's host: a
	// sub-path through one is refused.
	spec.Mounts = []Mount{{Volume: vol, Path: "/all"}}
	spec.Name, spec.Args = "linker", []string{"exit", "0"}
	id, err := e.CreateContainer(ctx, spec)
	require.NoError(t, err)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	require.NoError(t, tw.WriteHeader(&tar.Header{Typeflag: tar.TypeSymlink, Name: "escape", Linkname: "/etc"}))
	require.NoError(t, tw.Close())
	_, err = v.cli.CopyToContainer(ctx, id, client.CopyToContainerOptions{DestinationPath: "/all", Content: &buf})
	require.NoError(t, err)
	spec.Mounts = []Mount{{Volume: vol, Path: "/etc-of-host", SubPath: "escape/passwd", SubPathType: SubPathFile}}
	_, err = e.CreateContainer(ctx, spec)
	require.ErrorContains(t, err, "escape is a symbolic link (to /etc): refused")

	// fsGroup: the volume's root belongs to the group, setgid, and the
	// container has the group.
	spec.FSGroup = ptr.To[int64](2000)
	spec.Mounts = []Mount{{Volume: vol, Path: "/owned", Owned: true}}
	spec.Name, spec.Args = "owned", []string{"stat", "/owned", "groups"}
	out := runToEnd(t, e, spec)
	assert.Contains(t, out, "/owned dgrwxrwxrwx gid=2000")
	assert.Contains(t, out, "2000")
	spec.FSGroup = nil

	// medium: Memory is a tmpfs, of the size asked, shared by the pod's
	// containers.
	mem, err := e.EnsureVolume(ctx, spec.PodUID, "cache", EmptyDir{Memory: true, SizeBytes: 16 << 20})
	require.NoError(t, err)
	spec.Mounts = []Mount{{Volume: mem, Path: "/cache"}}
	spec.Name, spec.Args = "tmpfs", []string{"fstype", "/cache", "write", "/cache/f", "in memory"}
	assert.Contains(t, runToEnd(t, e, spec), "/cache tmpfs")
	res, err := v.cli.VolumeInspect(ctx, mem, client.VolumeInspectOptions{})
	require.NoError(t, err)
	assert.Equal(t, "size=16777216", res.Volume.Options["o"])
}

func (v *testEnv) testExitAndInspect(t *testing.T) {
	ctx := testCtx(t)
	e := v.engine(t, v.cluster(t), "node-a")
	spec, _ := pod(t, e)
	spec.Image = v.image

	spec.Name, spec.Args = "fails", []string{"exit", "3"}
	before := time.Now().Add(-time.Second)
	st := waitExit(t, e, run(t, e, spec))
	assert.Equal(t, 3, st.ExitCode)
	assert.Equal(t, "Error", st.Reason)
	assert.Equal(t, "exited", st.Status)
	assert.True(t, st.StartedAt.After(before), "started at %s", st.StartedAt)
	assert.False(t, st.FinishedAt.Before(st.StartedAt))
	assert.True(t, strings.HasPrefix(st.ImageID, "sha256:"), "image ID %q", st.ImageID)

	spec.Name, spec.Args = "succeeds", []string{"exit", "0"}
	st = waitExit(t, e, run(t, e, spec))
	assert.Equal(t, "Completed", st.Reason)

	spec.Name, spec.Args = "created", []string{"echo", "ready", "pause"}
	id, err := e.CreateContainer(ctx, spec)
	require.NoError(t, err)
	st, err = e.Inspect(ctx, id)
	require.NoError(t, err)
	assert.Equal(t, "Created", st.Reason)
	assert.True(t, st.StartedAt.IsZero())

	require.NoError(t, e.Start(ctx, id))
	st, err = e.Inspect(ctx, id)
	require.NoError(t, err)
	assert.True(t, st.Running)
	assert.Empty(t, st.Reason)
	// A Go PID 1 ignores SIGTERM until its handler is installed, which
	// the probe does before it prints.
	require.Eventually(t, func() bool { return logs(t, e, id, LogOptions{Tail: -1}) == "ready\n" }, 20*time.Second, 50*time.Millisecond)
	// The probe ends on SIGTERM: Stop does not have to wait for SIGKILL.
	require.NoError(t, e.Stop(ctx, id, 30*time.Second))
	st, err = e.Inspect(ctx, id)
	require.NoError(t, err)
	assert.False(t, st.Running)
	assert.Equal(t, 0, st.ExitCode)

	require.NoError(t, e.Remove(ctx, id))
	require.NoError(t, e.Remove(ctx, id), "removing a missing container is not an error")
	_, err = e.Inspect(ctx, id)
	assert.ErrorIs(t, err, ErrNotFound)
}

func (v *testEnv) testLogs(t *testing.T) {
	ctx := testCtx(t)
	e := v.engine(t, v.cluster(t), "node-a")
	spec, _ := pod(t, e)
	spec.Image = v.image
	// stdout and stderr are separate pipes: the engine orders lines only
	// as they arrive, so the streams take turns with pauses between.
	spec.Args = []string{"lines", "3", "sleep", "300ms", "echoerr", "to-stderr", "sleep", "1s", "echo", "late", "exit", "0"}
	id := run(t, e, spec)

	// Follow returns once the container has exited, with everything.
	var followed bytes.Buffer
	require.NoError(t, e.Logs(ctx, id, LogOptions{Follow: true, Tail: -1}, &followed, &followed))
	assert.Equal(t, "line 1\nline 2\nline 3\nto-stderr\nlate\n", followed.String())

	// The streams apart, each record in a Write of its own.
	var stdout, stderr recordWriter
	require.NoError(t, e.Logs(ctx, id, LogOptions{Tail: -1}, &stdout, &stderr))
	assert.Equal(t, []string{"line 1\n", "line 2\n", "line 3\n", "late\n"}, stdout.writes)
	assert.Equal(t, []string{"to-stderr\n"}, stderr.writes)
	st, err := e.Inspect(ctx, id)
	require.NoError(t, err)
	assert.False(t, st.Running)

	assert.Equal(t, "to-stderr\nlate\n", logs(t, e, id, LogOptions{Tail: 2}))

	stamped := strings.Split(strings.TrimSuffix(logs(t, e, id, LogOptions{Tail: -1, Timestamps: true}), "\n"), "\n")
	require.Len(t, stamped, 5)
	var lastTS time.Time
	for _, l := range stamped {
		ts, _, ok := strings.Cut(l, " ")
		require.True(t, ok, "line %q", l)
		tm, err := time.Parse(time.RFC3339Nano, ts)
		require.NoError(t, err, "line %q", l)
		lastTS = tm
	}
	// Since drops what came before: only "late" is after the sleep.
	assert.Equal(t, "late\n", logs(t, e, id, LogOptions{Tail: -1, Since: lastTS.Add(-500 * time.Millisecond)}))

	// A follow of a running container ends with ctx, without an error.
	spec.Name, spec.Args = "forever", []string{"echo", "up", "pause"}
	id = run(t, e, spec)
	fctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	var buf bytes.Buffer
	require.NoError(t, e.Logs(fctx, id, LogOptions{Follow: true, Tail: -1}, &buf, &buf))
	assert.Equal(t, "up\n", buf.String())

	require.ErrorIs(t, e.Logs(ctx, "no-such-container-"+randHex(4), LogOptions{}, io.Discard, io.Discard), ErrNotFound)
}

// recordWriter keeps each Write apart.
type recordWriter struct{ writes []string }

func (w *recordWriter) Write(p []byte) (int, error) {
	w.writes = append(w.writes, string(p))
	return len(p), nil
}

func (v *testEnv) testExec(t *testing.T) {
	ctx := testCtx(t)
	e := v.engine(t, v.cluster(t), "node-a")
	spec, _ := pod(t, e)
	spec.Image, spec.Args = v.image, []string{"pause"}
	id := run(t, e, spec)

	var stdout, stderr bytes.Buffer
	code, err := e.Exec(ctx, id, []string{"/probe", "echo", "out", "echoerr", "err", "exit", "3"}, nil, &stdout, &stderr, false, nil)
	require.NoError(t, err)
	assert.Equal(t, 3, code)
	assert.Equal(t, "out\n", stdout.String())
	assert.Equal(t, "err\n", stderr.String())

	stdout.Reset()
	code, err = e.Exec(ctx, id, []string{"/probe", "stdin"}, strings.NewReader("from stdin\n"), &stdout, nil, false, nil)
	require.NoError(t, err)
	assert.Equal(t, 0, code)
	assert.Equal(t, "from stdin\n", stdout.String())

	// With a TTY, a resize reaches the process's terminal.
	stdout.Reset()
	resize := make(chan Size, 1)
	resize <- Size{Width: 123, Height: 45}
	code, err = e.Exec(ctx, id, []string{"/probe", "sleep", "500ms", "ttysize"}, nil, &stdout, nil, true, resize)
	require.NoError(t, err)
	assert.Equal(t, 0, code)
	assert.Equal(t, "123x45\r\n", stdout.String())

	_, err = e.Exec(ctx, "no-such-container-"+randHex(4), []string{"/probe"}, nil, nil, nil, false, nil)
	assert.ErrorIs(t, err, ErrNotFound)
}

func (v *testEnv) testStats(t *testing.T) {
	ctx := testCtx(t)
	e := v.engine(t, v.cluster(t), "node-a")
	spec, _ := pod(t, e)
	spec.Image, spec.Args = v.image, []string{"serve"}
	id := run(t, e, spec)
	var st Stats
	require.Eventually(t, func() bool {
		var err error
		st, err = e.Stats(ctx, id)
		require.NoError(t, err)
		return st.CPUNanos > 0 && st.WorkingSet > 0
	}, 20*time.Second, 200*time.Millisecond)
	t.Logf("stats %+v", st)
	assert.Less(t, st.WorkingSet, uint64(1<<30), "a tiny Go server uses far less than 1GiB")
	assert.GreaterOrEqual(t, st.MemoryUsage, st.WorkingSet)
	require.NotNil(t, st.Network, "the pod's interface, which the container shares with its sandbox")
}

func (v *testEnv) testImages(t *testing.T) {
	ctx := testCtx(t)
	e := v.engine(t, v.cluster(t), "node-a")
	id, ok, err := e.ImagePresent(ctx, v.image)
	require.NoError(t, err)
	assert.True(t, ok)
	assert.True(t, strings.HasPrefix(id, "sha256:"), "image ID %q", id)

	missing := "minik-engine-test-missing:" + randHex(4)
	_, ok, err = e.ImagePresent(ctx, missing)
	require.NoError(t, err)
	assert.False(t, ok)

	// No registry answers here: the pull fails, with the engine's reason.
	pctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	err = e.PullImage(pctx, missing)
	require.Error(t, err)
	assert.NoError(t, pctx.Err(), "the pull failed by itself, not by the deadline")
	assert.Contains(t, err.Error(), "pull image "+missing+": ")
	t.Logf("pull error: %v", err)
}

func (v *testEnv) testEvents(t *testing.T) {
	ctx := testCtx(t)
	e := v.engine(t, v.cluster(t), "node-a")
	ectx, cancel := context.WithCancel(ctx)
	evs := e.Events(ectx)
	// Events of another node of the cluster are not ours.
	other := v.engine(t, e.cluster, "node-b")
	ospec, _ := pod(t, other)
	ospec.Image, ospec.Args = v.image, []string{"exit", "0"}
	run(t, other, ospec)

	spec, _ := pod(t, e)
	spec.Image, spec.Args = v.image, []string{"exit", "4"}
	id := run(t, e, spec)

	var got []Event
	timeout := time.After(30 * time.Second)
	for len(got) < 2 {
		select {
		case ev := <-evs:
			assert.NotEqual(t, ospec.PodUID, ev.PodUID, "event of another node")
			if ev.ID == id {
				got = append(got, ev)
			}
		case <-timeout:
			t.Fatalf("events so far: %+v", got)
		}
	}
	assert.Equal(t, []Event{
		{ID: id, PodUID: spec.PodUID, Container: "app", Kind: nodeconfig.KindContainer, Action: "start"},
		{ID: id, PodUID: spec.PodUID, Container: "app", Kind: nodeconfig.KindContainer, Action: "die"},
	}, got)

	cancel()
	for range evs {
	}
}

func (v *testEnv) testRemovePod(t *testing.T) {
	ctx := testCtx(t)
	e := v.engine(t, v.cluster(t), "node-a")
	spec, _ := pod(t, e)
	keep, _ := pod(t, e)
	vol, err := e.EnsureVolume(ctx, spec.PodUID, "cache", EmptyDir{})
	require.NoError(t, err)
	spec.Image, spec.Args = v.image, []string{"pause"}
	spec.Mounts = []Mount{{Volume: vol, Path: "/cache"}}
	run(t, e, spec)
	spec.Name = "sidecar"
	run(t, e, spec)

	list, err := e.List(ctx)
	require.NoError(t, err)
	assert.Len(t, list, 4, "two sandboxes, two app containers")

	require.NoError(t, e.RemovePod(ctx, spec.PodUID))
	list, err = e.List(ctx)
	require.NoError(t, err)
	require.Len(t, list, 1)
	assert.Equal(t, keep.SandboxID, list[0].ID, "the other pod is left alone")
	_, err = v.cli.VolumeInspect(ctx, vol, client.VolumeInspectOptions{})
	assert.Error(t, err, "the pod's volume is removed")

	require.NoError(t, e.RemovePod(ctx, spec.PodUID), "removing a removed pod is not an error")

	// Two removers at once (a node's agent and the driver stopping the
	// node): the one that finds a removal in progress waits for it
	// before it removes the volumes, rather than failing on "in use".
	for range 3 {
		spec, _ := pod(t, e)
		vol, err := e.EnsureVolume(ctx, spec.PodUID, "cache", EmptyDir{})
		require.NoError(t, err)
		spec.Image, spec.Args = v.image, []string{"pause"}
		spec.Mounts = []Mount{{Volume: vol, Path: "/cache"}}
		run(t, e, spec)
		other := v.engine(t, e.cluster, "node-a")
		errs := make(chan error, 2)
		for _, remover := range []*Engine{e, other} {
			go func() { errs <- remover.RemovePod(ctx, spec.PodUID) }()
		}
		require.NoError(t, <-errs)
		require.NoError(t, <-errs)
		_, err = v.cli.VolumeInspect(ctx, vol, client.VolumeInspectOptions{})
		assert.Error(t, err, "the pod's volume is removed")
	}
}

func (v *testEnv) testRemoveOrphans(t *testing.T) {
	ctx := testCtx(t)
	cluster := v.cluster(t)
	self := v.engine(t, cluster, "node-self")
	dead := v.engine(t, cluster, "node-dead")
	alive := v.engine(t, cluster, "node-alive")

	// Fake node containers: one stopped (a killed node), one running.
	nodeContainer := func(node string, start bool) {
		res, err := v.cli.ContainerCreate(ctx, client.ContainerCreateOptions{
			Name:  "minik-enginetest-" + node + "-" + randHex(4),
			Image: v.image,
			Config: &container.Config{Cmd: []string{"pause"}, Labels: map[string]string{
				nodeconfig.LabelCluster: cluster,
				nodeconfig.LabelNode:    node,
				nodeconfig.LabelKind:    nodeconfig.KindNode,
			}},
		})
		require.NoError(t, err)
		if start {
			_, err = v.cli.ContainerStart(ctx, res.ID, client.ContainerStartOptions{})
			require.NoError(t, err)
		}
	}
	nodeContainer("node-dead", false)
	nodeContainer("node-alive", true)

	running, err := self.NodeRunning(ctx, "node-alive")
	require.NoError(t, err)
	assert.True(t, running)
	running, err = self.NodeRunning(ctx, "node-dead")
	require.NoError(t, err)
	assert.False(t, running)

	// A pod on each node; self's has no node container at all.
	for _, e := range []*Engine{self, dead, alive} {
		spec, _ := pod(t, e)
		vol, err := e.EnsureVolume(ctx, spec.PodUID, "data", EmptyDir{})
		require.NoError(t, err)
		spec.Image, spec.Args = v.image, []string{"pause"}
		spec.Mounts = []Mount{{Volume: vol, Path: "/data"}}
		run(t, e, spec)
	}

	n, err := self.RemoveOrphans(ctx)
	require.NoError(t, err)
	assert.Equal(t, 4, n, "the dead node's sandbox, app container and volumes (its own and the pod's files)")
	for e, want := range map[*Engine]int{self: 2, dead: 0, alive: 2} {
		list, err := e.List(ctx)
		require.NoError(t, err)
		assert.Len(t, list, want, "pod containers of %s", e.node)
	}
	vols, err := v.cli.VolumeList(ctx, client.VolumeListOptions{Filters: labelFilter(map[string]string{nodeconfig.LabelCluster: cluster})})
	require.NoError(t, err)
	assert.Len(t, vols.Items, 4, "a volume and the pod's files of each pod left")
	for _, vol := range vols.Items {
		assert.NotEqual(t, "node-dead", vol.Labels[nodeconfig.LabelNode])
	}
}

func TestStateOfEndsNoEarlierThanItStarts(t *testing.T) {
	st := stateOf(container.InspectResponse{Image: "sha256:x", State: &container.State{
		Status: container.StateExited, ExitCode: 0,
		StartedAt: "2026-12-03T15:00:00.500Z", FinishedAt: "2026-12-03T15:00:00.400Z",
	}})
	assert.Equal(t, "Completed", st.Reason)
	assert.Equal(t, st.StartedAt, st.FinishedAt, "an end stamped before the start is the start")
}

// A run the engine could not start ended: the restart policy applies.
func TestStateOfStartError(t *testing.T) {
	st := stateOf(container.InspectResponse{Image: "sha256:x", State: &container.State{
		Status: container.StateCreated, ExitCode: 128, Error: "unable to apply caps: operation not permitted",
		StartedAt: "0001-01-01T00:00:00Z", FinishedAt: "0001-01-01T00:00:00Z",
	}})
	assert.Equal(t, State{Status: "exited", ExitCode: 128, Reason: StartError, ImageID: "sha256:x",
		Error: "unable to apply caps: operation not permitted"}, st)
}

// The kubelet's /etc/hosts, a termination-message file a non-root user can
// write, the security settings and a sandbox's sysctls.
func (v *testEnv) testPodFilesAndSecurity(t *testing.T) {
	ctx := testCtx(t)
	e := v.engine(t, v.cluster(t), "node-a")
	uid := randHex(8)
	cfg, err := e.EnsureVolume(ctx, uid, "cfg", EmptyDir{})
	require.NoError(t, err)
	id, ip, err := e.RunSandbox(ctx, SandboxSpec{PodUID: uid, Namespace: "default", Name: "files", Hostname: "files",
		ExtraHosts: []string{"foo\tbar:10.1.2.3"}, Sysctls: map[string]string{"kernel.shm_rmid_forced": "1"}, Volumes: []string{cfg},
		// Written to the file only: nothing here asks these servers.
		DNS: []string{"10.96.0.10", "10.96.0.11"}, DNSSearch: []string{"resolv.conf.local"}, DNSOptions: []string{"ndots:2"}})
	require.NoError(t, err)
	// A file volume, written through the sandbox, read by a container
	// with a read-only root, and written again while it runs.
	require.NoError(t, e.WriteVolumeFiles(ctx, id, cfg, "..1", []File{{Path: "a", Data: []byte("one")}, {Path: "dir/b", Data: []byte("bee")}}))
	reader := run(t, e, ContainerSpec{PodUID: uid, Namespace: "default", PodName: "files", Name: "cfg-reader", SandboxID: id, Image: v.image,
		Security: Security{ReadOnlyRootfs: true},
		Mounts:   []Mount{{Volume: cfg, Path: "/cfg", ReadOnly: true}, {Volume: cfg, Path: "/b", ReadOnly: true, SubPath: "..1/dir/b", SubPathType: SubPathExisting}},
		Args:     []string{"pause"}})
	catIn := func(id, p string) string {
		var out bytes.Buffer
		code, err := e.Exec(ctx, id, []string{"/probe", "cat", p}, nil, &out, &out, false, nil)
		require.NoError(t, err)
		require.Equal(t, 0, code, out.String())
		return out.String()
	}
	assert.Equal(t, "one", catIn(reader, "/cfg/a"))
	assert.Equal(t, "bee", catIn(reader, "/cfg/dir/b"))
	assert.Equal(t, "bee", catIn(reader, "/b"))
	require.NoError(t, e.WriteVolumeFiles(ctx, id, cfg, "..2", []File{{Path: "a", Data: []byte("two")}}))
	assert.Equal(t, "two", catIn(reader, "/cfg/a"), "the running container sees the new generation")
	var gone bytes.Buffer
	code, err := e.Exec(ctx, reader, []string{"/probe", "cat", "/cfg/dir/b"}, nil, &gone, &gone, false, nil)
	require.NoError(t, err)
	assert.NotEqual(t, 0, code, "a name gone from the source is gone: %s", gone.String())
	// A file sub-path that has to be made starts with its seed (a
	// hostPath file the node has); one that exists keeps its content.
	node, err := e.EnsureNodeVolume(ctx, "/etc")
	require.NoError(t, err)
	seeded := ContainerSpec{PodUID: uid, Namespace: "default", PodName: "files", Name: "seeded", SandboxID: id, Image: v.image,
		Mounts: []Mount{{Volume: node, Path: "/etc/hosts-original", SubPath: "hosts", SubPathType: SubPathFileOrCreate, Seed: []byte("10.9.8.7 node\n")}},
		Args:   []string{"cat", "/etc/hosts-original"}}
	cid := run(t, e, seeded)
	waitExit(t, e, cid)
	assert.Equal(t, "10.9.8.7 node\n", logs(t, e, cid, LogOptions{Tail: -1}))
	seeded.Attempt, seeded.Mounts[0].Seed = 1, []byte("other\n")
	cid = run(t, e, seeded)
	waitExit(t, e, cid)
	assert.Equal(t, "10.9.8.7 node\n", logs(t, e, cid, LogOptions{Tail: -1}), "made once")

	// In-place resizes, down to a limit under the engine's 10m
	// NanoCPUs floor and to no CPU limit at all.
	require.NoError(t, e.UpdateResources(ctx, reader, Resources{CPUMillis: 5, CPUShares: 2, MemoryBytes: 64 << 20}))
	require.NoError(t, e.UpdateResources(ctx, reader, Resources{CPUShares: 512, MemoryBytes: 128 << 20}))
	require.NoError(t, e.Stop(ctx, reader, time.Second))
	spec := ContainerSpec{PodUID: uid, Namespace: "default", PodName: "files", Name: "app", SandboxID: id, Image: v.image,
		ManagedHosts: true, ManagedDNS: true, TerminationMessagePath: "/dev/termination-custom-log",
		Security: Security{User: "1000:2000", Groups: []int64{3000}, ReadOnlyRootfs: true, NoNewPrivileges: true, CapDrop: []string{"ALL"}},
		Args: []string{"cat", "/etc/hosts", "cat", "/etc/resolv.conf", "uid", "groups", "cat", "/proc/sys/kernel/shm_rmid_forced",
			"write", "/dev/termination-custom-log", "DONE", "write", "/x", "y"}}
	cid = run(t, e, spec)
	st := waitExit(t, e, cid)
	out := logs(t, e, cid, LogOptions{Tail: -1})
	assert.Contains(t, out, "# Kubernetes-managed hosts file.\n")
	assert.Contains(t, out, ip+"\tfiles\n")
	assert.Contains(t, out, "# Entries added by HostAliases.\n10.1.2.3\tfoo\tbar\n")
	assert.Contains(t, out, "search resolv.conf.local\nnameserver 10.96.0.10\nnameserver 10.96.0.11\noptions ndots:2\n",
		"the pod's resolv.conf, not the engine's 127.0.0.11")
	assert.Contains(t, out, "uid 1000\n")
	assert.Contains(t, out, "3000", "a supplementary group")
	assert.Contains(t, out, "1\n", "the sandbox's sysctl")
	assert.Contains(t, out, "read-only file system", "the root file system is read-only")
	assert.NotEqual(t, 0, st.ExitCode)
	msg, err := e.TerminationMessage(ctx, id, uid, "app")
	require.NoError(t, err)
	assert.Equal(t, "DONE", msg, "written by uid 1000")

	// A restart gets the file empty again.
	spec.Attempt, spec.Args = 1, []string{"echo", "again"}
	waitExit(t, e, run(t, e, spec))
	msg, err = e.TerminationMessage(ctx, id, uid, "app")
	require.NoError(t, err)
	assert.Empty(t, msg)

	// An image volume: the image's tree, the same the second time.
	vol, err := e.EnsureImageVolume(ctx, uid, "tools", v.image)
	require.NoError(t, err)
	again, err := e.EnsureImageVolume(ctx, uid, "tools", v.image)
	require.NoError(t, err)
	assert.Equal(t, vol, again)
	spec = ContainerSpec{PodUID: uid, Namespace: "default", PodName: "files", Name: "reader", SandboxID: id, Image: v.image,
		Mounts: []Mount{{Volume: vol, Path: "/tools", ReadOnly: true}},
		Args:   []string{"stat", "/tools/probe", "write", "/tools/x", "y"}}
	cid = run(t, e, spec)
	waitExit(t, e, cid)
	out = logs(t, e, cid, LogOptions{Tail: -1})
	assert.Contains(t, out, "/tools/probe -rwxr-xr-x")
	assert.Contains(t, out, "read-only file system")
	_, err = e.EnsureImageVolume(ctx, uid, "missing", "minik-no-such-image:1")
	require.Error(t, err)
	require.NoError(t, e.RemovePod(ctx, uid))
	vols, err := v.cli.VolumeList(ctx, client.VolumeListOptions{Filters: labelFilter(map[string]string{nodeconfig.LabelPodUID: uid})})
	require.NoError(t, err)
	assert.Empty(t, vols.Items, "the pod's volumes go with it, image volumes too")
}
