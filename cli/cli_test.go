package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"minik.dev/minik/cluster"
	"minik.dev/minik/drivers"
	"minik.dev/minik/drivers/fakedriver"
	"minik.dev/minik/nodeconfig"
)

// harness runs minik commands in-process against the fake driver, with
// MINIK_HOME, HOME and KUBECONFIG of the test's own.
type harness struct {
	t      *testing.T
	home   string
	kc     string
	driver *fakedriver.Driver
}

// result is what one command printed and returned.
type result struct {
	code           int
	stdout, stderr string
}

func newHarness(t *testing.T) *harness {
	dir := t.TempDir()
	return &harness{
		t:      t,
		home:   filepath.Join(dir, "minik-home"), // not created: commands that fail early must not make it
		kc:     filepath.Join(dir, "kubeconfig"),
		driver: &fakedriver.Driver{},
	}
}

func (h *harness) run(args ...string) result {
	h.t.Helper()
	vars := map[string]string{"MINIK_HOME": h.home, "HOME": filepath.Dir(h.home), "KUBECONFIG": h.kc}
	var stdout, stderr bytes.Buffer
	env := Env{
		Stdin:   strings.NewReader(""),
		Stdout:  &stdout,
		Stderr:  &stderr,
		Getenv:  func(k string) string { return vars[k] },
		Drivers: drivers.NewRegistry(h.driver),
	}
	code := Run(context.Background(), env, args)
	return result{code: code, stdout: stdout.String(), stderr: stderr.String()}
}

// homeIsUntouched fails unless MINIK_HOME was never created.
func (h *harness) homeIsUntouched() {
	h.t.Helper()
	_, err := os.Stat(h.home)
	assert.ErrorIs(h.t, err, os.ErrNotExist, "MINIK_HOME was created")
}

// seed saves profile dev of the fake driver: a control plane and a worker.
func (h *harness) seed() *cluster.Profile {
	h.t.Helper()
	p := &cluster.Profile{
		Name: "dev", Driver: fakedriver.Name, APIServerPort: 40000, Kubeconfig: h.kc,
		ServiceCIDR: nodeconfig.DefaultServiceCIDR, PodCIDR: nodeconfig.DefaultPodCIDR,
		Nodes: []cluster.ProfileNode{
			{Name: "dev", Role: nodeconfig.RoleControlPlane, IP: "127.0.0.2"},
			{Name: "dev-m02", Role: nodeconfig.RoleWorker, IP: "127.0.0.3"},
		},
	}
	require.NoError(h.t, cluster.Store{Home: h.home}.Save(p))
	return p
}

func TestInvalidFlags(t *testing.T) {
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"zero nodes", []string{"start", "--nodes", "0"}, "invalid --nodes 0: a cluster needs at least 1 node"},
		{"negative nodes", []string{"start", "--nodes", "-3"}, "invalid --nodes -3: a cluster needs at least 1 node"},
		{"too many nodes", []string{"start", "--nodes", "501"}, "invalid --nodes 501: use 1 to 500"},
		{"negative wait", []string{"start", "--wait", "-1s"}, "invalid --wait -1s: use a duration such as 5m, or 0 not to wait"},
		{"negative max pods", []string{"start", "--max-pods", "-1"}, "invalid --max-pods -1: use 1 to 1000"},
		{"too many max pods", []string{"start", "--max-pods", "1001"}, "invalid --max-pods 1001: use 1 to 1000"},
		{"too few cpus", []string{"start", "--cpus", "50m"}, `invalid --cpus "50m": use cores such as 2 or millicores such as 1500m (at least 100m)`},
		{"zero cpus", []string{"start", "--cpus", "0"}, `invalid --cpus "0": use cores such as 2 or millicores such as 1500m (at least 100m)`},
		{"cpus not a quantity", []string{"start", "--cpus", "lots"}, `invalid --cpus "lots": use cores such as 2 or millicores such as 1500m (at least 100m)`},
		{"too little memory", []string{"start", "--memory", "10"}, `invalid --memory "10Mi": use a size such as 4Gi or 4096 (MiB), at least 64Mi`},
		{"memory not a quantity", []string{"start", "--memory", "big"}, `invalid --memory "big": use a size such as 4Gi or 4096 (MiB), at least 64Mi`},
		{"short grace period", []string{"start", "--node-monitor-grace-period", "500ms"}, "invalid --node-monitor-grace-period 500ms: use at least 1s"},
		{"negative eviction timeout", []string{"start", "--pod-eviction-timeout", "-1s"}, "invalid --pod-eviction-timeout -1s: use at least 1s"},
		{"port too high", []string{"start", "--apiserver-port", "70000"}, "invalid --apiserver-port 70000: use 1 to 65535, or 0 for a free port"},
		{"negative port", []string{"start", "--apiserver-port", "-1"}, "invalid --apiserver-port -1: use 1 to 65535, or 0 for a free port"},
		{"bad profile name", []string{"start", "-p", "Bad_Name"}, `start Bad_Name: invalid profile name "Bad_Name": use 1-50 lower-case letters, digits and '-', starting and ending with a letter or digit`},
		{"unknown driver", []string{"start", "--driver", "nope"}, `start minik: unknown driver "nope": known drivers are fake`},
		{"bad output", []string{"start", "-o", "yaml"}, `invalid argument "yaml" for "-o, --output" flag: unknown output format "yaml": use text or json`},
		{"stray argument", []string{"start", "extra"}, `minik start takes no arguments, got ["extra"]; see ` + "`minik start --help`"},
		{"json output too", []string{"start", "-o", "json", "--nodes", "0"}, "invalid --nodes 0: a cluster needs at least 1 node"},

		{"add a control plane", []string{"node", "add", "--role", "control-plane"}, `invalid --role "control-plane": minik supports only one control plane; add a worker`},
		{"add an unknown role", []string{"node", "add", "--role", "boss"}, `invalid --role "boss": use worker`},
		{"add with negative wait", []string{"node", "add", "--wait", "-1s"}, "invalid --wait -1s: use a duration such as 5m, or 0 not to wait"},
		{"add with too many max pods", []string{"node", "add", "--max-pods", "2000"}, "invalid --max-pods 2000: use 1 to 1000"},
		{"add with too few cpus", []string{"node", "add", "--cpus", "1m"}, `invalid --cpus "1m": use cores such as 2 or millicores such as 1500m (at least 100m)`},
		{"add with too little memory", []string{"node", "add", "--memory", "1Mi"}, `invalid --memory "1Mi": use a size such as 4Gi or 4096 (MiB), at least 64Mi`},
		{"start node with negative wait", []string{"node", "start", "dev-m02", "--wait", "-5s"}, "invalid --wait -5s: use a duration such as 5m, or 0 not to wait"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			r := h.run(tc.args...)
			assert.Equal(t, ExitBadInput, r.code, "bad input has an exit code of its own")
			assert.Equal(t, "Error: "+tc.want+"\n", r.stderr)
			assert.Empty(t, r.stdout)
			assert.Empty(t, h.driver.Calls(), "no driver call")
			h.homeIsUntouched()
		})
	}
}

func TestEmptyHome(t *testing.T) {
	cases := []struct {
		name           string
		args           []string
		code           int
		stdout, stderr string
		// locks: the command takes the profile's lock, a file in MINIK_HOME.
		locks bool
	}{
		{"status", []string{"status"}, 1, "", "Error: status minik: profile not found: minik\n", false},
		{"status json", []string{"status", "-o", "json", "-p", "dev"}, 1, "", "Error: status dev: profile not found: dev\n", false},
		{"profile list", []string{"profile", "list"}, 0, "no profiles; create one with `minik start`\n", "", false},
		{"profile list json", []string{"profile", "list", "-o", "json"}, 0, "[]\n", "", false},
		{"kubectl", []string{"kubectl", "-p", "dev", "--", "get", "pods"}, 1, "", "Error: kubectl: profile not found: dev; create it with `minik start -p dev`\n", false},
		{"node list", []string{"node", "list", "-p", "dev"}, 1, "", "Error: list nodes of dev: profile not found: dev\n", true},
		{"stop", []string{"stop", "-p", "dev"}, 1, "", "Error: stop dev: profile not found: dev\n", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			r := h.run(tc.args...)
			assert.Equal(t, tc.code, r.code)
			assert.Equal(t, tc.stdout, r.stdout)
			assert.Equal(t, tc.stderr, r.stderr)
			assert.Empty(t, h.driver.Calls())
			if !tc.locks {
				h.homeIsUntouched()
			}
			assert.NoDirExists(t, filepath.Join(h.home, "profiles"))
		})
	}
}

func TestDeleteMissingProfile(t *testing.T) {
	h := newHarness(t)
	r := h.run("delete", "-p", "ghost")
	assert.Equal(t, 1, r.code)
	assert.Equal(t, "Error: delete ghost: profile not found: ghost\n", r.stderr)
	assert.Empty(t, r.stdout)
	assert.Empty(t, h.driver.Calls())
	assert.NoDirExists(t, filepath.Join(h.home, "profiles", "ghost"))

	r = h.run("delete", "--all")
	assert.Equal(t, 0, r.code, r.stderr)
	assert.Equal(t, "no profiles to delete\n", r.stdout)

	r = h.run("delete", "--all", "-p", "ghost")
	assert.Equal(t, 1, r.code)
	assert.Equal(t, "Error: use either --profile or --all, not both\n", r.stderr)
}

func TestExistingProfile(t *testing.T) {
	h := newHarness(t)
	h.seed()
	h.driver.SetState("dev", drivers.StateRunning)

	r := h.run("status", "-p", "dev", "-o", "json")
	require.Equal(t, 0, r.code, r.stderr)
	var st cluster.Status
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &st))
	assert.Equal(t, cluster.Status{
		Name: "dev", Driver: "fake", State: drivers.StateRunning, APIServer: "https://127.0.0.1:40000", Kubeconfig: h.kc, Context: "dev",
		Nodes: []cluster.NodeStatus{
			{Name: "dev", Role: "control-plane", State: drivers.StateRunning, IP: "127.0.0.2"},
			{Name: "dev-m02", Role: "worker", State: drivers.StateStopped, IP: "127.0.0.3"},
		},
	}, st)

	r = h.run("profile", "list")
	require.Equal(t, 0, r.code, r.stderr)
	assert.Equal(t, "NAME  DRIVER  STATE    NODES  APISERVER\ndev   fake    Running  2      https://127.0.0.1:40000\n", r.stdout)

	// Options only a new profile takes are refused, before any driver call.
	r = h.run("start", "-p", "dev", "--nodes", "3")
	assert.Equal(t, 1, r.code)
	assert.Contains(t, r.stderr, "profile dev has 2 node(s); --nodes applies only when a profile is created")
	r = h.run("start", "-p", "dev", "--publish-localhost")
	assert.Equal(t, 1, r.code)
	assert.Contains(t, r.stderr, "profile dev exists without --publish-localhost, which applies only when a profile is created")
	r = h.run("start", "-p", "dev", "--driver", "nope")
	assert.Contains(t, r.stderr, `unknown driver "nope"`)
	assert.Empty(t, h.driver.Calls())

	r = h.run("node", "stop", "dev-m02", "-p", "dev")
	assert.Equal(t, 0, r.code, r.stderr)
	r = h.run("node", "stop", "dev", "-p", "dev")
	assert.Equal(t, 1, r.code)
	assert.Equal(t, "Error: stop node dev: node dev is the control plane; use `minik stop -p dev` to stop the cluster\n", r.stderr)

	r = h.run("stop", "-p", "dev")
	assert.Equal(t, 0, r.code, r.stderr)
	assert.Equal(t, "minik \"dev\" stopped\n", r.stdout)
	assert.Equal(t, drivers.StateStopped, h.driver.State("dev"))

	r = h.run("delete", "-p", "dev")
	assert.Equal(t, 0, r.code, r.stderr)
	assert.Equal(t, "minik \"dev\" deleted\n", r.stdout)
	assert.Equal(t, []string{"stop dev-m02", "stop dev-m02", "stop dev", "delete dev-m02", "delete dev", "delete cluster dev"}, h.driver.Calls())
	assert.NoDirExists(t, filepath.Join(h.home, "profiles", "dev"))
}

func TestStartRollsBackWhatTheDriverFailedToStart(t *testing.T) {
	h := newHarness(t)
	h.driver.StartErr = errors.New("no room")
	r := h.run("start", "-p", "dev", "--nodes", "2", "--wait", "0")
	assert.Equal(t, 1, r.code)
	assert.Contains(t, r.stderr, "Error: start dev: start node ")
	assert.Contains(t, r.stderr, "start node dev: no room")
	assert.Contains(t, r.stderr, "✗ start nodes")
	assert.ElementsMatch(t, []string{"start dev", "start dev-m02", "delete dev-m02", "delete dev", "delete cluster dev"}, h.driver.Calls())
	assert.NoDirExists(t, filepath.Join(h.home, "profiles", "dev"), "a failed create leaves no profile behind")
	assert.NoFileExists(t, h.kc)
}

func TestStartRetainsWhatTheDriverFailedToStart(t *testing.T) {
	h := newHarness(t)
	h.driver.StartErr = errors.New("no room")
	r := h.run("start", "-p", "dev", "--retain", "--wait", "0", "-o", "json")
	assert.Equal(t, 1, r.code)
	assert.Contains(t, r.stderr, "no room; kept everything as it is (--retain): look at it, then remove it with `minik delete -p dev`")
	assert.Contains(t, r.stdout, `{"step":"start nodes","status":"failed"`)
	assert.Equal(t, []string{"start dev"}, h.driver.Calls())

	r = h.run("status", "-p", "dev")
	assert.Equal(t, 0, r.code, r.stderr)
	assert.Contains(t, r.stdout, "state:      Stopped")
}

func TestRegistryOffersEveryDriver(t *testing.T) {
	assert.Equal(t, []string{"docker", "hyperv", "kvm", "process"}, Registry().Names())
}

func TestRunNeedsADriverRegistry(t *testing.T) {
	var stderr bytes.Buffer
	env := Env{Stdout: &bytes.Buffer{}, Stderr: &stderr, Getenv: func(string) string { return "" }}
	assert.Equal(t, 1, Run(context.Background(), env, []string{"profile", "list"}))
	assert.Contains(t, stderr.String(), "no driver registry")
}

func TestImageLoadBadInput(t *testing.T) {
	h := newHarness(t)
	r := h.run("image", "load")
	assert.Equal(t, 2, r.code, r.stderr)

	r = h.run("image", "load", filepath.Join(t.TempDir(), "absent.tar"))
	assert.Equal(t, 2, r.code, r.stderr)
	assert.Contains(t, r.stderr, "absent.tar")
	h.homeIsUntouched()

	r = h.run("image", "load", "-p", "nope", "web:1")
	assert.NotEqual(t, 0, r.code)
	assert.Contains(t, r.stderr, "nope")

	// The fake driver's pods are simulated: nothing to load them into.
	h.seed()
	r = h.run("image", "load", "-p", "dev", "web:1")
	assert.Equal(t, 2, r.code, r.stderr)
	assert.Contains(t, r.stderr, "simulated")
}
