package join

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"minik.dev/minik/nodeconfig"
)

func validOptions() Options {
	return Options{
		Server: "https://10.0.0.1:6443", Token: "abcdef.0123456789abcdef", CACertHash: "sha256:" + strings.Repeat("ab", 32),
		Name: "far", DataDir: "/tmp/x", KubeletPort: 10250, Runtime: nodeconfig.RuntimeSim,
		CPUMillis: 1000, MemoryBytes: 1 << 30, MaxPods: 110, Timeout: time.Minute,
	}
}

func TestValidate(t *testing.T) {
	cases := []struct {
		name   string
		change func(*Options)
		want   string
	}{
		{"valid", func(*Options) {}, ""},
		{"http server", func(o *Options) { o.Server = "http://10.0.0.1:6443" }, "must be https://ADDRESS:PORT"},
		{"no port", func(o *Options) { o.Server = "https://10.0.0.1" }, "must be https://ADDRESS:PORT"},
		{"a path", func(o *Options) { o.Server = "https://10.0.0.1:6443/api" }, "must be https://ADDRESS:PORT"},
		{"bad token", func(o *Options) { o.Token = "abcdef0123456789abcdef" }, "not a bootstrap token"},
		{"no hash", func(o *Options) { o.CACertHash = "" }, "never trusted without it"},
		{"short hash", func(o *Options) { o.CACertHash = "sha256:abc" }, "64 hex digits"},
		{"upper case name", func(o *Options) { o.Name = "Far" }, "not a DNS label"},
		{"dotted name", func(o *Options) { o.Name = "far.example" }, "not a DNS label"},
		{"bad node ip", func(o *Options) { o.NodeIP = "10.0.0" }, "--node-ip"},
		{"bad port", func(o *Options) { o.KubeletPort = 70000 }, "--kubelet-port"},
		{"docker runtime", func(o *Options) { o.Runtime = nodeconfig.RuntimeDocker }, ""},
		{"auto runtime", func(o *Options) { o.Runtime = RuntimeAuto }, ""},
		{"unknown runtime", func(o *Options) { o.Runtime = "containerd" }, `--runtime "containerd" is not auto, docker or sim`},
		{"no cpus", func(o *Options) { o.CPUMillis = 0 }, "must be positive"},
		{"no timeout", func(o *Options) { o.Timeout = 0 }, "--timeout"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			o := validOptions()
			c.change(&o)
			err := o.Validate()
			if c.want == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorContains(t, err, c.want)
		})
	}
}

func TestCheckClock(t *testing.T) {
	server := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	date := server.Format(http.TimeFormat)
	cases := []struct {
		name  string
		local time.Time
		ok    bool
	}{
		{"same", server, true},
		{"a minute ahead", server.Add(time.Minute), true},
		{"four minutes behind", server.Add(-4 * time.Minute), true},
		{"an hour behind", server.Add(-time.Hour), false},
		{"a day ahead", server.Add(24 * time.Hour), false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := checkClock(date, c.local)
			if c.ok {
				require.NoError(t, err)
				return
			}
			require.ErrorContains(t, err, "set the clock")
		})
	}
	require.NoError(t, checkClock("", server), "a server that sends no Date is not judged")
}

func TestJoinRefusesAnotherNodesDataDir(t *testing.T) {
	dir := t.TempDir()
	o := validOptions()
	o.DataDir = dir
	cfg := &nodeconfig.Config{
		Cluster: "c", Name: "other", Role: nodeconfig.RoleWorker, IP: "10.0.0.2", KubeletPort: 10250,
		DataDir: dir, PKIDir: dir, APIServer: o.Server, Kubeconfig: "k", CPUMillis: 1, MemoryBytes: 1, Joined: true,
	}
	require.NoError(t, nodeconfig.Save(ConfigPath(dir), cfg))
	_, err := Join(t.Context(), o)
	require.ErrorContains(t, err, "already holds node other")

	// The same node restarts from its folder without asking the server.
	o.Name = "other"
	path, err := Join(t.Context(), o)
	require.NoError(t, err)
	require.Equal(t, ConfigPath(dir), path)

	require.NoError(t, Leave(dir))
	require.NoFileExists(t, ConfigPath(dir))
}

func TestChooseRuntimeWithoutEngine(t *testing.T) {
	t.Setenv("DOCKER_HOST", "unix://"+t.TempDir()+"/no-engine.sock")
	cases := []struct {
		asked, want, err string
	}{
		{RuntimeAuto, nodeconfig.RuntimeSim, ""},
		{nodeconfig.RuntimeSim, nodeconfig.RuntimeSim, ""},
		{nodeconfig.RuntimeDocker, "", "or join with --runtime sim"},
	}
	for _, c := range cases {
		t.Run(c.asked, func(t *testing.T) {
			got, host, err := chooseRuntime(t.Context(), c.asked)
			if c.err != "" {
				require.ErrorContains(t, err, c.err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, c.want, got)
			require.Empty(t, host)
		})
	}
}
