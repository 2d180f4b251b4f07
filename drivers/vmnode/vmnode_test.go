package vmnode

import (
	"os"
	"path/filepath"
	"sort"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"minik.dev/minik/drivers"
	"minik.dev/minik/node-image/vm/guest"
)

func TestCmdline(t *testing.T) {
	n := drivers.Node{Cluster: "dev", Name: "dev-m02", IP: "172.20.0.3", Subnet: "172.20.0.0/16",
		ProfileDir: "/home/u/.minik/profiles/dev", ConfigPath: "/home/u/.minik/profiles/dev/nodes/dev-m02/config.json"}
	line, err := Cmdline(n, "/dev/vda")
	require.NoError(t, err)
	nw, ok, err := guest.ParseCmdline(line)
	require.NoError(t, err)
	require.True(t, ok)
	assert.Equal(t, "172.20.0.3/16", nw.Address.String())
	assert.Equal(t, "172.20.0.1", nw.Gateway.String(), "the host is the network's first address")
	assert.Equal(t, "dev-m02", nw.Hostname)
	assert.Equal(t, PodBridge, nw.Bridge, "the node's interface is in the pods' bridge")
	assert.Equal(t, "/minik/nodes/dev-m02/config.json", guest.CmdlineValue(line, "minik.config"))
	assert.Equal(t, "/dev/vda", guest.CmdlineValue(line, "minik.disk"))
	assert.Equal(t, "/var/lib/minik", guest.CmdlineValue(line, "minik.data"))
	assert.Equal(t, "ttyS0", guest.CmdlineValue(line, "console"))

	for name, bad := range map[string]drivers.Node{
		"config outside the profile": {IP: n.IP, Subnet: n.Subnet, ProfileDir: n.ProfileDir, ConfigPath: "/etc/config.json"},
		"no subnet":                  {IP: n.IP, ProfileDir: n.ProfileDir, ConfigPath: n.ConfigPath},
		"bad address":                {IP: "x", Subnet: n.Subnet, ProfileDir: n.ProfileDir, ConfigPath: n.ConfigPath},
	} {
		_, err := Cmdline(bad, "/dev/vda")
		assert.Error(t, err, name)
	}
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
		files, err := ProfileFiles(n, "vm")
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
