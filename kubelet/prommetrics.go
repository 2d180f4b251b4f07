package kubelet

import (
	"bufio"
	"errors"
	"net"
	"net/http"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	corev1 "k8s.io/api/core/v1"
)

// agentMetrics is what /metrics shows: the agent's process and Go runtime,
// and a few of the kubelet's own series under their upstream names. Each
// agent has its own registry: a node host runs many agents in one process.
type agentMetrics struct {
	registry *prometheus.Registry
	requests *prometheus.CounterVec
}

var (
	runningPodsDesc = prometheus.NewDesc("kubelet_running_pods",
		"[ALPHA] Number of pods that have a running pod sandbox", nil, nil)
	runningContainersDesc = prometheus.NewDesc("kubelet_running_containers",
		"[ALPHA] Number of containers currently running", []string{"container_state"}, nil)
	nodeNameDesc = prometheus.NewDesc("kubelet_node_name",
		"[ALPHA] The node's name. The count is always 1.", []string{"node"}, nil)
)

func newAgentMetrics(node string, pods func() []podView) *agentMetrics {
	m := &agentMetrics{
		registry: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kubelet_http_requests_total",
			Help: "[ALPHA] Number of the http requests received since the server started",
		}, []string{"method", "path", "code"}),
	}
	m.registry.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.requests,
		podCollector{node: node, pods: pods},
	)
	return m
}

// handler serves the registry in the Prometheus text format.
func (m *agentMetrics) handler() http.Handler {
	return promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{})
}

// observe counts a request to the kubelet API under its route, not its
// full path, which would make a series per pod.
func (m *agentMetrics) observe(route string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sw := &statusWriter{ResponseWriter: w, code: http.StatusOK}
		next.ServeHTTP(sw, r)
		m.requests.WithLabelValues(r.Method, route, strconv.Itoa(sw.code)).Inc()
	})
}

type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int) {
	w.code = code
	w.ResponseWriter.WriteHeader(code)
}

// Flush keeps followed logs streaming through the wrapper.
func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Hijack lets exec upgrade the connection (SPDY) through the counter.
func (w *statusWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	h, ok := w.ResponseWriter.(http.Hijacker)
	if !ok {
		return nil, nil, errors.New("the response cannot be hijacked")
	}
	w.code = http.StatusSwitchingProtocols
	return h.Hijack()
}

// Unwrap lets http.ResponseController reach the real writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// podCollector counts pods and containers at scrape time from the agent's
// own view, so the numbers never lag behind.
type podCollector struct {
	node string
	pods func() []podView
}

func (c podCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- runningPodsDesc
	ch <- runningContainersDesc
	ch <- nodeNameDesc
}

func (c podCollector) Collect(ch chan<- prometheus.Metric) {
	var pods int
	states := map[string]int{"running": 0, "exited": 0, "created": 0}
	for _, v := range c.pods() {
		running := false
		for _, cs := range append(append([]corev1.ContainerStatus{}, v.status.InitContainerStatuses...), v.status.ContainerStatuses...) {
			switch {
			case cs.State.Running != nil:
				states["running"]++
				running = true
			case cs.State.Terminated != nil:
				states["exited"]++
			case cs.ContainerID != "":
				states["created"]++
			}
		}
		if running || sandboxReady(v.status) {
			pods++
		}
	}
	ch <- prometheus.MustNewConstMetric(runningPodsDesc, prometheus.GaugeValue, float64(pods))
	for state, n := range states {
		ch <- prometheus.MustNewConstMetric(runningContainersDesc, prometheus.GaugeValue, float64(n), state)
	}
	ch <- prometheus.MustNewConstMetric(nodeNameDesc, prometheus.GaugeValue, 1, c.node)
}

func sandboxReady(st corev1.PodStatus) bool {
	for _, c := range st.Conditions {
		if c.Type == corev1.PodReadyToStartContainers {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}
