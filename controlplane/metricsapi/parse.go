// Package metricsapi serves metrics.k8s.io/v1beta1 (NodeMetrics and
// PodMetrics, what `kubectl top` and the HorizontalPodAutoscaler read) from
// periodic scrapes of every kubelet's /metrics/resource, the way
// metrics-server does, but inside the control-plane process.
package metricsapi

import (
	"bytes"
	"fmt"
	"math"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// The kubelet's resource metrics (see kubelet/api.go and the upstream
// kubelet's /metrics/resource).
const (
	metricNodeCPU          = "node_cpu_usage_seconds_total"
	metricNodeMemory       = "node_memory_working_set_bytes"
	metricContainerCPU     = "container_cpu_usage_seconds_total"
	metricContainerMemory  = "container_memory_working_set_bytes"
	metricContainerStarted = "container_start_time_seconds"
)

// ContainerKey names one container of one pod.
type ContainerKey struct {
	Namespace, Pod, Container string
}

// cpuPoint is one reading of a cumulative CPU counter.
type cpuPoint struct {
	at      time.Time
	seconds float64 // core-seconds since the counter began
}

// containerSample is what one scrape says about one container.
type containerSample struct {
	cpu     cpuPoint
	hasCPU  bool
	memory  uint64
	hasMem  bool
	started time.Time // zero when the kubelet did not say
}

// batch is one scrape of one kubelet.
type batch struct {
	node       cpuPoint
	hasNodeCPU bool
	nodeMemory uint64
	hasNodeMem bool
	containers map[ContainerKey]containerSample
}

// parseResourceMetrics reads /metrics/resource. Samples without their own
// timestamp are taken to be from scrapedAt.
func parseResourceMetrics(data []byte, scrapedAt time.Time) (batch, error) {
	p := expfmt.NewTextParser(model.LegacyValidation)
	families, err := p.TextToMetricFamilies(bytes.NewReader(data))
	if err != nil {
		return batch{}, fmt.Errorf("parse resource metrics: %w", err)
	}
	b := batch{containers: map[ContainerKey]containerSample{}}
	at := func(m *dto.Metric) time.Time {
		if m.TimestampMs != nil {
			return time.UnixMilli(m.GetTimestampMs())
		}
		return scrapedAt
	}
	if f := families[metricNodeCPU]; f != nil && len(f.Metric) > 0 {
		m := f.Metric[0]
		if v, ok := value(m); ok {
			b.node, b.hasNodeCPU = cpuPoint{at: at(m), seconds: v}, true
		}
	}
	if f := families[metricNodeMemory]; f != nil && len(f.Metric) > 0 {
		if v, ok := value(f.Metric[0]); ok {
			b.nodeMemory, b.hasNodeMem = uint64(v), true
		}
	}
	for name, set := range map[string]func(*containerSample, *dto.Metric, float64){
		metricContainerCPU: func(s *containerSample, m *dto.Metric, v float64) {
			s.cpu, s.hasCPU = cpuPoint{at: at(m), seconds: v}, true
		},
		metricContainerMemory: func(s *containerSample, _ *dto.Metric, v float64) {
			s.memory, s.hasMem = uint64(v), true
		},
		metricContainerStarted: func(s *containerSample, _ *dto.Metric, v float64) {
			if v > 0 {
				sec, frac := math.Modf(v)
				s.started = time.Unix(int64(sec), int64(frac*1e9))
			}
		},
	} {
		f := families[name]
		if f == nil {
			continue
		}
		for _, m := range f.Metric {
			key, ok := containerKey(m)
			v, valid := value(m)
			if !ok || !valid {
				continue
			}
			s := b.containers[key]
			set(&s, m, v)
			b.containers[key] = s
		}
	}
	return b, nil
}

func containerKey(m *dto.Metric) (ContainerKey, bool) {
	var k ContainerKey
	for _, l := range m.Label {
		switch l.GetName() {
		case "namespace":
			k.Namespace = l.GetValue()
		case "pod":
			k.Pod = l.GetValue()
		case "container":
			k.Container = l.GetValue()
		}
	}
	return k, k.Namespace != "" && k.Pod != "" && k.Container != ""
}

// value is a counter's, gauge's or untyped sample's value; NaN, infinite
// and negative readings are no usage at all.
func value(m *dto.Metric) (float64, bool) {
	var v float64
	switch {
	case m.Counter != nil:
		v = m.Counter.GetValue()
	case m.Gauge != nil:
		v = m.Gauge.GetValue()
	case m.Untyped != nil:
		v = m.Untyped.GetValue()
	default:
		return 0, false
	}
	if math.IsNaN(v) || math.IsInf(v, 0) || v < 0 {
		return 0, false
	}
	return v, true
}
