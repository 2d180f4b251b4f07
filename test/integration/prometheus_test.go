package integration

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	promapi "github.com/prometheus/client_golang/api"
	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// promClient is a Prometheus HTTP API client for the URL minik prints.
func promClient(t *testing.T, url string) promv1.API {
	t.Helper()
	c, err := promapi.NewClient(promapi.Config{Address: url})
	require.NoError(t, err)
	return promv1.NewAPI(c)
}

// promVector runs an instant query (at now, or at the given time).
func promVector(ctx context.Context, api promv1.API, q string, at ...time.Time) (model.Vector, error) {
	ts := time.Now()
	if len(at) > 0 {
		ts = at[0]
	}
	v, _, err := api.Query(ctx, q, ts)
	if err != nil {
		return nil, err
	}
	vec, ok := v.(model.Vector)
	if !ok {
		return nil, fmt.Errorf("query %s: %s, not a vector", q, v.Type())
	}
	return vec, nil
}

// waitTargetsUp waits until every active target of the jobs is up.
func waitTargetsUp(t *testing.T, ctx context.Context, api promv1.API, jobs ...string) {
	t.Helper()
	eventually(t, 2*time.Minute, "targets up: "+strings.Join(jobs, ", "), func() (bool, string) {
		r, err := api.Targets(ctx)
		if err != nil {
			return false, err.Error()
		}
		up := map[string]int{}
		var state []string
		for _, tg := range r.Active {
			job := string(tg.DiscoveredLabels["job"])
			state = append(state, fmt.Sprintf("%s %s %s %s", job, tg.ScrapeURL, tg.Health, tg.LastError))
			if tg.Health != promv1.HealthGood {
				return false, strings.Join(state, "; ")
			}
			up[job]++
		}
		for _, j := range jobs {
			if up[j] == 0 {
				return false, "no target of job " + j + " yet: " + strings.Join(state, "; ")
			}
		}
		return true, ""
	})
}

// TestPrometheus runs the built-in Prometheus on the process driver: it
// scrapes the apiserver and every kubelet endpoint, PromQL over the
// cAdvisor metrics finds a pod's simulated CPU, data outlives a restart,
// and disabling it removes it.
func TestPrometheus(t *testing.T) {
	h := newHarness(t)
	const profile = "prom"
	h.startJSON("-p", profile, "--nodes", "2", "--prometheus")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	c := clientFor(t, h.kubeconfig, profile)
	kubectl := func(args ...string) string {
		return h.ok(3*time.Minute, append([]string{"kubectl", "-p", profile, "--"}, args...)...)
	}

	// Bad settings are refused before anything changes.
	require.Contains(t, h.fails("addons", "enable", "prometheus", "-p", profile, "--retention", "5m"), "keep at least 1h")
	require.Contains(t, h.fails("addons", "enable", "grafana", "-p", profile), `unknown addon "grafana"`)
	// Faster scrapes for the test: enable again changes the settings.
	h.ok(time.Minute, "addons", "enable", "prometheus", "-p", profile, "--scrape-interval", "2s")
	var url string
	eventually(t, time.Minute, "minik service prints prometheus' URL", func() (bool, string) {
		r := h.run(time.Minute, "service", "prometheus", "-n", "kube-system", "-p", profile)
		url = strings.TrimSpace(r.stdout)
		return r.code == 0 && strings.HasPrefix(url, "http://"), r.stdout + r.stderr
	})
	require.Contains(t, h.ok(time.Minute, "addons", "list", "-p", profile), url)
	api := promClient(t, url)

	waitTargetsUp(t, ctx, api, "prometheus", "apiserver", "kubelet")
	r, err := api.Targets(ctx)
	require.NoError(t, err)
	paths := map[string]int{}
	for _, tg := range r.Active {
		if tg.Labels["job"] == "kubelet" {
			paths[string(tg.Labels["metrics_path"])]++
		}
	}
	require.Equal(t, map[string]int{"/metrics": 2, "/metrics/cadvisor": 2, "/metrics/resource": 2, "/metrics/probes": 2}, paths, "each kubelet endpoint of both nodes")

	t.Run("a pod's CPU from cAdvisor metrics", func(t *testing.T) {
		for name, cpu := range map[string]string{"busy": "400m", "calm": "10m"} {
			labels := map[string]string{"app": name}
			_, err := c.AppsV1().Deployments("default").Create(ctx, &appsv1.Deployment{
				ObjectMeta: metav1.ObjectMeta{Name: name},
				Spec: appsv1.DeploymentSpec{
					Selector: &metav1.LabelSelector{MatchLabels: labels},
					Template: corev1.PodTemplateSpec{
						ObjectMeta: metav1.ObjectMeta{Labels: labels, Annotations: map[string]string{"minik.dev/cpu": cpu}},
						Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "main", Image: name + ":1"}}},
					},
				},
			}, metav1.CreateOptions{})
			require.NoError(t, err)
			kubectl("rollout", "status", "deployment/"+name, "--timeout=2m")
		}
		busy := podsOf(t, ctx, c, "busy")
		require.Len(t, busy, 1)
		q := `rate(container_cpu_usage_seconds_total{metrics_path="/metrics/cadvisor",namespace="default",container!=""}[10s])`
		eventually(t, time.Minute, "the busy pod uses 400m, the calm one little", func() (bool, string) {
			vec, err := promVector(ctx, api, q)
			if err != nil {
				return false, err.Error()
			}
			var busyCPU, calmCPU float64
			for _, s := range vec {
				switch {
				case string(s.Metric["pod"]) == busy[0].Name:
					busyCPU = float64(s.Value)
					for _, l := range []model.LabelName{"namespace", "container", "image", "name", "node"} {
						if s.Metric[l] == "" {
							return false, fmt.Sprintf("series %s has no %s label", s.Metric, l)
						}
					}
				case strings.HasPrefix(string(s.Metric["pod"]), "calm-"):
					calmCPU = float64(s.Value)
				default:
					return false, "a series of another pod: " + s.Metric.String()
				}
			}
			return busyCPU > 0.35 && busyCPU < 0.45 && calmCPU > 0 && calmCPU < 0.05, vec.String()
		})
	})

	t.Run("alerts from a rule file in the manifests folder, in the dashboard", func(t *testing.T) {
		rules := filepath.Join(h.home, "profiles", profile, "manifests", "alerts.rules.yaml")
		require.NoError(t, os.WriteFile(rules, []byte(`groups:
- name: pods
  rules:
  - alert: BusyPod
    expr: rate(container_cpu_usage_seconds_total{metrics_path="/metrics/cadvisor",container!=""}[10s]) > 0.3
    labels: {severity: warning}
    annotations: {summary: "{{ $labels.pod }} uses more than 300m"}
`), 0o644))
		eventually(t, time.Minute, "BusyPod fires and the dashboard shows it", func() (bool, string) {
			out := h.ok(time.Minute, "dashboard", "-p", profile, "--once")
			return strings.Contains(out, "trends: last 1h from prometheus at "+url) &&
				strings.Contains(out, "1 firing, 0 pending") && strings.Contains(out, "BusyPod") &&
				strings.Contains(out, "busy-"), out
		})
		// The manifests folder leaves the rule file to Prometheus.
		require.NotContains(t, h.ok(time.Minute, "manifests", "-p", profile), "alerts.rules.yaml")
	})

	t.Run("data outlives a restart", func(t *testing.T) {
		before := time.Now()
		vec, err := promVector(ctx, api, `up{job="apiserver"}`, before)
		require.NoError(t, err)
		require.Len(t, vec, 1)
		h.ok(2*time.Minute, "stop", "-p", profile)
		h.ok(2*time.Minute, "start", "-p", profile)
		eventually(t, time.Minute, "the samples before the stop are still there", func() (bool, string) {
			vec, err := promVector(ctx, api, `up{job="apiserver"}`, before)
			if err != nil {
				return false, err.Error()
			}
			return len(vec) == 1 && vec[0].Value == 1, vec.String()
		})
	})

	t.Run("disable", func(t *testing.T) {
		h.ok(time.Minute, "addons", "disable", "prometheus", "-p", profile)
		eventually(t, time.Minute, "the Service is gone", func() (bool, string) {
			_, err := c.CoreV1().Services("kube-system").Get(ctx, "prometheus", metav1.GetOptions{})
			return err != nil && strings.Contains(err.Error(), "not found"), fmt.Sprint(err)
		})
		_, err := promVector(ctx, api, "up")
		require.Error(t, err, "nothing answers at %s", url)
		require.Contains(t, h.ok(time.Minute, "addons", "list", "-p", profile), "off")
		// Without minik's Prometheus, a Service of the process driver is simulated.
		require.Contains(t, h.fails("service", "prometheus", "-n", "kube-system", "-p", profile), "simulated")
	})
}
