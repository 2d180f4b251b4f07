package kubelet

import (
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"minik.dev/minik/kubelet/runtime"
)

// probingRuntime is a runtime that runs probes, as the docker runtime does.
type probingRuntime struct {
	runtime.Runtime
	counts map[runtime.ProbeKey]uint64
}

func (r probingRuntime) ProbeCounts() map[runtime.ProbeKey]uint64 { return r.counts }

func TestProbeMetrics(t *testing.T) {
	scrape := func(rt runtime.Runtime) string {
		w := httptest.NewRecorder()
		(&server{runtime: rt}).probeMetrics(w, httptest.NewRequest("GET", "/metrics/probes", nil))
		require.Equal(t, 200, w.Code, w.Body.String())
		return w.Body.String()
	}
	key := runtime.ProbeKey{Namespace: "default", Pod: "web", PodUID: "u1", Container: "app", ProbeType: "Readiness", Result: "successful"}
	body := scrape(probingRuntime{counts: map[runtime.ProbeKey]uint64{key: 7}})
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(strings.NewReader(body))
	require.NoError(t, err)
	total := families["prober_probe_total"]
	require.NotNil(t, total, body)
	require.Len(t, total.GetMetric(), 1)
	m := total.GetMetric()[0]
	assert.Equal(t, map[string]string{"container": "app", "namespace": "default", "pod": "web", "pod_uid": "u1", "probe_type": "Readiness", "result": "successful"}, labelsOf(m))
	assert.Equal(t, 7.0, m.GetCounter().GetValue())

	assert.NotContains(t, scrape(usageRuntime{}), "prober_probe_total{", "a runtime that runs no probes has no series")
}
