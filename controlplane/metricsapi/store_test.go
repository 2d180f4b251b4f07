package metricsapi

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.Local)

// container is one container's lines in a /metrics/resource scrape.
type container struct {
	ns, pod, name string
	cpuSeconds    float64
	memory        uint64
	started       time.Time
}

// exposition renders a scrape at `at` the way kubelet/api.go does.
func exposition(at time.Time, nodeCPU float64, nodeMem uint64, cs ...container) string {
	ms := at.UnixMilli()
	var b strings.Builder
	b.WriteString("# HELP container_cpu_usage_seconds_total [STABLE] Cumulative cpu time consumed by the container in core-seconds\n# TYPE container_cpu_usage_seconds_total counter\n")
	for _, c := range cs {
		fmt.Fprintf(&b, "container_cpu_usage_seconds_total{container=%q,namespace=%q,pod=%q} %g %d\n", c.name, c.ns, c.pod, c.cpuSeconds, ms)
	}
	b.WriteString("# TYPE container_memory_working_set_bytes gauge\n")
	for _, c := range cs {
		fmt.Fprintf(&b, "container_memory_working_set_bytes{container=%q,namespace=%q,pod=%q} %d %d\n", c.name, c.ns, c.pod, c.memory, ms)
	}
	b.WriteString("# TYPE container_start_time_seconds gauge\n")
	for _, c := range cs {
		fmt.Fprintf(&b, "container_start_time_seconds{container=%q,namespace=%q,pod=%q} %g %d\n", c.name, c.ns, c.pod, float64(c.started.UnixNano())/1e9, ms)
	}
	fmt.Fprintf(&b, "# TYPE node_cpu_usage_seconds_total counter\nnode_cpu_usage_seconds_total %g %d\n", nodeCPU, ms)
	fmt.Fprintf(&b, "# TYPE node_memory_working_set_bytes gauge\nnode_memory_working_set_bytes %d %d\n", nodeMem, ms)
	b.WriteString("# TYPE scrape_error gauge\nscrape_error 0\n")
	return b.String()
}

func mustParse(t *testing.T, text string, at time.Time) batch {
	t.Helper()
	b, err := parseResourceMetrics([]byte(text), at)
	require.NoError(t, err)
	return b
}

func TestParseResourceMetrics(t *testing.T) {
	started := t0.Add(-90 * time.Second).Add(123 * time.Millisecond)
	b := mustParse(t, exposition(t0, 12.5, 200<<20,
		container{"default", "web-1", "main", 45, 16 << 20, started},
		container{"kube-system", "dns", "dns", 0.25, 8 << 20, started},
	), time.Time{})
	require.True(t, b.hasNodeCPU)
	assert.Equal(t, cpuPoint{at: t0, seconds: 12.5}, b.node)
	assert.Equal(t, uint64(200<<20), b.nodeMemory)
	require.Len(t, b.containers, 2)
	c := b.containers[ContainerKey{"default", "web-1", "main"}]
	assert.Equal(t, 45.0, c.cpu.seconds)
	assert.True(t, c.cpu.at.Equal(t0), "the sample's own timestamp wins over the scrape time")
	assert.Equal(t, uint64(16<<20), c.memory)
	assert.WithinDuration(t, started, c.started, time.Microsecond)

	// Without timestamps the scrape time is used; junk series are ignored.
	b = mustParse(t, "node_cpu_usage_seconds_total 3\ncontainer_cpu_usage_seconds_total{pod=\"x\"} 1\nnode_memory_working_set_bytes NaN\n", t0)
	assert.Equal(t, cpuPoint{at: t0, seconds: 3}, b.node)
	assert.False(t, b.hasNodeMem)
	assert.Empty(t, b.containers, "a sample without namespace, pod and container names no container")

	_, err := parseResourceMetrics([]byte("node_cpu_usage_seconds_total{ 3\n"), t0)
	require.ErrorContains(t, err, "parse resource metrics")
}

func TestRate(t *testing.T) {
	cases := []struct {
		name       string
		prev, cur  cpuPoint
		want       uint64
		wantWindow time.Duration
		ok         bool
	}{
		{"half a core", cpuPoint{t0, 10}, cpuPoint{t0.Add(10 * time.Second), 15}, 500_000_000, 10 * time.Second, true},
		{"idle", cpuPoint{t0, 10}, cpuPoint{t0.Add(time.Second), 10}, 0, time.Second, true},
		{"counter reset", cpuPoint{t0, 10}, cpuPoint{t0.Add(time.Second), 1}, 0, 0, false},
		{"same instant", cpuPoint{t0, 10}, cpuPoint{t0, 11}, 0, 0, false},
		{"out of order", cpuPoint{t0, 10}, cpuPoint{t0.Add(-time.Second), 11}, 0, 0, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, window, ok := rate(tc.prev, tc.cur)
			assert.Equal(t, tc.ok, ok)
			assert.Equal(t, tc.want, got)
			assert.Equal(t, tc.wantWindow, window)
		})
	}
}

func TestStoreRates(t *testing.T) {
	s := NewStore()
	started := t0.Add(-20 * time.Second)
	web := func(cpu float64, mem uint64, start time.Time) container {
		return container{"default", "web", "main", cpu, mem, start}
	}

	// First scrape: pods are rated from their start; the node, whose counter
	// has no start, needs a second scrape.
	s.record("n1", mustParse(t, exposition(t0, 100, 1<<30, web(5, 32<<20, started)), t0))
	_, ok := s.Node("n1")
	assert.False(t, ok)
	assert.True(t, s.warming())
	p, ok := s.Pod(PodKey{"default", "web"})
	require.True(t, ok)
	assert.Equal(t, "n1", p.Node)
	require.Len(t, p.Containers, 1)
	assert.Equal(t, uint64(250_000_000), p.Containers[0].CPUNanoCores, "5 core-seconds in 20 s")
	assert.Equal(t, 20*time.Second, p.Window)
	assert.Equal(t, uint64(32<<20), p.Containers[0].MemoryBytes)

	// Second scrape: everything is a rate between the two.
	t1 := t0.Add(10 * time.Second)
	s.record("n1", mustParse(t, exposition(t1, 104, 1<<30+5, web(13, 40<<20, started)), t1))
	n, ok := s.Node("n1")
	require.True(t, ok)
	assert.Equal(t, Usage{Timestamp: t1, Window: 10 * time.Second, CPUNanoCores: 400_000_000, MemoryBytes: 1<<30 + 5}, n)
	assert.False(t, s.warming())
	p, _ = s.Pod(PodKey{"default", "web"})
	assert.Equal(t, uint64(800_000_000), p.Containers[0].CPUNanoCores)
	assert.Equal(t, 10*time.Second, p.Window)
	assert.Equal(t, t1, p.Timestamp)
	assert.Equal(t, uint64(40<<20), p.Containers[0].MemoryBytes)

	// The container restarted: its counter began again at its new start.
	t2 := t1.Add(10 * time.Second)
	restarted := t2.Add(-4 * time.Second)
	s.record("n1", mustParse(t, exposition(t2, 108, 1<<30, web(2, 40<<20, restarted)), t2))
	p, _ = s.Pod(PodKey{"default", "web"})
	assert.Equal(t, uint64(500_000_000), p.Containers[0].CPUNanoCores, "2 core-seconds since the restart 4 s ago")
	assert.Equal(t, 4*time.Second, p.Window)

	// The kubelet stopped answering: the node and its pods are absent.
	s.fail("n1")
	_, ok = s.Node("n1")
	assert.False(t, ok)
	assert.Empty(t, s.Pods())
	assert.False(t, s.warming())
}

func TestStoreCounterResetAndRetain(t *testing.T) {
	s := NewStore()
	s.record("n1", mustParse(t, exposition(t0, 100, 1<<30), t0))
	s.record("n2", mustParse(t, exposition(t0, 50, 1<<30), t0))
	t1 := t0.Add(5 * time.Second)
	// n1's agent restarted: its counter went back, so there is no rate yet.
	s.record("n1", mustParse(t, exposition(t1, 1, 1<<30), t1))
	s.record("n2", mustParse(t, exposition(t1, 51, 1<<30), t1))
	_, ok := s.Node("n1")
	assert.False(t, ok)
	n2, ok := s.Node("n2")
	require.True(t, ok)
	assert.Equal(t, uint64(200_000_000), n2.CPUNanoCores)
	t2 := t1.Add(5 * time.Second)
	s.record("n1", mustParse(t, exposition(t2, 2, 1<<30), t2))
	n1, ok := s.Node("n1")
	require.True(t, ok)
	assert.Equal(t, uint64(200_000_000), n1.CPUNanoCores)

	s.retain(map[string]bool{"n2": true})
	assert.Equal(t, []string{"n2"}, keys(s.Nodes()))
}

func TestPodSeenOnTwoNodesCountsWhereSeenLast(t *testing.T) {
	s := NewStore()
	started := t0.Add(-10 * time.Second)
	s.record("old", mustParse(t, exposition(t0, 1, 1, container{"default", "db-0", "db", 1, 1 << 20, started}), t0))
	t1 := t0.Add(time.Second)
	s.record("new", mustParse(t, exposition(t1, 1, 1, container{"default", "db-0", "db", 0.5, 2 << 20, t1.Add(-time.Second)}), t1))
	p, ok := s.Pod(PodKey{"default", "db-0"})
	require.True(t, ok)
	assert.Equal(t, "new", p.Node)
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
