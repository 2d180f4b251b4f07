package metricsapi

import (
	"testing"
	"time"
)

// /metrics/resource comes from nodes, which may be joined machines.
func FuzzParseResourceMetrics(f *testing.F) {
	f.Add([]byte("node_cpu_usage_seconds_total 12.5 1700000000000\nnode_memory_working_set_bytes 1e9\n"))
	f.Add([]byte("container_cpu_usage_seconds_total{container=\"a\",namespace=\"n\",pod=\"p\"} NaN\n"))
	f.Add([]byte("# TYPE x counter\nx{a=\"\\\"\"} -Inf\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		_, _ = parseResourceMetrics(data, time.Unix(1700000000, 0))
	})
}
