package kube

import (
	"context"
	"fmt"
	"math"
	"slices"
	"time"

	promapi "github.com/prometheus/client_golang/api"
	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// The Prometheus server minik runs on request (`minik addons enable
// prometheus`) is the Service kube-system/prometheus with its URL, which
// this machine reaches, in an annotation.
const (
	prometheusNamespace = "kube-system"
	prometheusService   = "prometheus"
	nodeURLAnnotation   = "minik.dev/node-url"
)

// HistoryWindow is how far back the trends reach when Prometheus serves
// them, in HistoryPoints points.
const (
	HistoryWindow = time.Hour
	HistoryPoints = 10
)

// History is CPU and memory over the last HistoryWindow from the
// cluster's Prometheus: Source is its URL, "" when the cluster runs none.
type History struct {
	Source string
	Err    error
	At     time.Time
	// Series are keyed as the dashboard's trends: "pod/NS/NAME/cpu",
	// "node/NAME/mem", ...; CPU in millicores, memory in bytes, oldest
	// first, HistoryPoints long (NaN where there was no sample).
	Series map[string][]float64
	// Alerts are the server's pending and firing alerts (from rule files
	// in the manifests folder), firing first.
	Alerts []Alert
}

// Alert is one pending or firing alert.
type Alert struct {
	Name     string
	State    string // firing or pending
	Severity string
	// Summary is its summary or description annotation.
	Summary  string
	ActiveAt time.Time
}

// The cAdvisor series of kube-prometheus' kubelet job: a node is its
// id="/" series; a pod is the sum of its containers.
var historyQueries = []struct {
	query string
	key   func(model.Metric) string
	scale float64
}{
	{`sum by (node) (rate(container_cpu_usage_seconds_total{job="kubelet",metrics_path="/metrics/cadvisor",id="/"}[%s]))`,
		func(m model.Metric) string { return "node/" + string(m["node"]) + "/cpu" }, 1000},
	{`sum by (node) (container_memory_working_set_bytes{job="kubelet",metrics_path="/metrics/cadvisor",id="/"})`,
		func(m model.Metric) string { return "node/" + string(m["node"]) + "/mem" }, 1},
	{`sum by (namespace, pod) (rate(container_cpu_usage_seconds_total{job="kubelet",metrics_path="/metrics/cadvisor",container!="",container!="POD"}[%s]))`,
		func(m model.Metric) string { return "pod/" + string(m["namespace"]) + "/" + string(m["pod"]) + "/cpu" }, 1000},
	{`sum by (namespace, pod) (container_memory_working_set_bytes{job="kubelet",metrics_path="/metrics/cadvisor",container!="",container!="POD"})`,
		func(m model.Metric) string { return "pod/" + string(m["namespace"]) + "/" + string(m["pod"]) + "/mem" }, 1},
}

// History asks the cluster's Prometheus, when it runs one, for the trends
// of every node and pod over the last HistoryWindow.
func (c *Client) History(ctx context.Context, now time.Time) History {
	h := History{At: now}
	svc, err := c.kc.CoreV1().Services(prometheusNamespace).Get(ctx, prometheusService, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return h
	}
	if err != nil {
		h.Err = fmt.Errorf("find prometheus: %w", err)
		return h
	}
	h.Source = svc.Annotations[nodeURLAnnotation]
	if h.Source == "" {
		// Someone else's Prometheus: its address is not known to reach.
		return h
	}
	client, err := promapi.NewClient(promapi.Config{Address: h.Source})
	if err != nil {
		h.Err = fmt.Errorf("prometheus at %s: %w", h.Source, err)
		return h
	}
	api := promv1.NewAPI(client)
	step := HistoryWindow / HistoryPoints
	// The first point is one step after the window's start, the last one now.
	r := promv1.Range{Start: now.Add(-HistoryWindow + step), End: now, Step: step}
	h.Series = map[string][]float64{}
	for _, q := range historyQueries {
		query := q.query
		if q.scale == 1000 {
			query = fmt.Sprintf(query, model.Duration(step).String())
		}
		v, _, err := api.QueryRange(ctx, query, r)
		if err != nil {
			h.Err = fmt.Errorf("query prometheus at %s: %w", h.Source, err)
			return h
		}
		matrix, ok := v.(model.Matrix)
		if !ok {
			h.Err = fmt.Errorf("query prometheus at %s: a %s, not a matrix", h.Source, v.Type())
			return h
		}
		for _, s := range matrix {
			h.Series[q.key(s.Metric)] = points(s.Values, r, q.scale)
		}
	}
	alerts, err := api.Alerts(ctx)
	if err != nil {
		h.Err = fmt.Errorf("alerts of prometheus at %s: %w", h.Source, err)
		return h
	}
	for _, a := range alerts.Alerts {
		summary := a.Annotations["summary"]
		if summary == "" {
			summary = a.Annotations["description"]
		}
		h.Alerts = append(h.Alerts, Alert{Name: string(a.Labels["alertname"]), State: string(a.State),
			Severity: string(a.Labels["severity"]), Summary: string(summary), ActiveAt: a.ActiveAt})
	}
	slices.SortStableFunc(h.Alerts, func(a, b Alert) int {
		if (a.State == "firing") != (b.State == "firing") {
			if a.State == "firing" {
				return -1
			}
			return 1
		}
		return a.ActiveAt.Compare(b.ActiveAt)
	})
	return h
}

// points places samples on the range's steps; a step without a sample is
// NaN.
func points(samples []model.SamplePair, r promv1.Range, scale float64) []float64 {
	out := make([]float64, HistoryPoints)
	for i := range out {
		out[i] = math.NaN()
	}
	for _, s := range samples {
		i := int(math.Round(float64(s.Timestamp.Time().Sub(r.Start)) / float64(r.Step)))
		if i >= 0 && i < len(out) {
			out[i] = float64(s.Value) * scale
		}
	}
	return out
}
