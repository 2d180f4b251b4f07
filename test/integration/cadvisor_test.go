package integration

import (
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"
)

// cadvisorValue parses a kubelet's /metrics/cadvisor with the Prometheus
// text parser and returns the value of metric's series whose labels
// include want, and that series' labels; ok is false when there is none.
func cadvisorValue(t *testing.T, text, metric string, want map[string]string) (value float64, labels map[string]string, ok bool) {
	t.Helper()
	p := expfmt.NewTextParser(model.UTF8Validation)
	families, err := p.TextToMetricFamilies(strings.NewReader(text))
	require.NoError(t, err, "the output parses as the Prometheus text format")
	f, found := families[metric]
	if !found {
		return 0, nil, false
	}
	for _, m := range f.GetMetric() {
		labels = map[string]string{}
		for _, l := range m.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		match := true
		for k, v := range want {
			match = match && labels[k] == v
		}
		if !match {
			continue
		}
		switch f.GetType() {
		case dto.MetricType_COUNTER:
			return m.GetCounter().GetValue(), labels, true
		case dto.MetricType_GAUGE:
			return m.GetGauge().GetValue(), labels, true
		default:
			return m.GetUntyped().GetValue(), labels, true
		}
	}
	return 0, nil, false
}
