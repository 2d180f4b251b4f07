package docker

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"minik.dev/minik/drivers"
	containerimage "minik.dev/minik/node-image/container"
	"minik.dev/minik/node-image/container/containerimagetest"
	"minik.dev/minik/nodeconfig"
)

func TestInfo(t *testing.T) {
	info := New(nil).Info()
	assert.Equal(t, "docker", info.Name)
	assert.Equal(t, "docker", info.Runtime)
	assert.Equal(t, 10, info.Priority)
	assert.Equal(t, &drivers.NodeView{ProfileDir: "/minik", DataDir: "/var/lib/minik", APIServerPort: 6443, ManifestsDir: "/minik-manifests"}, info.NodeView)
}

func TestServicesAreReachable(t *testing.T) {
	assert.True(t, New(nil).Info().ServicesReachable, "pods are real containers on a network of this machine")
}

func TestConfigureNode(t *testing.T) {
	d := New(nil)
	d.version = "v1.2.3"
	cases := []struct {
		role  string
		serve bool
	}{
		{nodeconfig.RoleControlPlane, true},
		{nodeconfig.RoleWorker, false},
	}
	for _, tc := range cases {
		t.Run(tc.role, func(t *testing.T) {
			n := drivers.Node{Cluster: "dev", Name: "dev", Role: tc.role, ServiceCIDR: "172.20.64.0/18", DNSDomain: "cluster.local"}
			cfg := &nodeconfig.Config{Runtime: nodeconfig.RuntimeSim}
			d.ConfigureNode(n, cfg)
			assert.Equal(t, nodeconfig.RuntimeDocker, cfg.Runtime)
			assert.Equal(t, &nodeconfig.DockerRuntime{
				Host:           "unix:///var/run/docker.sock",
				Network:        "minik-dev",
				SandboxImage:   "minik-node:v1.2.3",
				SandboxCommand: []string{"/minik-node", "pause"},
				ServiceNetwork: nodeconfig.ServiceNetwork{
					ServiceCIDR: "172.20.64.0/18", DNSDomain: "cluster.local", ServeServices: tc.serve,
				},
			}, cfg.Docker)
		})
	}
}

func TestHealthWithoutEngineSaysWhereAndWhatToDo(t *testing.T) {
	sock := "unix://" + filepath.Join(t.TempDir(), "no-engine.sock")
	t.Setenv("DOCKER_HOST", sock)
	d := New(nil)
	t.Cleanup(func() { _ = d.Close() })
	err := d.Health(context.Background())
	var he *drivers.HealthError
	require.ErrorAs(t, err, &he)
	assert.Equal(t, "docker", he.Driver)
	assert.Contains(t, he.Problem, sock)
	assert.Contains(t, he.Fix, "start the Docker Engine, or set DOCKER_HOST")
	assert.Equal(t, "docs/drivers/docker.md", he.Doc)
}

func TestConfigPathInNode(t *testing.T) {
	n := drivers.Node{ProfileDir: "/home/u/.minik/p", ConfigPath: "/home/u/.minik/p/nodes/p/config.json"}
	p, err := configPathInNode(n)
	require.NoError(t, err)
	assert.Equal(t, "/minik/nodes/p/config.json", p)

	n.ConfigPath = "/elsewhere/config.json"
	_, err = configPathInNode(n)
	assert.ErrorContains(t, err, "not inside the profile folder")
}

// testEnv is a driver on the real engine with its own node image version
// and cluster name; everything it makes goes in t.Cleanup.
type testEnv struct {
	t       *testing.T
	d       *Driver
	api     *client.Client
	cluster string
	subnet  string
	layout  nodeconfig.SubnetLayout
	profile string
}

func newTestEnv(t *testing.T) *testEnv {
	t.Helper()
	api := containerimagetest.Client(t)
	bin := containerimagetest.StaticBinary(t, "")
	d := New(func() (string, error) { return bin, nil })
	// Never the real minik-node:<version>: the test binary must not
	// replace the image a real cluster runs.
	d.version = "test-" + randomHex(t)
	e := &testEnv{t: t, d: d, api: api, cluster: "test-" + randomHex(t), profile: t.TempDir()}
	ctx := context.Background()
	// Cleanups run last-in first-out: the cluster goes before its image.
	t.Cleanup(func() {
		_, _ = api.ImageRemove(context.Background(), containerimage.Ref(d.version), client.ImageRemoveOptions{Force: true, PruneChildren: true})
		_ = d.Close()
	})
	t.Cleanup(func() { _ = d.DeleteCluster(context.Background(), e.ref()) })

	var msgs []string
	require.NoError(t, d.Prepare(ctx, func(m string) { msgs = append(msgs, m) }))
	require.NotEmpty(t, msgs, "the first Prepare builds the image")
	subnet, err := d.ChooseSubnet(ctx, nil)
	require.NoError(t, err)
	e.subnet = subnet
	e.layout, err = nodeconfig.SplitSubnet(subnet)
	require.NoError(t, err)
	return e
}

// ref is the test's cluster as drivers.ClusterDeleter sees it.
func (e *testEnv) ref() drivers.Cluster {
	return drivers.Cluster{Name: e.cluster, ProfileDir: e.profile}
}

// node returns the i-th node of the cluster, with its config file.
func (e *testEnv) node(i int, role string) drivers.Node {
	e.t.Helper()
	name := e.cluster
	if i > 0 {
		name += "-m0" + strconv.Itoa(i+1)
	}
	dir := filepath.Join(e.profile, "nodes", name)
	require.NoError(e.t, os.MkdirAll(dir, 0o700))
	cfg := filepath.Join(dir, "config.json")
	require.NoError(e.t, os.WriteFile(cfg, []byte("{}"), 0o600))
	ip, err := e.layout.NodeIP(i)
	require.NoError(e.t, err)
	return drivers.Node{Cluster: e.cluster, Name: name, Role: role, Dir: dir, ConfigPath: cfg,
		ProfileDir: e.profile, IP: ip, Subnet: e.subnet}
}

func (e *testEnv) inspect(name string) container.InspectResponse {
	e.t.Helper()
	res, err := e.api.ContainerInspect(context.Background(), name, client.ContainerInspectOptions{})
	require.NoError(e.t, err)
	return res.Container
}

func (e *testEnv) state(n drivers.Node) string {
	e.t.Helper()
	st, err := e.d.NodeState(context.Background(), n)
	require.NoError(e.t, err)
	return st
}

// fakePod makes what the node agent makes for a pod: a sandbox container
// and a pod volume, labelled as its.
func (e *testEnv) fakePod(n drivers.Node, uid string) (string, string) {
	e.t.Helper()
	ctx := context.Background()
	labels := map[string]string{
		nodeconfig.LabelCluster: n.Cluster, nodeconfig.LabelNode: n.Name,
		nodeconfig.LabelKind: nodeconfig.KindVolume, nodeconfig.LabelPodUID: uid,
	}
	vol, err := e.api.VolumeCreate(ctx, client.VolumeCreateOptions{Name: "k8s_data_" + uid, Labels: labels})
	require.NoError(e.t, err)
	sandbox := map[string]string{
		nodeconfig.LabelCluster: n.Cluster, nodeconfig.LabelNode: n.Name,
		nodeconfig.LabelKind: nodeconfig.KindSandbox, nodeconfig.LabelPodUID: uid,
	}
	c, err := e.api.ContainerCreate(ctx, client.ContainerCreateOptions{
		Image:  containerimage.Ref(e.d.version),
		Config: &container.Config{Labels: sandbox},
		HostConfig: &container.HostConfig{
			NetworkMode: container.NetworkMode(NetworkName(n.Cluster)),
			Mounts:      []mount.Mount{{Type: mount.TypeVolume, Source: vol.Volume.Name, Target: "/data"}},
		},
	})
	require.NoError(e.t, err)
	_, err = e.api.ContainerStart(ctx, c.ID, client.ContainerStartOptions{})
	require.NoError(e.t, err)
	return c.ID, vol.Volume.Name
}

func (e *testEnv) labelled(f client.Filters) (containers, volumes, networks int) {
	e.t.Helper()
	ctx := context.Background()
	cs, err := e.api.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: f})
	require.NoError(e.t, err)
	vs, err := e.api.VolumeList(ctx, client.VolumeListOptions{Filters: f})
	require.NoError(e.t, err)
	ns, err := e.api.NetworkList(ctx, client.NetworkListOptions{Filters: f})
	require.NoError(e.t, err)
	return len(cs.Items), len(vs.Items), len(ns.Items)
}

func TestNodeLifecycle(t *testing.T) {
	e := newTestEnv(t)
	ctx := context.Background()
	require.NoError(t, e.d.Health(ctx))

	cp := e.node(0, nodeconfig.RoleControlPlane)
	cp.APIServerPort = freePort(t)
	assert.Equal(t, drivers.StateStopped, e.state(cp), "a missing node is stopped")
	require.NoError(t, e.d.StartNode(ctx, cp))
	assert.Equal(t, drivers.StateRunning, e.state(cp))

	// The network: subnet, gateway, the pods' range, labels.
	nw, err := e.api.NetworkInspect(ctx, NetworkName(e.cluster), client.NetworkInspectOptions{})
	require.NoError(t, err)
	require.Len(t, nw.Network.IPAM.Config, 1)
	ipam := nw.Network.IPAM.Config[0]
	assert.Equal(t, e.subnet, ipam.Subnet.String())
	assert.Equal(t, e.layout.Gateway.String(), ipam.Gateway.String())
	assert.Equal(t, e.layout.Pods.String(), ipam.IPRange.String())
	assert.Equal(t, e.cluster, nw.Network.Labels[nodeconfig.LabelCluster])
	assert.Equal(t, nodeconfig.KindNetwork, nw.Network.Labels[nodeconfig.LabelKind])
	assert.Equal(t, e.profile, nw.Network.Labels[nodeconfig.LabelProfile])

	// The container.
	c := e.inspect(cp.Name)
	assert.Equal(t, cp.Name, c.Config.Hostname)
	assert.Equal(t, []string{"--config", "/minik/nodes/" + cp.Name + "/config.json"}, []string(c.Config.Cmd))
	assert.Subset(t, c.Config.Labels, map[string]string{
		nodeconfig.LabelCluster: e.cluster, nodeconfig.LabelNode: cp.Name,
		nodeconfig.LabelRole: nodeconfig.RoleControlPlane, nodeconfig.LabelKind: nodeconfig.KindNode,
		nodeconfig.LabelProfile: e.profile,
	})
	assert.Equal(t, cp.IP, c.NetworkSettings.Networks[NetworkName(e.cluster)].IPAddress.String())
	assert.Contains(t, c.HostConfig.CapAdd, "CAP_NET_ADMIN")
	assert.False(t, c.HostConfig.Privileged)
	port := network.MustParsePort("6443/tcp")
	require.Len(t, c.HostConfig.PortBindings[port], 1)
	assert.Equal(t, "127.0.0.1", c.HostConfig.PortBindings[port][0].HostIP.String())
	assert.Equal(t, strconv.Itoa(cp.APIServerPort), c.HostConfig.PortBindings[port][0].HostPort)
	mounts := mountsOf(c)
	assert.Equal(t, e.profile, mounts["/minik"].Source)
	assert.False(t, mounts["/minik"].RW)
	assert.Equal(t, DataVolumeName(cp.Name), mounts["/var/lib/minik"].Name)
	assert.Contains(t, mounts, "/var/run/docker.sock")

	require.Eventually(t, func() bool {
		return containsAll(e.d.TailNodeLog(ctx, cp, 10), "  test node", "--config /minik/nodes/"+cp.Name+"/config.json", "test node stderr")
	}, 5*time.Second, 50*time.Millisecond, "the log has stdout and stderr: %s", e.d.TailNodeLog(ctx, cp, 10))

	started := c.State.StartedAt
	require.NoError(t, e.d.StartNode(ctx, cp), "starting a running node is a no-op")
	again := e.inspect(cp.Name)
	assert.Equal(t, c.ID, again.ID)
	assert.Equal(t, started, again.State.StartedAt)

	// Stop removes the node's pods and pod volumes, and keeps its data.
	podID, podVol := e.fakePod(cp, "uid-"+randomHex(t))
	require.NoError(t, e.d.StopNode(ctx, cp))
	assert.Equal(t, drivers.StateStopped, e.state(cp))
	_, err = e.api.ContainerInspect(ctx, podID, client.ContainerInspectOptions{})
	assert.Error(t, err, "the pod's sandbox is removed")
	_, err = e.api.VolumeInspect(ctx, podVol, client.VolumeInspectOptions{})
	assert.Error(t, err, "the pod's volume is removed")
	_, err = e.api.VolumeInspect(ctx, DataVolumeName(cp.Name), client.VolumeInspectOptions{})
	assert.NoError(t, err, "the node's data volume stays")
	require.NoError(t, e.d.StopNode(ctx, cp), "stopping a stopped node is a no-op")

	// Start again: same container, same IP.
	require.NoError(t, e.d.StartNode(ctx, cp))
	assert.Equal(t, drivers.StateRunning, e.state(cp))
	restarted := e.inspect(cp.Name)
	assert.Equal(t, c.ID, restarted.ID)
	assert.Equal(t, cp.IP, restarted.NetworkSettings.Networks[NetworkName(e.cluster)].IPAddress.String())
	ip, err := e.d.NodeIP(ctx, cp)
	require.NoError(t, err)
	assert.Equal(t, cp.IP, ip)

	// `docker network prune` on a stopped cluster: the next start makes
	// the network and the node's container anew, with the same IP and data.
	require.NoError(t, e.d.StopNode(ctx, cp))
	_, err = e.api.NetworkRemove(ctx, NetworkName(e.cluster), client.NetworkRemoveOptions{})
	require.NoError(t, err)
	require.NoError(t, e.d.StartNode(ctx, cp))
	remade := e.inspect(cp.Name)
	assert.True(t, remade.State.Running)
	assert.Equal(t, cp.IP, remade.NetworkSettings.Networks[NetworkName(e.cluster)].IPAddress.String())
	assert.Equal(t, DataVolumeName(cp.Name), mountsOf(remade)["/var/lib/minik"].Name, "the same data volume")

	// A worker, then delete it: its container and volumes go.
	w := e.node(1, nodeconfig.RoleWorker)
	require.NoError(t, e.d.StartNode(ctx, w))
	assert.Empty(t, e.inspect(w.Name).HostConfig.PortBindings, "workers publish nothing")
	e.fakePod(w, "uid-"+randomHex(t))
	require.NoError(t, e.d.DeleteNode(ctx, w))
	cs, vs, _ := e.labelled(nodeFilter(w))
	assert.Zero(t, cs, "no container of the deleted node is left")
	assert.Zero(t, vs, "no volume of the deleted node is left")
	assert.Equal(t, drivers.StateStopped, e.state(w))
	require.NoError(t, e.d.DeleteNode(ctx, w), "deleting a deleted node is fine")
	assert.Equal(t, drivers.StateRunning, e.state(cp), "deleting a worker leaves the control plane alone")

	// Delete the cluster: nothing labelled with it is left.
	e.fakePod(cp, "uid-"+randomHex(t))
	require.NoError(t, e.d.DeleteCluster(ctx, e.ref()))
	cs, vs, ns := e.labelled(clusterFilter(e.cluster))
	assert.Zero(t, cs+vs+ns, "containers %d, volumes %d, networks %d left", cs, vs, ns)
	require.NoError(t, e.d.DeleteCluster(ctx, e.ref()), "deleting a deleted cluster is fine")
	assert.Equal(t, drivers.StateStopped, e.state(cp))
	assert.Contains(t, e.d.TailNodeLog(ctx, cp, 5), "(no log:")
}

func TestConcurrentStartsShareOneNetwork(t *testing.T) {
	e := newTestEnv(t)
	ctx := context.Background()
	nodes := []drivers.Node{e.node(1, nodeconfig.RoleWorker), e.node(2, nodeconfig.RoleWorker), e.node(3, nodeconfig.RoleWorker)}
	var wg sync.WaitGroup
	errs := make([]error, len(nodes))
	for i, n := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = e.d.StartNode(ctx, n)
		}()
	}
	wg.Wait()
	require.NoError(t, errors.Join(errs...))
	_, _, ns := e.labelled(clusterFilter(e.cluster))
	assert.Equal(t, 1, ns)
	for _, n := range nodes {
		assert.Equal(t, drivers.StateRunning, e.state(n))
		assert.Equal(t, n.IP, e.inspect(n.Name).NetworkSettings.Networks[NetworkName(e.cluster)].IPAddress.String())
	}
}

func TestChooseSubnetAvoidsWhatIsInUse(t *testing.T) {
	e := newTestEnv(t)
	ctx := context.Background()
	first := e.subnet
	second, err := e.d.ChooseSubnet(ctx, []string{first})
	require.NoError(t, err)
	assert.NotEqual(t, first, second, "a taken subnet is skipped")

	// Once the cluster's network exists, the engine has the subnet.
	require.NoError(t, e.d.StartNode(ctx, e.node(1, nodeconfig.RoleWorker)))
	again, err := e.d.ChooseSubnet(ctx, nil)
	require.NoError(t, err)
	assert.NotEqual(t, first, again, "an engine network's subnet is skipped")

	addrs, err := net.InterfaceAddrs()
	require.NoError(t, err)
	for _, a := range addrs {
		if ipn, ok := a.(*net.IPNet); ok && ipn.IP.To4() != nil {
			_, chosen, _ := net.ParseCIDR(again)
			assert.False(t, chosen.Contains(ipn.IP), "%s holds the host address %s", again, ipn.IP)
		}
	}
	_, err = e.d.ChooseSubnet(ctx, []string{"not-a-cidr"})
	assert.Error(t, err)
}

// Two clusters that chose the same subnet at once (parallel starts with
// their own MINIK_HOMEs): the engine gives it to the first reservation and
// the second is told to choose again.
func TestReserveSubnet(t *testing.T) {
	e := newTestEnv(t)
	ctx := context.Background()
	require.NoError(t, e.d.ReserveSubnet(ctx, e.ref(), e.subnet))
	require.NoError(t, e.d.ReserveSubnet(ctx, e.ref(), e.subnet), "reserving its own again is fine")

	other := drivers.Cluster{Name: "test-" + randomHex(t), ProfileDir: t.TempDir()}
	t.Cleanup(func() { _ = e.d.DeleteCluster(context.Background(), other) })
	err := e.d.ReserveSubnet(ctx, other, e.subnet)
	require.ErrorIs(t, err, drivers.ErrSubnetTaken)

	next, err := e.d.ChooseSubnet(ctx, nil)
	require.NoError(t, err)
	require.NotEqual(t, e.subnet, next)
	require.NoError(t, e.d.ReserveSubnet(ctx, other, next))
}

func TestNamesTakenByOthers(t *testing.T) {
	e := newTestEnv(t)
	ctx := context.Background()
	n := e.node(1, nodeconfig.RoleWorker)

	// A container that has the node's name but is not minik's.
	foreign, err := e.api.ContainerCreate(ctx, client.ContainerCreateOptions{Name: n.Name, Image: containerimage.Ref(e.d.version)})
	require.NoError(t, err)
	t.Cleanup(func() {
		_, _ = e.api.ContainerRemove(context.Background(), foreign.ID, client.ContainerRemoveOptions{Force: true})
	})
	err = e.d.StartNode(ctx, n)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "a container named "+n.Name+" exists and is not minik's: remove it or choose another profile name")
	assert.Equal(t, drivers.StateStopped, e.state(n))
	require.NoError(t, e.d.StopNode(ctx, n))
	require.NoError(t, e.d.DeleteNode(ctx, n))
	require.NoError(t, e.d.DeleteCluster(ctx, e.ref()))
	_, err = e.api.ContainerInspect(ctx, foreign.ID, client.ContainerInspectOptions{})
	assert.NoError(t, err, "the foreign container is left alone")

	// A network with the cluster network's name that is not minik's.
	other := e.node(2, nodeconfig.RoleWorker)
	nw, err := e.api.NetworkCreate(ctx, NetworkName(e.cluster), client.NetworkCreateOptions{Driver: "bridge"})
	require.NoError(t, err)
	t.Cleanup(func() { _, _ = e.api.NetworkRemove(context.Background(), nw.ID, client.NetworkRemoveOptions{}) })
	err = e.d.StartNode(ctx, other)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "exists and is not minik's")
}

// Two minik homes, each with a cluster of the same name (the default
// profile of two CI jobs on one engine): the second is told the name is
// taken, and its start's rollback, stop and delete touch nothing of the
// first's, even after `docker network prune` removed the first's network.
func TestClusterOfAnotherHome(t *testing.T) {
	e := newTestEnv(t)
	ctx := context.Background()
	cp := e.node(0, nodeconfig.RoleControlPlane)
	cp.APIServerPort = freePort(t)
	require.NoError(t, e.d.StartNode(ctx, cp))
	podID, podVol := e.fakePod(cp, "uid-"+randomHex(t))

	home := t.TempDir()
	dir := filepath.Join(home, "profiles", e.cluster)
	theirs := cp
	theirs.ProfileDir = dir
	theirs.ConfigPath = filepath.Join(dir, "nodes", cp.Name, "config.json")
	theirs.APIServerPort = freePort(t)
	require.NoError(t, os.MkdirAll(filepath.Dir(theirs.ConfigPath), 0o700))
	require.NoError(t, os.WriteFile(theirs.ConfigPath, []byte("{}"), 0o600))
	ref := drivers.Cluster{Name: e.cluster, ProfileDir: dir}
	anotherHome := "the Docker Engine already has a cluster named " + e.cluster + " from another minik home"

	err := e.d.ReserveSubnet(ctx, ref, e.subnet)
	require.Error(t, err)
	assert.NotErrorIs(t, err, drivers.ErrSubnetTaken, "choosing another subnet would not help")
	assert.Contains(t, err.Error(), anotherHome)
	assert.Contains(t, err.Error(), "MINIK_HOME="+filepath.Dir(filepath.Dir(e.profile)))

	check := func(what string) {
		t.Helper()
		assert.True(t, e.inspect(cp.Name).State.Running, "%s: the first home's node runs", what)
		_, err := e.api.ContainerInspect(ctx, podID, client.ContainerInspectOptions{})
		assert.NoError(t, err, "%s: the first home's pod is there", what)
		for _, v := range []string{podVol, DataVolumeName(cp.Name)} {
			_, err = e.api.VolumeInspect(ctx, v, client.VolumeInspectOptions{})
			assert.NoError(t, err, "%s: the first home's volume %s is there", what, v)
		}
	}
	// The first home's network pruned while its node is stopped: the
	// second home makes the network anew, then finds the node.
	require.NoError(t, e.d.StopNode(ctx, cp))
	_, err = e.api.NetworkRemove(ctx, NetworkName(e.cluster), client.NetworkRemoveOptions{})
	require.NoError(t, err)
	require.NoError(t, e.d.ReserveSubnet(ctx, ref, e.subnet))
	err = e.d.StartNode(ctx, theirs)
	require.Error(t, err)
	assert.Contains(t, err.Error(), anotherHome)
	assert.Equal(t, drivers.StateStopped, e.state(theirs))
	require.NoError(t, e.d.StopNode(ctx, theirs))
	require.NoError(t, e.d.DeleteNode(ctx, theirs))
	require.NoError(t, e.d.DeleteCluster(ctx, ref))
	_, _, ns := e.labelled(clusterFilter(e.cluster))
	assert.Zero(t, ns, "the second home's network goes with its cluster")

	require.NoError(t, e.d.StartNode(ctx, cp), "the first home starts its node again")
	podID, podVol = e.fakePod(cp, "uid-"+randomHex(t))
	err = e.d.StartNode(ctx, theirs)
	require.Error(t, err)
	assert.Contains(t, err.Error(), anotherHome)
	require.NoError(t, e.d.StopNode(ctx, theirs))
	require.NoError(t, e.d.DeleteNode(ctx, theirs))
	require.NoError(t, e.d.DeleteCluster(ctx, ref))
	check("after the second home's stop and delete")
}

func TestProfileOfThings(t *testing.T) {
	mine, theirs := "/home/a/.minik/profiles/dev", "/home/b/.minik/profiles/dev"
	cases := []struct {
		name   string
		labels map[string]string
		mounts []container.MountPoint
		node   string
		other  string
	}{
		{name: "labelled mine", labels: map[string]string{nodeconfig.LabelProfile: mine}, node: mine},
		{name: "labelled theirs", labels: map[string]string{nodeconfig.LabelProfile: theirs}, node: theirs, other: theirs},
		{name: "unlabelled node mounting theirs", labels: map[string]string{nodeconfig.LabelKind: nodeconfig.KindNode},
			mounts: []container.MountPoint{{Destination: "/minik", Source: theirs}}, node: theirs},
		{name: "a pod mounting something at /minik", labels: map[string]string{nodeconfig.LabelKind: nodeconfig.KindContainer},
			mounts: []container.MountPoint{{Destination: "/minik", Source: "/var/lib/docker/volumes/x/_data"}}},
		{name: "unlabelled, nothing mounted (a pod)", labels: map[string]string{nodeconfig.LabelCluster: "dev"}},
		{name: "the label wins over the mount", labels: map[string]string{nodeconfig.LabelProfile: mine}, mounts: []container.MountPoint{{Destination: "/minik", Source: theirs}}, node: mine},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.node, nodeProfile(tc.labels, tc.mounts))
			assert.Equal(t, tc.other, otherProfile(tc.labels, mine))
		})
	}
}

func mountsOf(c container.InspectResponse) map[string]container.MountPoint {
	out := map[string]container.MountPoint{}
	for _, m := range c.Mounts {
		out[m.Destination] = m
	}
	return out
}

func containsAll(s string, subs ...string) bool {
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			return false
		}
	}
	return true
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func randomHex(t *testing.T) string {
	t.Helper()
	b := make([]byte, 4)
	_, err := rand.Read(b)
	require.NoError(t, err)
	return hex.EncodeToString(b)
}
