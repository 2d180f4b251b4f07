package kubelet

import (
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"minik.dev/minik/kubelet/runtime"
)

// cadvisorLabels are the labels cAdvisor puts on every container series,
// which dashboards copied from real clusters select and sum by.
var cadvisorLabels = []string{"container", "id", "image", "name", "namespace", "pod"}

func cadvisorDesc(name, help string, extra ...string) *prometheus.Desc {
	return prometheus.NewDesc(name, help, append(append([]string{}, cadvisorLabels...), extra...), nil)
}

var (
	cpuUsageDesc    = cadvisorDesc("container_cpu_usage_seconds_total", "Cumulative cpu time consumed in seconds.")
	workingSetDesc  = cadvisorDesc("container_memory_working_set_bytes", "Current working set in bytes.")
	memoryUsageDesc = cadvisorDesc("container_memory_usage_bytes", "Current memory usage in bytes, including all memory regardless of when it was accessed")
	rssDesc         = cadvisorDesc("container_memory_rss", "Size of RSS in bytes.")
	startTimeDesc   = cadvisorDesc("container_start_time_seconds", "Start time of the container since unix epoch in seconds.")
	lastSeenDesc    = cadvisorDesc("container_last_seen", "Last time a container was seen by the exporter")
	fsReadsDesc     = cadvisorDesc("container_fs_reads_bytes_total", "Cumulative count of bytes read", "device")
	fsWritesDesc    = cadvisorDesc("container_fs_writes_bytes_total", "Cumulative count of bytes written", "device")
	netDescs        = []struct {
		desc  *prometheus.Desc
		value func(runtime.PodNetworkUsage) uint64
	}{
		{cadvisorDesc("container_network_receive_bytes_total", "Cumulative count of bytes received", "interface"), func(n runtime.PodNetworkUsage) uint64 { return n.RxBytes }},
		{cadvisorDesc("container_network_receive_packets_total", "Cumulative count of packets received", "interface"), func(n runtime.PodNetworkUsage) uint64 { return n.RxPackets }},
		{cadvisorDesc("container_network_receive_errors_total", "Cumulative count of errors encountered while receiving", "interface"), func(n runtime.PodNetworkUsage) uint64 { return n.RxErrors }},
		{cadvisorDesc("container_network_receive_packets_dropped_total", "Cumulative count of packets dropped while receiving", "interface"), func(n runtime.PodNetworkUsage) uint64 { return n.RxDropped }},
		{cadvisorDesc("container_network_transmit_bytes_total", "Cumulative count of bytes transmitted", "interface"), func(n runtime.PodNetworkUsage) uint64 { return n.TxBytes }},
		{cadvisorDesc("container_network_transmit_packets_total", "Cumulative count of packets transmitted", "interface"), func(n runtime.PodNetworkUsage) uint64 { return n.TxPackets }},
		{cadvisorDesc("container_network_transmit_errors_total", "Cumulative count of errors encountered while transmitting", "interface"), func(n runtime.PodNetworkUsage) uint64 { return n.TxErrors }},
		{cadvisorDesc("container_network_transmit_packets_dropped_total", "Cumulative count of packets dropped while transmitting", "interface"), func(n runtime.PodNetworkUsage) uint64 { return n.TxDropped }},
	}
)

// cadvisorCollector reports the runtime's containers as cAdvisor does on a
// real kubelet's /metrics/cadvisor: real counters from the engine on
// docker, the simulated usage on sim, and the node itself as id "/".
type cadvisorCollector struct {
	s   *server
	now time.Time
}

func (c cadvisorCollector) Describe(ch chan<- *prometheus.Desc) {
	prometheus.DescribeByCollect(c, ch)
}

func (c cadvisorCollector) Collect(ch chan<- prometheus.Metric) {
	ts := c.now.Truncate(time.Millisecond)
	emit := func(desc *prometheus.Desc, t prometheus.ValueType, v float64, labels ...string) {
		ch <- prometheus.NewMetricWithTimestamp(ts, prometheus.MustNewConstMetric(desc, t, v, labels...))
	}
	samples := c.s.runtime.Usage(c.now)
	for _, u := range samples {
		l := []string{u.Container, "/" + u.Namespace + "/" + u.Pod + "/" + u.Container, u.Image, u.ID, u.Namespace, u.Pod}
		emit(cpuUsageDesc, prometheus.CounterValue, float64(u.CPUUsageCoreNanoSeconds)/1e9, l...)
		emit(workingSetDesc, prometheus.GaugeValue, float64(u.MemoryWorkingSetBytes), l...)
		if u.MemoryUsageBytes > 0 {
			emit(memoryUsageDesc, prometheus.GaugeValue, float64(u.MemoryUsageBytes), l...)
		}
		if u.MemoryRSSBytes > 0 {
			emit(rssDesc, prometheus.GaugeValue, float64(u.MemoryRSSBytes), l...)
		}
		if !u.StartTime.IsZero() {
			emit(startTimeDesc, prometheus.GaugeValue, float64(u.StartTime.UnixNano())/1e9, l...)
		}
		emit(lastSeenDesc, prometheus.GaugeValue, float64(ts.Unix()), l...)
		if u.FSReadBytes > 0 || u.FSWriteBytes > 0 {
			emit(fsReadsDesc, prometheus.CounterValue, float64(u.FSReadBytes), append(l, "")...)
			emit(fsWritesDesc, prometheus.CounterValue, float64(u.FSWriteBytes), append(l, "")...)
		}
	}
	// A pod's network belongs to its sandbox, which cAdvisor reports as
	// the pod's "POD" container.
	if ns, ok := c.s.runtime.(runtime.NetworkStats); ok {
		for _, n := range ns.PodNetworks() {
			l := []string{"POD", "/" + n.Namespace + "/" + n.Pod, "", n.SandboxID, n.Namespace, n.Pod, n.Interface}
			for _, d := range netDescs {
				emit(d.desc, prometheus.CounterValue, float64(d.value(n)), l...)
			}
		}
	}
	cpuSeconds, _, memory := c.s.nodeTotals(c.now, samples)
	root := []string{"", "/", "", "/", "", ""}
	emit(cpuUsageDesc, prometheus.CounterValue, cpuSeconds, root...)
	emit(workingSetDesc, prometheus.GaugeValue, float64(memory), root...)
}

// cadvisorMetrics serves /metrics/cadvisor.
func (s *server) cadvisorMetrics(w http.ResponseWriter, r *http.Request) {
	reg := prometheus.NewPedanticRegistry()
	if err := reg.Register(cadvisorCollector{s: s, now: s.now()}); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	promhttp.HandlerFor(reg, promhttp.HandlerOpts{}).ServeHTTP(w, r)
}
