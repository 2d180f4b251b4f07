package integration

import (
	"context"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"minik.dev/minik/filelock"
)

// seedKubeconfig writes a kubeconfig with someone else's context, which
// every minik command must leave untouched.
func seedKubeconfig(t *testing.T, path string) {
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["other"] = &clientcmdapi.Cluster{Server: "https://127.0.0.1:1"}
	cfg.AuthInfos["other"] = &clientcmdapi.AuthInfo{Token: "secret"}
	cfg.Contexts["other"] = &clientcmdapi.Context{Cluster: "other", AuthInfo: "other"}
	cfg.CurrentContext = "other"
	require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o700))
	require.NoError(t, clientcmd.WriteToFile(*cfg, path))
}

func clientFor(t *testing.T, kubeconfig, context string) kubernetes.Interface {
	rc, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(
		&clientcmd.ClientConfigLoadingRules{ExplicitPath: kubeconfig},
		&clientcmd.ConfigOverrides{CurrentContext: context},
	).ClientConfig()
	require.NoError(t, err)
	c, err := kubernetes.NewForConfig(rc)
	require.NoError(t, err)
	return c
}

func TestLifecycle(t *testing.T) {
	h := newHarness(t)
	seedKubeconfig(t, h.kubeconfig)
	const profile = "life"

	events, st := h.startJSON("-p", profile, "--driver", "process")
	require.Equal(t, "Running", st.State)
	require.Equal(t, "process", st.Driver)
	require.Equal(t, profile, st.Context)
	require.Len(t, st.Nodes, 1)
	require.Equal(t, "control-plane", st.Nodes[0].Role)
	require.True(t, strings.HasPrefix(st.APIServer, "https://127.0.0.1:"), st.APIServer)
	steps := map[string]bool{}
	for _, ev := range events {
		require.Contains(t, []any{"started", "done"}, ev["status"], ev)
		require.Contains(t, ev, "elapsedMs")
		if ev["status"] == "done" {
			steps[ev["step"].(string)] = true
		}
	}
	require.True(t, steps["wait for nodes and default service account"], events)

	// The merged kubeconfig: our context is current, the other one survives.
	kc, err := clientcmd.LoadFromFile(h.kubeconfig)
	require.NoError(t, err)
	require.Equal(t, profile, kc.CurrentContext)
	require.Contains(t, kc.Contexts, "other")
	require.Equal(t, "secret", kc.AuthInfos["other"].Token)
	info, err := os.Stat(h.kubeconfig)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), info.Mode().Perm())

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	client := clientFor(t, h.kubeconfig, profile)
	node, err := client.CoreV1().Nodes().Get(ctx, profile, metav1.GetOptions{})
	require.NoError(t, err)
	require.Contains(t, node.Labels, "node-role.kubernetes.io/control-plane")
	require.False(t, node.Status.Capacity.Cpu().IsZero())
	_, err = client.CoreV1().ServiceAccounts("default").Get(ctx, "default", metav1.GetOptions{})
	require.NoError(t, err)
	_, err = client.CoreV1().ConfigMaps("default").Create(ctx, &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "survivor"},
		Data:       map[string]string{"k": "v"},
	}, metav1.CreateOptions{})
	require.NoError(t, err)

	// The built-in kubectl is the upstream one and reports the server version.
	out := h.ok(time.Minute, "kubectl", "-p", profile, "--", "version", "-o", "json")
	var v struct {
		ServerVersion struct{ GitVersion string } `json:"serverVersion"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &v), out)
	require.Equal(t, "v1.37.2", v.ServerVersion.GitVersion)
	out = h.ok(time.Minute, "kubectl", "-p", profile, "--", "get", "configmap", "survivor", "-o", "jsonpath={.data.k}")
	require.Equal(t, "v", out)

	// Starting a running cluster does nothing and succeeds.
	_, st = h.startJSON("-p", profile)
	require.Equal(t, "Running", st.State)
	require.Len(t, h.nodePIDs(), 1)

	h.ok(2*time.Minute, "stop", "-p", profile)
	st = h.status(profile)
	require.Equal(t, "Stopped", st.State)
	require.Equal(t, "Stopped", st.Nodes[0].State)
	require.Empty(t, h.nodePIDs())

	_, st = h.startJSON("-p", profile)
	require.Equal(t, "Running", st.State)
	client = clientFor(t, h.kubeconfig, profile)
	cm, err := client.CoreV1().ConfigMaps("default").Get(ctx, "survivor", metav1.GetOptions{})
	require.NoError(t, err)
	require.Equal(t, "v", cm.Data["k"])

	list := h.ok(time.Minute, "profile", "list", "-o", "json")
	var profiles []status
	require.NoError(t, json.Unmarshal([]byte(list), &profiles))
	require.Len(t, profiles, 1)
	require.Equal(t, profile, profiles[0].Name)

	h.ok(2*time.Minute, "delete", "-p", profile)
	require.Empty(t, h.nodePIDs())
	kc, err = clientcmd.LoadFromFile(h.kubeconfig)
	require.NoError(t, err)
	assert.NotContains(t, kc.Contexts, profile)
	assert.NotContains(t, kc.Clusters, profile)
	assert.NotContains(t, kc.AuthInfos, profile)
	assert.Contains(t, kc.Contexts, "other")
	assert.Equal(t, "secret", kc.AuthInfos["other"].Token)
	_, err = os.Stat(filepath.Join(h.home, "profiles", profile))
	require.ErrorIs(t, err, os.ErrNotExist)
	h.fails("status", "-p", profile)
}

func TestMultiNode(t *testing.T) {
	h := newHarness(t)
	const profile = "multi"
	_, st := h.startJSON("-p", profile, "--nodes", "3", "--cpus", "3", "--memory", "2Gi", "--max-pods", "300")
	require.Len(t, st.Nodes, 3)
	ips := map[string]bool{}
	for _, n := range st.Nodes {
		require.Equal(t, "Running", n.State)
		ips[n.IP] = true
	}
	require.Len(t, ips, 3, "every node owns its address")

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	client := clientFor(t, h.kubeconfig, profile)
	nodes, err := client.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	require.NoError(t, err)
	require.Len(t, nodes.Items, 3)
	cidrs := map[string]bool{}
	require.Eventually(t, func() bool {
		nodes, err = client.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
		if err != nil {
			return false
		}
		for _, n := range nodes.Items {
			if n.Spec.PodCIDR == "" {
				return false
			}
			cidrs[n.Spec.PodCIDR] = true
		}
		return true
	}, 30*time.Second, 100*time.Millisecond, "controller-manager allocates pod CIDRs")
	require.Len(t, cidrs, 3)
	for cidr := range cidrs {
		require.True(t, strings.HasSuffix(cidr, "/23"), "300 pods need a /23: %s", cidr)
	}
	for _, n := range nodes.Items {
		require.Equal(t, "3", n.Status.Capacity.Cpu().String(), n.Name)
		require.Equal(t, "2Gi", n.Status.Capacity.Memory().String(), n.Name)
		require.Equal(t, "300", n.Status.Capacity.Pods().String(), n.Name)
	}

	// A node of its own size.
	h.ok(3*time.Minute, "node", "add", "-p", profile, "--cpus", "500m", "--memory", "1Gi")
	small, err := client.CoreV1().Nodes().Get(ctx, profile+"-m04", metav1.GetOptions{})
	require.NoError(t, err)
	require.Equal(t, "500m", small.Status.Capacity.Cpu().String())
	require.Equal(t, "1Gi", small.Status.Capacity.Memory().String())
	require.Contains(t, h.fails("node", "add", "-p", profile, "--max-pods", "600"), "hold at most 509")

	// A bigger cluster cannot be made from an existing profile.
	stderr := h.fails("start", "-p", profile, "--nodes", "2")
	require.Contains(t, stderr, "--nodes applies only when a profile is created")

	h.ok(2*time.Minute, "delete", "-p", profile)
	require.Empty(t, h.nodePIDs())
}

func TestBadInput(t *testing.T) {
	h := newHarness(t)
	seedKubeconfig(t, h.kubeconfig)
	before, err := os.ReadFile(h.kubeconfig)
	require.NoError(t, err)

	cases := []struct {
		name string
		args []string
		want string
	}{
		{"unknown driver", []string{"start", "--driver", "nope"}, "known drivers are docker, hyperv, kvm, process"},
		{"invalid profile name", []string{"start", "-p", "Bad_Name"}, "invalid profile name"},
		{"zero nodes", []string{"start", "--nodes", "0"}, "at least 1 node"},
		{"negative wait", []string{"start", "--wait", "-1s"}, "invalid --wait"},
		{"bad output", []string{"status", "-o", "yaml"}, "unknown output format"},
		{"stray argument", []string{"start", "extra"}, "takes no arguments"},
		{"stop missing", []string{"stop", "-p", "ghost"}, "profile not found"},
		{"delete missing", []string{"delete", "-p", "ghost"}, "profile not found"},
		{"status missing", []string{"status", "-p", "ghost"}, "profile not found"},
		{"kubectl missing", []string{"kubectl", "-p", "ghost", "--", "get", "pods"}, "profile not found"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			stderr := h.fails(tc.args...)
			require.Contains(t, stderr, tc.want)
		})
	}
	t.Run("bad input has exit code 2", func(t *testing.T) {
		for _, args := range [][]string{{"start", "--nodes", "0"}, {"start", "--driver", "vbox"}, {"start", "--bogus"}} {
			require.Equal(t, 2, h.run(time.Minute, args...).code, args)
		}
	})

	t.Run("node binary missing", func(t *testing.T) {
		saved := h.env
		defer func() { h.env = saved }()
		h.env = append(append([]string{}, saved...), "MINIK_NODE_BINARY="+filepath.Join(t.TempDir(), "absent"))
		r := h.run(time.Minute, "start", "-p", "nobin")
		require.Equal(t, 3, r.code, "a driver that cannot run nodes has exit code 3 (docs/cli.md)")
		stderr := r.stderr
		require.Contains(t, stderr, "MINIK_NODE_BINARY")
		require.Contains(t, stderr, "make build")
	})

	t.Run("profile busy", func(t *testing.T) {
		l, err := filelock.TryLock(filepath.Join(h.home, "locks", "busy.lock"))
		require.NoError(t, err)
		defer l.Unlock()
		stderr := h.fails("start", "-p", "busy")
		require.Contains(t, stderr, "another minik command is using profile busy")
	})

	t.Run("apiserver port in use", func(t *testing.T) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		defer l.Close()
		port := strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
		stderr := h.fails("start", "-p", "porty", "--apiserver-port", port, "--wait", "0")
		require.Contains(t, stderr, "apiserver port "+port+" is in use")
		_, err = os.Stat(filepath.Join(h.home, "profiles", "porty"))
		require.ErrorIs(t, err, os.ErrNotExist, "a failed create leaves no profile behind")
	})

	t.Run("corrupt profile", func(t *testing.T) {
		dir := filepath.Join(h.home, "profiles", "broken")
		require.NoError(t, os.MkdirAll(dir, 0o700))
		require.NoError(t, os.WriteFile(filepath.Join(dir, "profile.json"), []byte("{not json"), 0o600))
		stderr := h.fails("start", "-p", "broken")
		require.Contains(t, stderr, "profile is corrupt")
		require.Contains(t, stderr, "minik delete -p broken")
		data, err := os.ReadFile(filepath.Join(dir, "profile.json"))
		require.NoError(t, err)
		require.Equal(t, "{not json", string(data), "a failed start loses nothing")
		h.ok(time.Minute, "delete", "-p", "broken")
		_, err = os.Stat(dir)
		require.ErrorIs(t, err, os.ErrNotExist)
	})

	after, err := os.ReadFile(h.kubeconfig)
	require.NoError(t, err)
	require.Equal(t, string(before), string(after), "failed commands leave the kubeconfig alone")
	require.Empty(t, h.nodePIDs())
}
