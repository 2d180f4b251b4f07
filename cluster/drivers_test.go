package cluster

import (
	"context"
	"errors"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"minik.dev/minik/drivers"
	"minik.dev/minik/drivers/fakedriver"
	"minik.dev/minik/nodeconfig"
)

// onlyDriver hides a driver's optional capabilities.
type onlyDriver struct{ drivers.Driver }

// configurer is the fake with a NodeConfigurer that records what it saw.
type configurer struct {
	*fakedriver.Driver
	seen []drivers.Node
}

func (c *configurer) ConfigureNode(n drivers.Node, cfg *nodeconfig.Config) {
	c.seen = append(c.seen, n)
	cfg.Runtime = nodeconfig.RuntimeDocker
	cfg.Docker = &nodeconfig.DockerRuntime{Network: "net-" + n.Cluster, SandboxImage: "image", ServiceNetwork: nodeconfig.ServiceNetwork{ServiceCIDR: n.ServiceCIDR, DNSDomain: n.DNSDomain}}
}

// fullProfile is profile dev with a control plane and a worker that node
// configs accept.
func fullProfile() *Profile {
	p := &Profile{
		Name: "dev", Driver: fakedriver.Name, APIServerPort: 40000,
		ServiceCIDR: "10.96.0.0/16", PodCIDR: "10.244.0.0/16",
		NodeDefaults: NodeResources{CPUMillis: 1000, MemoryBytes: 1 << 30, MaxPods: DefaultMaxPods},
	}
	p.Nodes = []ProfileNode{p.newNode("dev", nodeconfig.RoleControlPlane, "127.0.0.2"), p.newNode("dev-m02", nodeconfig.RoleWorker, "127.0.0.3")}
	return p
}

func TestNodeConfigsAreTheDriversToExtend(t *testing.T) {
	d := &configurer{Driver: &fakedriver.Driver{}}
	m := New(Options{Home: t.TempDir(), Drivers: drivers.NewRegistry(d)})
	p := fullProfile()
	require.NoError(t, m.store.Save(p))

	require.NoError(t, m.writeConfigs(d, p))

	require.Len(t, d.seen, 2)
	for i, n := range d.seen {
		assert.Equal(t, p.Nodes[i].Name, n.Name)
		assert.Equal(t, p.Nodes[i].Role, n.Role)
		assert.Equal(t, "10.96.0.0/16", n.ServiceCIDR)
		assert.Equal(t, nodeconfig.DefaultDNSDomain, n.DNSDomain)

		cfg, err := nodeconfig.Load(filepath.Join(m.store.NodeDir("dev", n.Name), "config.json"))
		require.NoError(t, err)
		assert.Equal(t, &nodeconfig.DockerRuntime{Network: "net-dev", SandboxImage: "image", ServiceNetwork: nodeconfig.ServiceNetwork{ServiceCIDR: "10.96.0.0/16", DNSDomain: "cluster.local"}},
			cfg.Docker, "the cluster adds nothing to what the driver configured")
	}
}

func TestNodeConfigsWithoutConfigurer(t *testing.T) {
	d := &fakedriver.Driver{}
	m := New(Options{Home: t.TempDir(), Drivers: drivers.NewRegistry(d)})
	p := fullProfile()
	require.NoError(t, m.store.Save(p))

	require.NoError(t, m.writeConfigs(d, p))

	cfg, err := nodeconfig.Load(filepath.Join(m.store.NodeDir("dev", "dev"), "config.json"))
	require.NoError(t, err)
	assert.Equal(t, nodeconfig.RuntimeSim, cfg.Runtime)
	assert.Nil(t, cfg.Docker)
	require.NotNil(t, cfg.ControlPlane)
	assert.Equal(t, "10.96.0.0/16", cfg.ControlPlane.ServiceCIDR)
}

func TestLogHint(t *testing.T) {
	ctx := context.Background()
	p := fullProfile()
	m := New(Options{Home: t.TempDir()})
	cases := []struct {
		name string
		d    drivers.Driver
		want string
	}{
		{"driver tails the log", &fakedriver.Driver{}, "last lines of its log:\n  (no log: the fake driver runs nothing on node dev-m02)"},
		{"driver without LogTailer", onlyDriver{&fakedriver.Driver{}}, "its log is kept by the fake driver"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, m.logHint(ctx, tc.d, p, p.Nodes[1]))
		})
	}
}

func TestServiceURLsNeedReachableServices(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		name      string
		reachable bool
		wantErr   string
		simulated bool
	}{
		{"simulated pods", false, "services of this cluster are simulated: the fake driver runs pods on the sim runtime, so nothing answers on a Service's address", true},
		// The driver lets it through; the profile's apiserver is then asked.
		{"real pods", true, "load admin kubeconfig", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := &fakedriver.Driver{ServicesReachable: tc.reachable}
			m := New(Options{Home: t.TempDir(), Drivers: drivers.NewRegistry(d)})
			require.NoError(t, m.store.Save(fullProfile()))
			_, err := m.ServiceURLs(ctx, "dev", "default", "web")
			require.ErrorContains(t, err, tc.wantErr)
			assert.Equal(t, tc.simulated, errors.Is(err, ErrSimulatedService))
		})
	}
}
