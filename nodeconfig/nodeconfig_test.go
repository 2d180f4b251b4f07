package nodeconfig

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func validControlPlane() *Config {
	return &Config{
		Cluster: "minik", Name: "minik", Role: RoleControlPlane, IP: "127.0.0.2", KubeletPort: 10250,
		DataDir: "/d", PKIDir: "/pki", APIServer: "https://127.0.0.1:6443", Kubeconfig: "/k",
		CPUMillis: 2000, MemoryBytes: 1 << 30,
		ControlPlane: &ControlPlane{
			BindAddress: "127.0.0.1", Port: 6443, ServiceCIDR: DefaultServiceCIDR, PodCIDR: DefaultPodCIDR,
			DNSDomain: DefaultDNSDomain, ControllerManagerKubeconfig: "/cm", SchedulerKubeconfig: "/s", AdminKubeconfig: "/a",
		},
	}
}

func validRunc() *RuncRuntime {
	return &RuncRuntime{Bridge: "minik0", Gateway: "172.20.0.1", PrefixLen: 16, StateDir: "/var/lib/minik/runc", RunDir: "/run/minik"}
}

func TestServices(t *testing.T) {
	c := validControlPlane()
	assert.Nil(t, c.Services(), "simulated pods have no Services of their own")
	c.Runtime, c.Runc = RuntimeRunc, validRunc()
	c.Runc.ServiceCIDR = "172.20.64.0/18"
	require.NotNil(t, c.Services())
	assert.Equal(t, "172.20.64.0/18", c.Services().ServiceCIDR)
	c.Runtime, c.Runc, c.Docker = RuntimeDocker, nil, &DockerRuntime{ServiceNetwork: ServiceNetwork{DNSDomain: "cluster.local"}}
	assert.Equal(t, "cluster.local", c.Services().DNSDomain)
}

func TestValidate(t *testing.T) {
	cases := []struct {
		name   string
		mutate func(*Config)
		want   string
	}{
		{"valid", func(*Config) {}, ""},
		{"bad name", func(c *Config) { c.Name = "Node_1" }, "DNS-1123"},
		{"bad role", func(c *Config) { c.Role = "boss" }, "node role"},
		{"bad ip", func(c *Config) { c.IP = "1.2.3" }, "not an IP"},
		{"no capacity", func(c *Config) { c.CPUMillis = 0 }, "capacity"},
		{"control plane missing", func(c *Config) { c.ControlPlane = nil }, "controlPlane section"},
		{"port out of range", func(c *Config) { c.ControlPlane.Port = 70000 }, "out of range"},
		{"bad cidr", func(c *Config) { c.ControlPlane.PodCIDR = "10.0.0.0/99" }, "invalid CIDR"},
		{"worker needs no control plane", func(c *Config) { c.Role = RoleWorker; c.ControlPlane = nil }, ""},
		{"unknown runtime", func(c *Config) { c.Runtime = "crio" }, `runtime "crio" is not`},
		{"runc", func(c *Config) { c.Runtime = RuntimeRunc; c.Runc = validRunc() }, ""},
		{"runc without its section", func(c *Config) { c.Runtime = RuntimeRunc }, "runc runtime needs"},
		{"runc without a bridge", func(c *Config) { c.Runtime = RuntimeRunc; c.Runc = validRunc(); c.Runc.Bridge = "" }, "runc.bridge"},
		{"runc with a bad gateway", func(c *Config) { c.Runtime = RuntimeRunc; c.Runc = validRunc(); c.Runc.Gateway = "x" }, "runc.gateway"},
		{"runc with a bad prefix", func(c *Config) { c.Runtime = RuntimeRunc; c.Runc = validRunc(); c.Runc.PrefixLen = 33 }, "runc.prefixLen"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := validControlPlane()
			tc.mutate(c)
			err := c.Validate()
			if tc.want == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorContains(t, err, tc.want)
		})
	}
}

func TestSaveLoadRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "n", "config.json")
	c := validControlPlane()
	require.NoError(t, Save(path, c))
	got, err := Load(path)
	require.NoError(t, err)
	assert.Equal(t, c, got)

	c.Name = ""
	require.Error(t, Save(path, c), "an invalid config is never written")
	got, err = Load(path)
	require.NoError(t, err)
	assert.Equal(t, "minik", got.Name)
}

func flagValue(args []string, name string) (string, bool) {
	for _, a := range args {
		if v, ok := strings.CutPrefix(a, "--"+name+"="); ok {
			return v, true
		}
	}
	return "", false
}

func TestComponentArgs(t *testing.T) {
	c := validControlPlane()
	api := c.APIServerArgs("http://127.0.0.1:2379", "/e.yaml")
	for flag, want := range map[string]string{
		"etcd-servers":                            "http://127.0.0.1:2379",
		"bind-address":                            "127.0.0.1",
		"secure-port":                             "6443",
		"advertise-address":                       "127.0.0.2",
		"authorization-mode":                      "Node,RBAC",
		"service-cluster-ip-range":                DefaultServiceCIDR,
		"client-ca-file":                          "/pki/ca.crt",
		"service-account-issuer":                  "https://kubernetes.default.svc.cluster.local",
		"shutdown-watch-termination-grace-period": "2s",
		"requestheader-client-ca-file":            "/pki/front-proxy-ca.crt",
		"egress-selector-config-file":             "/e.yaml",
		"default-not-ready-toleration-seconds":    "15",
	} {
		got, ok := flagValue(api, flag)
		require.True(t, ok, "kube-apiserver --%s missing", flag)
		assert.Equal(t, want, got, flag)
	}

	cm := c.ControllerManagerArgs()
	for flag, want := range map[string]string{
		"kubeconfig":                            "/cm",
		"leader-elect":                          "false",
		"use-service-account-credentials":       "false",
		"cluster-cidr":                          DefaultPodCIDR,
		"allocate-node-cidrs":                   "true",
		"node-monitor-grace-period":             "20s",
		"root-ca-file":                          "/pki/ca.crt",
		"horizontal-pod-autoscaler-sync-period": "5s",
		"horizontal-pod-autoscaler-downscale-stabilization": "15s",
	} {
		got, ok := flagValue(cm, flag)
		require.True(t, ok, "kube-controller-manager --%s missing", flag)
		assert.Equal(t, want, got, flag)
	}
	c.ControlPlane.NodeMonitorGracePeriodSeconds = 10
	got, _ := flagValue(c.ControllerManagerArgs(), "node-monitor-grace-period")
	assert.Equal(t, "10s", got)
	c.ControlPlane.HPASyncPeriodSeconds = 15
	c.ControlPlane.HPADownscaleStabilizationSeconds = 300
	cm = c.ControllerManagerArgs()
	got, _ = flagValue(cm, "horizontal-pod-autoscaler-sync-period")
	assert.Equal(t, "15s", got)
	got, _ = flagValue(cm, "horizontal-pod-autoscaler-downscale-stabilization")
	assert.Equal(t, "300s", got)

	sched := c.SchedulerArgs()
	got, _ = flagValue(sched, "kubeconfig")
	assert.Equal(t, "/s", got)
}

func TestMetricsResolution(t *testing.T) {
	cp := validControlPlane().ControlPlane
	assert.Equal(t, DefaultMetricsResolutionSeconds, cp.MetricsResolution())
	cp.MetricsResolutionSeconds = 15
	assert.Equal(t, 15, cp.MetricsResolution())
	cp.MetricsResolutionSeconds = -1
	assert.Equal(t, DefaultMetricsResolutionSeconds, cp.MetricsResolution(), "a nonsense value falls back to the default")
}

func TestEgressSelectorConfig(t *testing.T) {
	got := string(EgressSelectorConfig("@minik-egress-1"))
	assert.Contains(t, got, "name: cluster")
	assert.Contains(t, got, "proxyProtocol: HTTPConnect")
	assert.Contains(t, got, `udsName: "@minik-egress-1"`)
}

func TestFirstServiceIP(t *testing.T) {
	ip, err := FirstServiceIP("10.96.0.0/16")
	require.NoError(t, err)
	assert.Equal(t, "10.96.0.1", ip.String())
	ip, err = FirstServiceIP("fd00:10:96::/112")
	require.NoError(t, err)
	assert.Equal(t, "fd00:10:96::1", ip.String())
	_, err = FirstServiceIP("nope")
	require.Error(t, err)
}
