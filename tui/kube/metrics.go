package kube

import (
	"context"
	"errors"
	"fmt"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/discovery"
	metricsv1beta1 "k8s.io/metrics/pkg/apis/metrics/v1beta1"
)

// MetricsGroupVersion is the API the dashboard reads usage from.
const MetricsGroupVersion = "metrics.k8s.io/v1beta1"

// Usage is CPU and memory in use.
type Usage struct {
	CPUMilli    int64
	MemoryBytes int64
}

// ErrMetricsNotServed says the apiserver does not serve metrics.k8s.io
// (no metrics-server): discovery answered 404.
var ErrMetricsNotServed = errors.New(MetricsGroupVersion + " not served")

// Metrics is one poll of metrics.k8s.io.
type Metrics struct {
	// Served says discovery listed metrics.k8s.io.
	Served bool
	// Err is why the poll has no data: ErrMetricsNotServed, a discovery
	// failure (cluster unreachable: served or not is unknown), or the
	// served API failing.
	Err error
	At  time.Time
	// Pods is keyed by "namespace/name".
	Pods  map[string]Usage
	Nodes map[string]Usage
}

// Metrics polls metrics.k8s.io once: discovery first, so "not served" is
// told apart from "served but failing".
func (c *Client) Metrics(ctx context.Context, now time.Time) Metrics {
	m := Metrics{At: now}
	if c.mc == nil {
		m.Err = fmt.Errorf("%w: no metrics client", ErrMetricsNotServed)
		return m
	}
	disc := discovery.ToDiscoveryInterfaceWithContext(c.kc.Discovery())
	if _, err := disc.ServerResourcesForGroupVersionWithContext(ctx, MetricsGroupVersion); err != nil {
		if apierrors.IsNotFound(err) {
			m.Err = ErrMetricsNotServed
		} else {
			m.Err = fmt.Errorf("discover %s: %w", MetricsGroupVersion, err)
		}
		return m
	}
	m.Served = true
	nodes, err := c.mc.MetricsV1beta1().NodeMetricses().List(ctx, metav1.ListOptions{})
	if err != nil {
		m.Err = fmt.Errorf("list node metrics: %w", err)
		return m
	}
	pods, err := c.mc.MetricsV1beta1().PodMetricses(c.namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		m.Err = fmt.Errorf("list pod metrics: %w", err)
		return m
	}
	m.Nodes = make(map[string]Usage, len(nodes.Items))
	for _, n := range nodes.Items {
		m.Nodes[n.Name] = Usage{CPUMilli: n.Usage.Cpu().MilliValue(), MemoryBytes: n.Usage.Memory().Value()}
	}
	m.Pods = make(map[string]Usage, len(pods.Items))
	for _, p := range pods.Items {
		m.Pods[p.Namespace+"/"+p.Name] = podUsage(p)
	}
	return m
}

func podUsage(p metricsv1beta1.PodMetrics) Usage {
	var u Usage
	for _, c := range p.Containers {
		u.CPUMilli += c.Usage.Cpu().MilliValue()
		u.MemoryBytes += c.Usage.Memory().Value()
	}
	return u
}
