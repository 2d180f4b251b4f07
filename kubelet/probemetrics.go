package kubelet

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"minik.dev/minik/kubelet/runtime"
)

var probeTotalDesc = prometheus.NewDesc("prober_probe_total",
	"[BETA] Cumulative number of a liveness, readiness or startup probe for a container by result.",
	[]string{"container", "namespace", "pod", "pod_uid", "probe_type", "result"}, nil)

// probeCollector is /metrics/probes: the runtime's probe results under the
// kubelet's names. A runtime that runs no probes (sim: a probe's success
// is a simulated delay) has no series.
type probeCollector struct{ rt runtime.Runtime }

func (c probeCollector) Describe(ch chan<- *prometheus.Desc) { ch <- probeTotalDesc }

func (c probeCollector) Collect(ch chan<- prometheus.Metric) {
	p, ok := c.rt.(runtime.Prober)
	if !ok {
		return
	}
	for k, n := range p.ProbeCounts() {
		ch <- prometheus.MustNewConstMetric(probeTotalDesc, prometheus.CounterValue, float64(n),
			k.Container, k.Namespace, k.Pod, k.PodUID, k.ProbeType, k.Result)
	}
}

func (s *server) probeMetrics(w http.ResponseWriter, r *http.Request) {
	reg := prometheus.NewPedanticRegistry()
	if err := reg.Register(probeCollector{rt: s.runtime}); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	promhttp.HandlerFor(reg, promhttp.HandlerOpts{}).ServeHTTP(w, r)
}
