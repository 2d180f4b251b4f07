package kvm

import (
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"minik.dev/minik/background"
	"minik.dev/minik/drivers"
	"minik.dev/minik/node-image/vm/guest"
	"minik.dev/minik/nodeconfig"
)

func TestKernelCmdline(t *testing.T) {
	n := drivers.Node{Cluster: "dev", Name: "dev-m02", IP: "172.20.0.3", Subnet: "172.20.0.0/16",
		ProfileDir: "/home/u/.minik/profiles/dev", ConfigPath: "/home/u/.minik/profiles/dev/nodes/dev-m02/config.json"}
	line, err := kernelCmdline(n)
	require.NoError(t, err)
	nw, ok, err := guest.ParseCmdline(line)
	require.NoError(t, err)
	require.True(t, ok)
	assert.Equal(t, "172.20.0.3/16", nw.Address.String())
	assert.Equal(t, "172.20.0.1", nw.Gateway.String(), "the host is the network's first address")
	assert.Equal(t, "dev-m02", nw.Hostname)
	assert.Equal(t, podBridge, nw.Bridge, "the node's interface is in the pods' bridge")
	assert.Equal(t, "/minik/nodes/dev-m02/config.json", guest.CmdlineValue(line, "minik.config"))
	assert.Equal(t, "/dev/vda", guest.CmdlineValue(line, "minik.disk"))
	assert.Equal(t, "/var/lib/minik", guest.CmdlineValue(line, "minik.data"))
	assert.Equal(t, "ttyS0", guest.CmdlineValue(line, "console"))

	for name, bad := range map[string]drivers.Node{
		"config outside the profile": {IP: n.IP, Subnet: n.Subnet, ProfileDir: n.ProfileDir, ConfigPath: "/etc/config.json"},
		"no subnet":                  {IP: n.IP, ProfileDir: n.ProfileDir, ConfigPath: n.ConfigPath},
		"bad address":                {IP: "x", Subnet: n.Subnet, ProfileDir: n.ProfileDir, ConfigPath: n.ConfigPath},
	} {
		_, err := kernelCmdline(bad)
		assert.Error(t, err, name)
	}
}

func TestConfigureNode(t *testing.T) {
	for _, role := range []string{nodeconfig.RoleControlPlane, nodeconfig.RoleWorker} {
		n := drivers.Node{Cluster: "dev", Name: "dev", Role: role, Subnet: "172.20.0.0/16", ServiceCIDR: "172.20.64.0/18", DNSDomain: "cluster.local"}
		cfg := &nodeconfig.Config{Runtime: nodeconfig.RuntimeSim}
		New(nil, nil, nil).ConfigureNode(n, cfg)
		assert.Equal(t, nodeconfig.RuntimeRunc, cfg.Runtime)
		assert.Equal(t, &nodeconfig.RuncRuntime{
			Bridge: podBridge, Gateway: "172.20.0.1", PrefixLen: 16, StateDir: "/var/lib/minik/runc", RunDir: "/run/minik",
			ServiceNetwork: nodeconfig.ServiceNetwork{
				ServiceCIDR: "172.20.64.0/18", DNSDomain: "cluster.local", ServeServices: role == nodeconfig.RoleControlPlane,
			},
		}, cfg.Runc, role)
	}
}

func TestConfigureNodeWithImageServer(t *testing.T) {
	serve := func(addr, dir string) *exec.Cmd { return exec.Command("true", addr, dir) }
	n := drivers.Node{Cluster: "dev", Name: "dev-m02", Role: nodeconfig.RoleWorker, Subnet: "172.21.0.0/16"}
	cfg := &nodeconfig.Config{}
	New(nil, nil, serve).ConfigureNode(n, cfg)
	assert.Equal(t, "172.21.0.1:5000", cfg.Runc.ImageServer, "every node pulls from the host's address on the network")
}

func TestImageServerLifecycle(t *testing.T) {
	// A stand-in server: a process whose command line names the address,
	// as `minik image serve --listen ADDR` does, and that ends on SIGTERM
	// as the server does.
	var started []string
	serve := func(addr, dir string) *exec.Cmd {
		started = append(started, addr)
		return exec.Command("sh", "-c", "trap 'exit 0' TERM; while :; do sleep 0.1; done", "serve", addr)
	}
	d := New(nil, nil, serve)
	n := drivers.Node{Cluster: "dev", Name: "dev", Role: nodeconfig.RoleControlPlane, Subnet: "172.21.0.0/16", ProfileDir: t.TempDir()}
	require.NoError(t, d.ensureImageServer(n))
	require.NoError(t, d.ensureImageServer(n))
	assert.Equal(t, []string{"172.21.0.1:5000"}, started, "a running server is kept")
	_, pidFile := imageServerFiles(n)
	_, ok := background.Running(pidFile, "172.21.0.1:5000")
	require.True(t, ok)
	require.NoError(t, d.stopImageServer(n))
	_, ok = background.Running(pidFile, "172.21.0.1:5000")
	assert.False(t, ok)
	assert.NoDirExists(t, filepath.Join(n.ProfileDir, "image-server"))
}

func TestProfileFiles(t *testing.T) {
	profile := t.TempDir()
	manifests := t.TempDir()
	write := func(p string) {
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		require.NoError(t, os.WriteFile(p, []byte("x"), 0o600))
	}
	write(filepath.Join(profile, "profile.json"))
	write(filepath.Join(profile, "pki", "ca.crt"))
	write(filepath.Join(profile, "nodes", "dev", "config.json"))
	write(filepath.Join(profile, "nodes", "dev", "vm", "data.img"))
	write(filepath.Join(profile, "nodes", "dev", "vm", "initrd.cpio"))
	write(filepath.Join(manifests, "app.yaml"))

	paths := func(n drivers.Node) []string {
		files, err := profileFiles(n)
		require.NoError(t, err)
		var out []string
		for _, f := range files {
			out = append(out, f.Path)
		}
		sort.Strings(out)
		return out
	}
	n := drivers.Node{Role: "control-plane", ProfileDir: profile, ManifestsDir: manifests}
	assert.Equal(t, []string{"/minik-manifests/app.yaml", "/minik/nodes/dev/config.json", "/minik/pki/ca.crt", "/minik/profile.json"}, paths(n),
		"the profile and the manifests folder as the node sees them, without any node's VM files")
	n.Role = "worker"
	assert.NotContains(t, paths(n), "/minik-manifests/app.yaml", "only the control plane applies manifests")
}

func TestNetworkPrefixes(t *testing.T) {
	xml := `<network><name>default</name><ip address="192.168.122.1" netmask="255.255.255.0"/><ip address="10.9.0.1" prefix="16"/><ip family="ipv6" address="fd00::1" prefix="64"/></network>`
	var got []string
	for _, p := range networkPrefixes(xml) {
		got = append(got, p.String())
	}
	assert.Equal(t, []string{"192.168.122.0/24", "10.9.0.0/16"}, got)
	assert.Empty(t, networkPrefixes("not xml"))
}

func TestChooseAccel(t *testing.T) {
	env := map[string]string{}
	d := New(nil, nil, nil)
	d.getenv = func(k string) string { return env[k] }
	d.ConfigureVMs(drivers.VMOptions{Accel: drivers.AccelTCG})
	assert.Equal(t, AccelTCG, d.chooseAccel(nil))
	d.ConfigureVMs(drivers.VMOptions{Accel: drivers.AccelKVM})
	assert.Equal(t, AccelKVM, d.chooseAccel(nil), "the profile's choice wins")
	d.ConfigureVMs(drivers.VMOptions{})
	env[EnvAccel] = "tcg"
	assert.Equal(t, AccelTCG, d.chooseAccel(nil), "then the environment's")
}
