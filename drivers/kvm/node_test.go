package kvm

import (
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"minik.dev/minik/background"
	"minik.dev/minik/drivers"
	"minik.dev/minik/drivers/vmnode"
	"minik.dev/minik/nodeconfig"
)

func TestConfigureNode(t *testing.T) {
	for _, role := range []string{nodeconfig.RoleControlPlane, nodeconfig.RoleWorker} {
		n := drivers.Node{Cluster: "dev", Name: "dev", Role: role, Subnet: "172.20.0.0/16", ServiceCIDR: "172.20.64.0/18", DNSDomain: "cluster.local"}
		cfg := &nodeconfig.Config{Runtime: nodeconfig.RuntimeSim}
		New(nil, nil, nil).ConfigureNode(n, cfg)
		assert.Equal(t, nodeconfig.RuntimeRunc, cfg.Runtime)
		assert.Equal(t, &nodeconfig.RuncRuntime{
			Bridge: vmnode.PodBridge, Gateway: "172.20.0.1", PrefixLen: 16, StateDir: "/var/lib/minik/runc", RunDir: "/run/minik",
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
	unusable := ""
	d := New(nil, nil, nil)
	d.getenv = func(k string) string { return env[k] }
	d.kvmUnusable = func() string { return unusable }
	choose := func() string {
		t.Helper()
		accel, err := d.chooseAccel(nil)
		require.NoError(t, err)
		return accel
	}
	d.ConfigureVMs(drivers.VMOptions{Accel: drivers.AccelTCG})
	assert.Equal(t, AccelTCG, choose())
	d.ConfigureVMs(drivers.VMOptions{Accel: drivers.AccelKVM})
	assert.Equal(t, AccelKVM, choose(), "the profile's choice wins")
	d.ConfigureVMs(drivers.VMOptions{})
	env[EnvAccel] = "tcg"
	assert.Equal(t, AccelTCG, choose(), "then the environment's")
	delete(env, EnvAccel)
	assert.Equal(t, AccelKVM, choose(), "KVM when it can run guests")

	tests := []struct {
		reason, fix string
	}{
		{"open /dev/kvm: permission denied", "usermod -aG kvm"},
		{"open /dev/kvm: no such file or directory", "modprobe"},
		{"the CPU shows no vmx or svm", "virtualization"},
	}
	for _, tt := range tests {
		unusable = tt.reason
		var said string
		accel, err := d.chooseAccel(func(msg string) { said = msg })
		require.NoError(t, err)
		assert.Equal(t, AccelTCG, accel, "TCG when KVM cannot run guests")
		assert.Contains(t, said, tt.reason)
		assert.Contains(t, said, tt.fix)

		d.ConfigureVMs(drivers.VMOptions{Accel: drivers.AccelKVM})
		_, err = d.chooseAccel(nil)
		var health *drivers.HealthError
		require.ErrorAs(t, err, &health, "KVM asked for where it cannot run")
		assert.Contains(t, err.Error(), tt.reason)
		assert.Contains(t, err.Error(), tt.fix)
		assert.Contains(t, err.Error(), "--vm-accel tcg")
		d.ConfigureVMs(drivers.VMOptions{})
	}
}
