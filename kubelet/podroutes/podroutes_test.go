package podroutes

import (
	"context"
	"errors"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/tools/record"

	"minik.dev/minik/nodeconfig"
)

// fakeTable is a routing table in memory; fail makes Replace fail.
type fakeTable struct {
	mu     sync.Mutex
	routes map[string]string
	fail   error
}

func newFakeTable() *fakeTable { return &fakeTable{routes: map[string]string{}} }

func (f *fakeTable) Replace(r Route) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail != nil {
		return f.fail
	}
	f.routes[r.Dst.String()] = r.Gateway.String()
	return nil
}

func (f *fakeTable) Delete(r Route) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.routes[r.Dst.String()] == r.Gateway.String() {
		delete(f.routes, r.Dst.String())
	}
	return nil
}

func (f *fakeTable) list() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for dst, gw := range f.routes {
		out = append(out, dst+" via "+gw)
	}
	sort.Strings(out)
	return out
}

func joinedNode(name, podCIDR, ip string) *corev1.Node {
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{nodeconfig.JoinedLabel: "true"}}}
	n.Spec.PodCIDR = podCIDR
	if ip != "" {
		n.Status.Addresses = []corev1.NodeAddress{{Type: corev1.NodeHostName, Address: name}, {Type: corev1.NodeInternalIP, Address: ip}}
	}
	return n
}

func TestSync(t *testing.T) {
	cases := []struct {
		name  string
		steps [][]*corev1.Node
		want  []string
	}{
		{"one node", [][]*corev1.Node{{joinedNode("a", "10.244.1.0/24", "192.168.5.2")}}, []string{"10.244.1.0/24 via 192.168.5.2"}},
		{"no podCIDR yet", [][]*corev1.Node{{joinedNode("a", "", "192.168.5.2")}}, nil},
		{"no InternalIP", [][]*corev1.Node{{joinedNode("a", "10.244.1.0/24", "")}}, nil},
		{"IPv6 podCIDR", [][]*corev1.Node{{joinedNode("a", "fd00::/64", "192.168.5.2")}}, nil},
		{"node gone", [][]*corev1.Node{
			{joinedNode("a", "10.244.1.0/24", "192.168.5.2"), joinedNode("b", "10.244.2.0/24", "192.168.5.3")},
			{joinedNode("b", "10.244.2.0/24", "192.168.5.3")},
		}, []string{"10.244.2.0/24 via 192.168.5.3"}},
		{"node moved", [][]*corev1.Node{
			{joinedNode("a", "10.244.1.0/24", "192.168.5.2")},
			{joinedNode("a", "10.244.1.0/24", "192.168.5.9")},
		}, []string{"10.244.1.0/24 via 192.168.5.9"}},
		{"podCIDR changed", [][]*corev1.Node{
			{joinedNode("a", "10.244.1.0/24", "192.168.5.2")},
			{joinedNode("a", "10.244.7.0/24", "192.168.5.2")},
		}, []string{"10.244.7.0/24 via 192.168.5.2"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			table := newFakeTable()
			k := &keeper{o: Options{Table: table}, made: map[string]Route{}, failed: map[string]string{}}
			for _, nodes := range c.steps {
				k.sync(nodes, false)
			}
			require.Equal(t, c.want, table.list())
			k.removeAll()
			require.Empty(t, table.list(), "every route made is removed at the end")
		})
	}
}

func TestSyncReplacesUnchangedRoutesOnlyWhenForced(t *testing.T) {
	table := newFakeTable()
	k := &keeper{o: Options{Table: table}, made: map[string]Route{}, failed: map[string]string{}}
	nodes := []*corev1.Node{joinedNode("a", "10.244.1.0/24", "192.168.5.2")}
	k.sync(nodes, false)
	delete(table.routes, "10.244.1.0/24") // someone removed it
	k.sync(nodes, false)
	require.Empty(t, table.list(), "an event with nothing changed makes no route")
	k.sync(nodes, true)
	require.Equal(t, []string{"10.244.1.0/24 via 192.168.5.2"}, table.list(), "a resync makes it again")
}

func TestSyncFailureWarnsOnce(t *testing.T) {
	table := newFakeTable()
	table.fail = errors.New("operation not permitted")
	recorder := record.NewFakeRecorder(10)
	k := &keeper{o: Options{Table: table, Recorder: recorder}, made: map[string]Route{}, failed: map[string]string{}}
	nodes := []*corev1.Node{joinedNode("a", "10.244.1.0/24", "192.168.5.2")}
	k.sync(nodes, false)
	k.sync(nodes, false)
	require.Len(t, recorder.Events, 1, "one Warning for the same failure")
	ev := <-recorder.Events
	require.Contains(t, ev, "Warning PodRouteFailed")
	require.Contains(t, ev, "ip route replace 10.244.1.0/24 via 192.168.5.2")

	table.fail = nil
	k.sync(nodes, false)
	require.Equal(t, []string{"10.244.1.0/24 via 192.168.5.2"}, table.list(), "made once it can be")
}

func TestRun(t *testing.T) {
	client := fake.NewClientset(joinedNode("a", "10.244.1.0/24", "192.168.5.2"),
		&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "local"}, Spec: corev1.NodeSpec{PodCIDR: "10.244.0.0/24"}})
	table := newFakeTable()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- Run(ctx, Options{Client: client, Table: table}) }()
	require.Eventually(t, func() bool { return len(table.list()) == 1 }, 10*time.Second, 10*time.Millisecond)
	require.Equal(t, []string{"10.244.1.0/24 via 192.168.5.2"}, table.list(), "only joined nodes are routed")

	_, err := client.CoreV1().Nodes().Create(t.Context(), joinedNode("b", "10.244.2.0/24", "192.168.5.3"), metav1.CreateOptions{})
	require.NoError(t, err)
	require.Eventually(t, func() bool { return len(table.list()) == 2 }, 10*time.Second, 10*time.Millisecond)
	require.NoError(t, client.CoreV1().Nodes().Delete(t.Context(), "a", metav1.DeleteOptions{}))
	require.Eventually(t, func() bool {
		l := table.list()
		return len(l) == 1 && l[0] == "10.244.2.0/24 via 192.168.5.3"
	}, 10*time.Second, 10*time.Millisecond)

	cancel()
	require.NoError(t, <-done)
	require.Empty(t, table.list(), "routes go with the control plane")
}

func TestCommand(t *testing.T) {
	table := newFakeTable()
	record := t.TempDir() + "/routes"
	ctx := t.Context()
	require.NoError(t, Command(ctx, table, record, []string{"replace", "10.244.1.0/24", "192.168.5.2"}))
	require.NoError(t, Command(ctx, table, record, []string{"replace", "10.244.2.0/24", "192.168.5.3"}))
	require.NoError(t, Command(ctx, table, record, []string{"replace", "10.244.2.0/24", "192.168.5.4"}))
	require.NoError(t, Command(ctx, table, record, []string{"delete", "10.244.1.0/24", "192.168.5.2"}))
	require.Equal(t, []string{"10.244.2.0/24 via 192.168.5.4"}, table.list())
	table.routes["10.99.0.0/16"] = "192.168.5.9" // not this helper's

	for _, bad := range [][]string{{}, {"replace", "10.244.1.0/24"}, {"add", "10.244.1.0/24", "192.168.5.2"}, {"replace", "nope", "192.168.5.2"}, {"delete", "10.244.1.0/24", "nope"}} {
		require.Error(t, Command(ctx, table, record, bad), "%q", bad)
	}

	// hold removes what was recorded, and only that, when it is stopped.
	holdCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- Command(holdCtx, table, record, []string{"hold"}) }()
	stop()
	require.NoError(t, <-done)
	require.Equal(t, []string{"10.99.0.0/16 via 192.168.5.9"}, table.list())
}
