package cluster

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"minik.dev/minik/drivers"
	"minik.dev/minik/drivers/fakedriver"
)

func profileWith(names ...string) *Profile {
	p := &Profile{Name: "dev", Driver: "fake", APIServerPort: 40000}
	for i, n := range names {
		role := "worker"
		if i == 0 {
			role = "control-plane"
		}
		p.Nodes = append(p.Nodes, ProfileNode{Name: n, Role: role, IP: "127.0.0.1"})
	}
	return p
}

func TestNextNodeName(t *testing.T) {
	cases := []struct {
		name  string
		nodes []string
		want  string
	}{
		{"control plane only", []string{"dev"}, "dev-m02"},
		{"after workers", []string{"dev", "dev-m02", "dev-m03"}, "dev-m04"},
		{"gap after a deletion", []string{"dev", "dev-m03"}, "dev-m02"},
		{"middle gap", []string{"dev", "dev-m02", "dev-m04"}, "dev-m03"},
		{"unordered", []string{"dev", "dev-m03", "dev-m02"}, "dev-m04"},
		{"two digits", []string{"dev", "dev-m02", "dev-m03", "dev-m04", "dev-m05", "dev-m06", "dev-m07", "dev-m08", "dev-m09"}, "dev-m10"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, nextNodeName(profileWith(tc.nodes...)))
		})
	}
}

func TestFindNode(t *testing.T) {
	p := profileWith("dev", "dev-m02", "dev-m03")
	n, err := findNode(p, "dev-m02")
	require.NoError(t, err)
	assert.Equal(t, "worker", n.Role)

	_, err = findNode(p, "dev-m09")
	require.ErrorIs(t, err, ErrNodeNotFound)
	assert.EqualError(t, err, `node "dev-m09" not found in profile dev; its nodes are: dev, dev-m02, dev-m03`)
}

func TestRejectControlPlane(t *testing.T) {
	p := profileWith("dev", "dev-m02")
	assert.EqualError(t, rejectControlPlane(p, p.Nodes[0], "stop"), "node dev is the control plane; use `minik stop -p dev` to stop the cluster")
	assert.EqualError(t, rejectControlPlane(p, p.Nodes[0], "delete"), "node dev is the control plane; use `minik delete -p dev` to delete the cluster")
	assert.NoError(t, rejectControlPlane(p, p.Nodes[1], "stop"))
}

func TestAddRole(t *testing.T) {
	cases := []struct {
		role, want, wantErr string
	}{
		{"", "worker", ""},
		{"worker", "worker", ""},
		{"control-plane", "", "only one control plane"},
		{"boss", "", `invalid role "boss": use worker`},
	}
	for _, tc := range cases {
		t.Run(tc.role, func(t *testing.T) {
			got, err := addRole(tc.role)
			if tc.wantErr != "" {
				require.ErrorContains(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
}

func kubeNode(name string, ready corev1.ConditionStatus, heartbeat time.Time) *corev1.Node {
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if ready != "" {
		n.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: ready, LastHeartbeatTime: metav1.NewTime(heartbeat)}}
	}
	return n
}

func TestAddKubeView(t *testing.T) {
	now := time.Now()
	cordoned := kubeNode("dev-m03", corev1.ConditionFalse, now)
	cordoned.Spec.Unschedulable = true
	ready := kubeNode("dev", corev1.ConditionTrue, now)
	ready.Spec.PodCIDR = "10.244.0.0/24"
	nodes := []corev1.Node{*ready, *kubeNode("dev-m02", corev1.ConditionUnknown, now), *cordoned, *kubeNode("dev-m04", "", now)}
	infos := []NodeInfo{{Name: "dev"}, {Name: "dev-m02"}, {Name: "dev-m03"}, {Name: "dev-m04"}, {Name: "dev-m05"}}

	addKubeView(infos, nodes)

	yes, no := true, false
	assert.Equal(t, []NodeInfo{
		{Name: "dev", Ready: NodeReady, PodCIDR: "10.244.0.0/24", Schedulable: &yes},
		{Name: "dev-m02", Ready: NodeReadyUnknown, Schedulable: &yes},
		{Name: "dev-m03", Ready: NodeNotReady, Schedulable: &no},
		{Name: "dev-m04", Ready: NodeReadyUnknown, Schedulable: &yes},
		{Name: "dev-m05"}, // not registered
	}, infos)
}

func TestNotReadySince(t *testing.T) {
	started := time.Now()
	stale := started.Add(-time.Minute)
	fresh := metav1.NewMicroTime(started.Add(time.Second))
	lease := func(name string, renew metav1.MicroTime) *coordinationv1.Lease {
		return &coordinationv1.Lease{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: corev1.NamespaceNodeLease},
			Spec:       coordinationv1.LeaseSpec{RenewTime: &renew},
		}
	}
	client := fake.NewClientset(
		kubeNode("fresh", corev1.ConditionTrue, started.Add(time.Second)),
		kubeNode("stale", corev1.ConditionTrue, stale),
		kubeNode("renewed", corev1.ConditionTrue, stale), lease("renewed", fresh),
		kubeNode("old-lease", corev1.ConditionTrue, stale), lease("old-lease", metav1.NewMicroTime(stale)),
		kubeNode("down", corev1.ConditionFalse, started.Add(time.Second)),
	)
	nodes := []ProfileNode{{Name: "fresh"}, {Name: "stale"}, {Name: "renewed"}, {Name: "old-lease"}, {Name: "down"}, {Name: "absent"}}

	since := map[string]time.Time{}
	for _, n := range nodes {
		since[n.Name] = started
	}
	pending := notReady(context.Background(), client, readiness{nodes: nodes, since: since})
	assert.Equal(t, []string{
		"node absent has not registered",
		"node down is not Ready: Ready=False (: )",
		"node old-lease has not reported since it started",
		"node stale has not reported since it started",
	}, pending)

	// Without since, a Ready condition is enough.
	pending = notReady(context.Background(), client, readiness{nodes: nodes[:4]})
	assert.Empty(t, pending)

	// Only the nodes that were started wait for a report: a cluster start
	// that found "stale" running does not hold it to its start time.
	pending = notReady(context.Background(), client, readiness{nodes: nodes[:4], since: map[string]time.Time{"old-lease": started}})
	assert.Equal(t, []string{"node old-lease has not reported since it started"}, pending)
}

func TestDrainNodeWithoutPods(t *testing.T) {
	ctx := context.Background()
	for _, evict := range []bool{true, false} {
		client := fake.NewClientset(kubeNode("dev-m02", corev1.ConditionTrue, time.Now()))
		require.NoError(t, drainNode(ctx, client, "dev-m02", evict))
		n, err := client.CoreV1().Nodes().Get(ctx, "dev-m02", metav1.GetOptions{})
		require.NoError(t, err)
		assert.True(t, n.Spec.Unschedulable, "cordoned (evict=%v)", evict)
	}
	// A node that never registered has nothing to drain.
	require.NoError(t, drainNode(ctx, fake.NewClientset(), "dev-m02", true))
}

func TestDeleteNodeObject(t *testing.T) {
	ctx := context.Background()
	client := fake.NewClientset(
		kubeNode("dev-m02", corev1.ConditionTrue, time.Now()),
		&coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: "dev-m02", Namespace: corev1.NamespaceNodeLease}},
	)
	require.NoError(t, deleteNodeObject(ctx, client, "dev-m02"))
	_, err := client.CoreV1().Nodes().Get(ctx, "dev-m02", metav1.GetOptions{})
	assert.True(t, apierrors.IsNotFound(err), err)
	_, err = client.CoordinationV1().Leases(corev1.NamespaceNodeLease).Get(ctx, "dev-m02", metav1.GetOptions{})
	assert.True(t, apierrors.IsNotFound(err), err)
	// Again: nothing left is fine.
	require.NoError(t, deleteNodeObject(ctx, client, "dev-m02"))
}

// stoppedCluster saves profile dev (nodes dev, dev-m02, dev-m03), all stopped.
func stoppedCluster(t *testing.T) (*Manager, *fakedriver.Driver) {
	t.Helper()
	d := &fakedriver.Driver{}
	m := New(Options{Home: t.TempDir(), Drivers: drivers.NewRegistry(d)})
	require.NoError(t, m.store.Save(profileWith("dev", "dev-m02", "dev-m03")))
	return m, d
}

func TestNodeCommandsRejectBadInput(t *testing.T) {
	ctx := context.Background()
	m, d := stoppedCluster(t)
	cases := []struct {
		name    string
		run     func() error
		wantErr string
	}{
		{"stop control plane", func() error { return m.StopNode(ctx, "dev", "dev") }, "node dev is the control plane; use `minik stop -p dev` to stop the cluster"},
		{"delete control plane", func() error { return m.DeleteNode(ctx, "dev", "dev") }, "node dev is the control plane; use `minik delete -p dev` to delete the cluster"},
		{"stop unknown", func() error { return m.StopNode(ctx, "dev", "x") }, `node "x" not found in profile dev; its nodes are: dev, dev-m02, dev-m03`},
		{"start unknown", func() error { return m.StartNode(ctx, "dev", "x", 0) }, `node "x" not found in profile dev`},
		{"delete unknown", func() error { return m.DeleteNode(ctx, "dev", "x") }, `node "x" not found in profile dev`},
		{"start on stopped cluster", func() error { return m.StartNode(ctx, "dev", "dev-m02", 0) }, "cluster dev is not running; start it first with `minik start -p dev`"},
		{"add on stopped cluster", func() error { _, err := m.AddNode(ctx, "dev", AddNodeOptions{}); return err }, "cluster dev is not running"},
		{"add control plane", func() error {
			_, err := m.AddNode(ctx, "dev", AddNodeOptions{Role: "control-plane"})
			return err
		}, "only one control plane"},
		{"negative wait", func() error { return m.StartNode(ctx, "dev", "dev-m02", -time.Second) }, "invalid wait"},
		{"missing profile", func() error { _, err := m.Nodes(ctx, "ghost"); return err }, "profile not found"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			require.ErrorContains(t, tc.run(), tc.wantErr)
		})
	}
	assert.Empty(t, d.Calls(), "bad input reaches no driver")
	p, err := m.store.Load("dev")
	require.NoError(t, err)
	assert.Len(t, p.Nodes, 3)
}

func TestDeleteNodeOfStoppedCluster(t *testing.T) {
	ctx := context.Background()
	m, d := stoppedCluster(t)
	require.NoError(t, m.DeleteNode(ctx, "dev", "dev-m02"))
	assert.Equal(t, []string{"delete dev-m02"}, d.Calls())
	p, err := m.store.Load("dev")
	require.NoError(t, err)
	assert.Equal(t, []string{"dev", "dev-m03"}, []string{p.Nodes[0].Name, p.Nodes[1].Name})
	assert.Equal(t, "dev-m02", nextNodeName(p), "the name is free again")

	infos, err := m.Nodes(ctx, "dev")
	require.NoError(t, err)
	assert.Equal(t, []NodeInfo{
		{Name: "dev", Role: "control-plane", State: drivers.StateStopped, IP: "127.0.0.1"},
		{Name: "dev-m03", Role: "worker", State: drivers.StateStopped, IP: "127.0.0.1"},
	}, infos)
}

func TestStopNode(t *testing.T) {
	ctx := context.Background()
	m, d := stoppedCluster(t)
	d.SetState("dev-m03", drivers.StateRunning)
	require.NoError(t, m.StopNode(ctx, "dev", "dev-m03"))
	assert.Equal(t, []string{"stop dev-m03"}, d.Calls())
	assert.Equal(t, drivers.StateStopped, d.State("dev-m03"))
}
