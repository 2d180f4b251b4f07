package integration

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// nodeInfo is one element of `minik node list -o json`.
type nodeInfo struct {
	Name        string `json:"name"`
	Role        string `json:"role"`
	State       string `json:"state"`
	IP          string `json:"ip"`
	Ready       string `json:"ready"`
	PodCIDR     string `json:"podCIDR"`
	Schedulable *bool  `json:"schedulable"`
}

func (h *harness) nodeList(profile string) []nodeInfo {
	h.t.Helper()
	out := h.ok(time.Minute, "node", "list", "-p", profile, "-o", "json")
	var nodes []nodeInfo
	require.NoError(h.t, json.Unmarshal([]byte(out), &nodes), out)
	return nodes
}

// lastJSONLine decodes the result that follows the step events of -o json.
func lastJSONLine(t *testing.T, out string, v any) {
	t.Helper()
	lines := strings.Split(strings.TrimSpace(out), "\n")
	require.NoError(t, json.Unmarshal([]byte(lines[len(lines)-1]), v), out)
}

// kubeReady reports whether the API has the Node with Ready=True.
func kubeReady(ctx context.Context, t *testing.T, client kubernetes.Interface, name string) bool {
	t.Helper()
	n, err := client.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
	require.NoError(t, err)
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func TestNode(t *testing.T) {
	h := newHarness(t)
	const profile = "nodes"
	worker := profile + "-m02"
	_, st := h.startJSON("-p", profile)
	require.Len(t, st.Nodes, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	client := clientFor(t, h.kubeconfig, profile)

	// add: a Ready worker with its own address and pod CIDR.
	var added nodeInfo
	lastJSONLine(t, h.ok(3*time.Minute, "node", "add", "-p", profile, "-o", "json"), &added)
	require.Equal(t, worker, added.Name)
	require.Equal(t, "worker", added.Role)
	require.Equal(t, "Running", added.State)
	require.Equal(t, "Ready", added.Ready)
	var nodes []nodeInfo
	require.Eventually(t, func() bool {
		nodes = h.nodeList(profile)
		return len(nodes) == 2 && nodes[0].PodCIDR != "" && nodes[1].PodCIDR != ""
	}, 30*time.Second, 200*time.Millisecond, "controller-manager allocates pod CIDRs")
	require.Equal(t, []string{profile, worker}, []string{nodes[0].Name, nodes[1].Name})
	for _, n := range nodes {
		require.Equal(t, "Running", n.State, n.Name)
		require.Equal(t, "Ready", n.Ready, n.Name)
		require.NotNil(t, n.Schedulable)
		require.True(t, *n.Schedulable, n.Name)
	}
	require.NotEqual(t, nodes[0].IP, nodes[1].IP)
	require.NotEqual(t, nodes[0].PodCIDR, nodes[1].PodCIDR)
	kubeNodes, err := client.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	require.NoError(t, err)
	require.Len(t, kubeNodes.Items, 2)
	require.True(t, kubeReady(ctx, t, client, worker))
	require.Len(t, h.nodePIDs(), 2)
	text := h.ok(time.Minute, "node", "list", "-p", profile)
	require.Contains(t, text, "POD-CIDR")
	require.Contains(t, text, worker)

	// stop: the worker's agent (here its node host, the last worker) is gone, the cluster still runs.
	h.ok(time.Minute, "node", "stop", worker, "-p", profile)
	require.Len(t, h.nodePIDs(), 1)
	st = h.status(profile)
	require.Equal(t, "Running", st.State)
	require.Equal(t, "Stopped", st.Nodes[1].State)
	require.Equal(t, "Stopped", h.nodeList(profile)[1].State)

	// start: Ready again.
	h.ok(3*time.Minute, "node", "start", worker, "-p", profile)
	require.Len(t, h.nodePIDs(), 2)
	nodes = h.nodeList(profile)
	require.Equal(t, "Running", nodes[1].State)
	require.Equal(t, "Ready", nodes[1].Ready)
	require.True(t, kubeReady(ctx, t, client, worker))

	t.Run("failed add is undone", func(t *testing.T) {
		// With no worker running, the new node needs a fresh node host,
		// and that host is broken.
		h.ok(time.Minute, "node", "stop", worker, "-p", profile)
		defer h.ok(3*time.Minute, "node", "start", worker, "-p", profile)
		broken := filepath.Join(t.TempDir(), "minik-node")
		require.NoError(t, os.WriteFile(broken, []byte("#!/bin/sh\necho broken node agent >&2\nexit 3\n"), 0o755))
		saved := h.env
		defer func() { h.env = saved }()
		h.env = append(append([]string{}, saved...), "MINIK_NODE_BINARY="+broken)
		stderr := h.fails("node", "add", "-p", profile)
		require.Contains(t, stderr, "nodes-m03")
		require.Contains(t, stderr, "broken node agent")
		require.Len(t, h.nodeList(profile), 2, "the failed node is removed from the profile")
		_, err := os.Stat(filepath.Join(h.home, "profiles", profile, "nodes", profile+"-m03"))
		require.ErrorIs(t, err, os.ErrNotExist)
	})

	t.Run("bad input", func(t *testing.T) {
		cases := []struct {
			name string
			args []string
			want string
		}{
			{"stop unknown", []string{"node", "stop", "ghost", "-p", profile}, `node "ghost" not found in profile nodes; its nodes are: nodes, nodes-m02`},
			{"start unknown", []string{"node", "start", "ghost", "-p", profile}, `node "ghost" not found in profile nodes`},
			{"delete unknown", []string{"node", "delete", "ghost", "-p", profile}, `node "ghost" not found in profile nodes`},
			{"stop control plane", []string{"node", "stop", profile, "-p", profile}, "node nodes is the control plane; use `minik stop -p nodes` to stop the cluster"},
			{"delete control plane", []string{"node", "delete", profile, "-p", profile}, "node nodes is the control plane; use `minik delete -p nodes` to delete the cluster"},
			{"add control plane", []string{"node", "add", "--role", "control-plane", "-p", profile}, "only one control plane"},
			{"missing name", []string{"node", "stop", "-p", profile}, "minik node stop takes exactly one node name, got 0"},
			{"two names", []string{"node", "delete", "a", "b", "-p", profile}, "minik node delete takes exactly one node name, got 2"},
			{"stray argument", []string{"node", "list", "x", "-p", profile}, "takes no arguments"},
			{"missing profile", []string{"node", "list", "-p", "ghost"}, "profile not found"},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				require.Contains(t, h.fails(tc.args...), tc.want)
			})
		}
		require.Len(t, h.nodeList(profile), 2, "bad input changes nothing")
		require.Len(t, h.nodePIDs(), 2)
	})

	// delete: cordoned, drained and gone everywhere.
	h.ok(3*time.Minute, "node", "delete", worker, "-p", profile)
	nodes = h.nodeList(profile)
	require.Len(t, nodes, 1)
	require.Equal(t, profile, nodes[0].Name)
	_, err = client.CoreV1().Nodes().Get(ctx, worker, metav1.GetOptions{})
	require.True(t, apierrors.IsNotFound(err), "Node %s: %v", worker, err)
	require.Len(t, h.nodePIDs(), 1)
	_, err = os.Stat(filepath.Join(h.home, "profiles", profile, "nodes", worker))
	require.ErrorIs(t, err, os.ErrNotExist)

	// The name is free again; a node of a stopped cluster is deleted without the API.
	lastJSONLine(t, h.ok(3*time.Minute, "node", "add", "-p", profile, "-o", "json"), &added)
	require.Equal(t, worker, added.Name)
	h.ok(2*time.Minute, "stop", "-p", profile)
	require.Contains(t, h.fails("node", "add", "-p", profile), "cluster nodes is not running; start it first with `minik start -p nodes`")
	require.Contains(t, h.fails("node", "start", worker, "-p", profile), "cluster nodes is not running")
	r := h.run(time.Minute, "node", "delete", worker, "-p", profile)
	require.Equal(t, 0, r.code, r.stderr)
	require.Contains(t, r.stderr, "removed without draining")
	require.Len(t, h.nodeList(profile), 1)
	require.Empty(t, h.nodePIDs())

	// Its Node object outlived it; the next node of that name replaces it.
	h.startJSON("-p", profile)
	lastJSONLine(t, h.ok(3*time.Minute, "node", "add", "-p", profile, "-o", "json"), &added)
	require.Equal(t, worker, added.Name)
	require.Equal(t, "Ready", added.Ready)
	require.Len(t, h.nodePIDs(), 2)
}
