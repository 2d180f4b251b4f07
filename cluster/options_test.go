package cluster

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"minik.dev/minik/drivers"
	"minik.dev/minik/drivers/fakedriver"
)

func intPtr(n int) *int { return &n }

func TestStartOptionsValidate(t *testing.T) {
	valid := StartOptions{Profile: "dev"}
	cases := []struct {
		name    string
		change  func(*StartOptions)
		field   string
		message string
	}{
		{"defaults", func(*StartOptions) {}, "", ""},
		{"everything set", func(o *StartOptions) {
			o.Nodes, o.APIServerPort, o.Wait = intPtr(MaxNodes), 65535, time.Minute
			o.CPUMillis, o.MemoryBytes, o.MaxPods = MinCPUMillis, MinMemoryBytes, MaxPodsLimit
			o.NodeMonitorGracePeriod, o.PodEvictionTimeout = time.Second, time.Hour
		}, "", ""},
		{"bad profile name", func(o *StartOptions) { o.Profile = "Bad_Name" }, "Profile",
			`invalid profile name "Bad_Name": use 1-50 lower-case letters, digits and '-', starting and ending with a letter or digit`},
		{"no profile name", func(o *StartOptions) { o.Profile = "" }, "Profile", `invalid profile name "": use 1-50`},
		{"zero nodes", func(o *StartOptions) { o.Nodes = intPtr(0) }, "Nodes", "invalid node count 0: a cluster needs at least 1 node"},
		{"negative nodes", func(o *StartOptions) { o.Nodes = intPtr(-2) }, "Nodes", "invalid node count -2: a cluster needs at least 1 node"},
		{"too many nodes", func(o *StartOptions) { o.Nodes = intPtr(MaxNodes + 1) }, "Nodes", "invalid node count 501: use 1 to 500"},
		{"negative port", func(o *StartOptions) { o.APIServerPort = -1 }, "APIServerPort", "invalid apiserver port -1: use 1 to 65535, or 0 for a free port"},
		{"port too high", func(o *StartOptions) { o.APIServerPort = 65536 }, "APIServerPort", "invalid apiserver port 65536: use 1 to 65535"},
		{"negative wait", func(o *StartOptions) { o.Wait = -time.Second }, "Wait", "invalid wait -1s: use a duration such as 5m, or 0 not to wait"},
		{"too little CPU", func(o *StartOptions) { o.CPUMillis = 50 }, "CPUMillis", "invalid CPU capacity 50m: use cores such as 2 or millicores such as 1500m (at least 100m)"},
		{"negative CPU", func(o *StartOptions) { o.CPUMillis = -1000 }, "CPUMillis", "invalid CPU capacity -1000m"},
		{"too little memory", func(o *StartOptions) { o.MemoryBytes = 1 << 20 }, "MemoryBytes", "invalid memory capacity 1Mi: use a size such as 4Gi or 4096 (MiB), at least 64Mi"},
		{"negative max pods", func(o *StartOptions) { o.MaxPods = -1 }, "MaxPods", "invalid max pods -1: use 1 to 1000"},
		{"too many max pods", func(o *StartOptions) { o.MaxPods = MaxPodsLimit + 1 }, "MaxPods", "invalid max pods 1001: use 1 to 1000"},
		{"short grace period", func(o *StartOptions) { o.NodeMonitorGracePeriod = 500 * time.Millisecond }, "NodeMonitorGracePeriod", "invalid node monitor grace period 500ms: use at least 1s"},
		{"negative grace period", func(o *StartOptions) { o.NodeMonitorGracePeriod = -time.Second }, "NodeMonitorGracePeriod", "invalid node monitor grace period -1s: use at least 1s"},
		{"short eviction timeout", func(o *StartOptions) { o.PodEvictionTimeout = time.Millisecond }, "PodEvictionTimeout", "invalid pod eviction timeout 1ms: use at least 1s"},
		{"listen address not an IP", func(o *StartOptions) { o.ListenAddress = "eth0" }, "ListenAddress", "invalid listen address eth0: not an IP address"},
		{"listen on every address", func(o *StartOptions) { o.ListenAddress = "0.0.0.0" }, "ListenAddress", "not every address"},
		{"listen on loopback", func(o *StartOptions) { o.ListenAddress = "127.0.0.1" }, "ListenAddress", "always listens on loopback"},
		{"listen on another machine's address", func(o *StartOptions) { o.ListenAddress = "192.0.2.77" }, "ListenAddress", "no interface of this machine has it"},
		{"VM accelerators", func(o *StartOptions) { o.VMAccel = "tcg" }, "", ""},
		{"unknown VM accelerator", func(o *StartOptions) { o.VMAccel = "hvf" }, "VMAccel", "invalid VM accelerator hvf: use kvm or tcg"},
		{"missing VM kernel", func(o *StartOptions) { o.VMKernel = "/no/vmlinuz-6.1" }, "VMKernel", "invalid VM kernel /no/vmlinuz-6.1: name a kernel file"},
		{"VM kernel is a folder", func(o *StartOptions) { o.VMKernel = os.TempDir() }, "VMKernel", "name a kernel file"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			o := valid
			tc.change(&o)
			err := o.Validate()
			if tc.field == "" {
				require.NoError(t, err)
				return
			}
			var invalid *InvalidOptionError
			require.ErrorAs(t, err, &invalid)
			assert.Equal(t, tc.field, invalid.Field)
			assert.Contains(t, err.Error(), tc.message)
		})
	}
}

func TestAddNodeOptionsValidate(t *testing.T) {
	cases := []struct {
		name    string
		o       AddNodeOptions
		field   string
		message string
	}{
		{"defaults", AddNodeOptions{}, "", ""},
		{"worker with capacity", AddNodeOptions{Role: "worker", Wait: time.Minute, CPUMillis: 500, MemoryBytes: 1 << 30, MaxPods: 20}, "", ""},
		{"control plane", AddNodeOptions{Role: "control-plane"}, "Role", `invalid role "control-plane": minik supports only one control plane; add a worker`},
		{"unknown role", AddNodeOptions{Role: "boss"}, "Role", `invalid role "boss": use worker`},
		{"negative wait", AddNodeOptions{Wait: -time.Minute}, "Wait", "invalid wait -1m0s"},
		{"too little CPU", AddNodeOptions{CPUMillis: 99}, "CPUMillis", "invalid CPU capacity 99m"},
		{"negative memory", AddNodeOptions{MemoryBytes: -1}, "MemoryBytes", "invalid memory capacity -1"},
		{"too many max pods", AddNodeOptions{MaxPods: 5000}, "MaxPods", "invalid max pods 5000: use 1 to 1000"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.o.Validate()
			if tc.field == "" {
				require.NoError(t, err)
				return
			}
			var invalid *InvalidOptionError
			require.ErrorAs(t, err, &invalid)
			assert.Equal(t, tc.field, invalid.Field)
			assert.Contains(t, err.Error(), tc.message)
		})
	}
}

func TestGivenCapacityChecks(t *testing.T) {
	// A given 0 is too little, unlike an option's 0, which is the default.
	for _, err := range []error{CheckCPUMillis(0), CheckMemoryBytes(0)} {
		var invalid *InvalidOptionError
		assert.ErrorAs(t, err, &invalid)
	}
	assert.NoError(t, CheckCPUMillis(MinCPUMillis))
	assert.NoError(t, CheckMemoryBytes(MinMemoryBytes))
}

func TestInvalidOptionsTouchNothing(t *testing.T) {
	ctx := context.Background()
	home := t.TempDir()
	d := &fakedriver.Driver{}
	m := New(Options{Home: home, Drivers: drivers.NewRegistry(d)})

	_, err := m.Start(ctx, StartOptions{Profile: "dev", Nodes: intPtr(0)})
	assert.ErrorContains(t, err, "a cluster needs at least 1 node")
	_, err = m.AddNode(ctx, "dev", AddNodeOptions{MaxPods: -1})
	assert.ErrorContains(t, err, "invalid max pods -1")
	assert.ErrorContains(t, m.StartNode(ctx, "dev", "dev-m02", -time.Second), "invalid wait -1s")

	assert.Empty(t, d.Calls())
	entries, err := os.ReadDir(home)
	require.NoError(t, err)
	assert.Empty(t, entries, "not even a lock file")
}
