package kubelet

import (
	"net/http/httptest"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"

	"minik.dev/minik/kubelet/runtime"
	"minik.dev/minik/nodeconfig"
)

// usageRuntime is a runtime that only reports usage.
type usageRuntime struct {
	runtime.Runtime
	usage []runtime.ContainerUsage
}

func (r usageRuntime) Usage(time.Time) []runtime.ContainerUsage { return r.usage }
func (r usageRuntime) NodeUsage() (uint64, uint64, bool)        { return 0, 0, false }

// networkRuntime also has pod networks, as the docker runtime has.
type networkRuntime struct {
	usageRuntime
	nets []runtime.PodNetworkUsage
}

func (r networkRuntime) PodNetworks() []runtime.PodNetworkUsage { return r.nets }

func scrapeCadvisor(t *testing.T, rt runtime.Runtime) map[string]*dto.MetricFamily {
	t.Helper()
	now := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	s := &server{cfg: &nodeconfig.Config{Name: "n1"}, runtime: rt, now: func() time.Time { return now }, started: now.Add(-time.Minute)}
	w := httptest.NewRecorder()
	s.cadvisorMetrics(w, httptest.NewRequest("GET", "/metrics/cadvisor", nil))
	require.Equal(t, 200, w.Code, w.Body.String())
	p := expfmt.NewTextParser(model.UTF8Validation)
	families, err := p.TextToMetricFamilies(w.Body)
	require.NoError(t, err)
	return families
}

func labelsOf(m *dto.Metric) map[string]string {
	l := map[string]string{}
	for _, p := range m.GetLabel() {
		l[p.GetName()] = p.GetValue()
	}
	return l
}

func TestCadvisorMetrics(t *testing.T) {
	web := runtime.ContainerUsage{
		Namespace: "default", Pod: "web", Container: "app", ID: "docker://abc", Image: "web:dev",
		CPUUsageCoreNanoSeconds: 2_500_000_000, MemoryWorkingSetBytes: 30 << 20, MemoryUsageBytes: 40 << 20, MemoryRSSBytes: 20 << 20,
		FSReadBytes: 4096, FSWriteBytes: 8192, StartTime: time.Date(2026, 12, 2, 11, 0, 0, 0, time.UTC),
	}
	t.Run("docker", func(t *testing.T) {
		rt := networkRuntime{usageRuntime{usage: []runtime.ContainerUsage{web}},
			[]runtime.PodNetworkUsage{{Namespace: "default", Pod: "web", SandboxID: "sandbox1", Interface: "eth0", RxBytes: 1000, TxBytes: 2000}}}
		f := scrapeCadvisor(t, rt)
		cpu := f["container_cpu_usage_seconds_total"]
		require.NotNil(t, cpu)
		require.Equal(t, dto.MetricType_COUNTER, cpu.GetType())
		var found bool
		for _, m := range cpu.GetMetric() {
			l := labelsOf(m)
			for _, name := range []string{"container", "id", "image", "name", "namespace", "pod"} {
				require.Contains(t, l, name, "every series carries cAdvisor's labels")
			}
			if l["pod"] == "web" {
				found = true
				require.Equal(t, map[string]string{"container": "app", "id": "/default/web/app", "image": "web:dev", "name": "docker://abc", "namespace": "default", "pod": "web"}, l)
				require.InDelta(t, 2.5, m.GetCounter().GetValue(), 1e-9)
			}
		}
		require.True(t, found, "the pod's series")
		for _, name := range []string{"container_memory_working_set_bytes", "container_memory_usage_bytes", "container_memory_rss",
			"container_start_time_seconds", "container_last_seen", "container_fs_reads_bytes_total", "container_fs_writes_bytes_total",
			"container_network_receive_bytes_total", "container_network_transmit_bytes_total"} {
			require.Contains(t, f, name)
		}
		rx := f["container_network_receive_bytes_total"].GetMetric()[0]
		require.Equal(t, "POD", labelsOf(rx)["container"])
		require.Equal(t, "eth0", labelsOf(rx)["interface"])
		require.Equal(t, 1000.0, rx.GetCounter().GetValue())
	})
	t.Run("sim", func(t *testing.T) {
		sim := web
		sim.MemoryRSSBytes, sim.FSReadBytes, sim.FSWriteBytes = 0, 0, 0
		f := scrapeCadvisor(t, usageRuntime{usage: []runtime.ContainerUsage{sim}})
		require.Contains(t, f, "container_cpu_usage_seconds_total")
		require.NotContains(t, f, "container_network_receive_bytes_total", "simulated pods have no network counters")
		require.NotContains(t, f, "container_fs_reads_bytes_total", "nor block I/O")
		var root bool
		for _, m := range f["container_memory_working_set_bytes"].GetMetric() {
			if labelsOf(m)["id"] == "/" {
				root = true
				require.Equal(t, float64(nodeBaseMemory+30<<20), m.GetGauge().GetValue(), "the node: its own base and its pods")
			}
		}
		require.True(t, root, "the node's own series, id /")
	})
}
