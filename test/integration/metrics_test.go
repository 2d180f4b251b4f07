package integration

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"
)

// topRow is one line of `kubectl top nodes|pods --no-headers`.
type topRow struct {
	cpuMilli int64
	memory   int64
	known    bool
}

// parseTop reads kubectl top's table; keyCols columns make up the key
// (1 for nodes, 2 for pods -A: namespace/name).
func parseTop(t *testing.T, out string, keyCols int) map[string]topRow {
	t.Helper()
	rows := map[string]topRow{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Fields(line)
		if len(f) < keyCols+2 {
			continue
		}
		key := strings.Join(f[:keyCols], "/")
		if f[keyCols] == "<unknown>" {
			rows[key] = topRow{}
			continue
		}
		cpu, err := resource.ParseQuantity(f[keyCols])
		require.NoError(t, err, line)
		// Nodes print CPU% between CPU and memory.
		memCol := keyCols + 1
		if keyCols == 1 && len(f) >= 5 {
			memCol = keyCols + 2
		}
		mem, err := resource.ParseQuantity(f[memCol])
		require.NoError(t, err, line)
		rows[key] = topRow{cpuMilli: cpu.MilliValue(), memory: mem.Value(), known: true}
	}
	return rows
}

func TestMetrics(t *testing.T) {
	h := newHarness(t)
	const profile = "metrics"
	worker := profile + "-m02"
	started := time.Now()
	h.startJSON("-p", profile, "--nodes", "2")
	clusterReady := time.Since(started)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	c := clientFor(t, h.kubeconfig, profile)
	kubectl := func(args ...string) string {
		return h.ok(3*time.Minute, append([]string{"kubectl", "-p", profile, "--"}, args...)...)
	}
	top := func(args ...string) (string, bool) {
		r := h.run(time.Minute, append([]string{"kubectl", "-p", profile, "--", "top"}, args...)...)
		return r.stdout + r.stderr, r.code == 0
	}

	t.Run("kubectl top nodes and pods", func(t *testing.T) {
		// The target is 30 s from start; the bound is looser so a loaded CI
		// machine does not fail the test on timing alone (timings are for
		// make bench), and the measured time is logged.
		eventually(t, time.Minute, "kubectl top nodes shows usage of both nodes", func() (bool, string) {
			out, ok := top("nodes", "--no-headers")
			if !ok {
				return false, out
			}
			rows := parseTop(t, out, 1)
			for _, n := range []string{profile, worker} {
				if r := rows[n]; !r.known || r.cpuMilli <= 0 || r.memory <= 0 {
					return false, out
				}
			}
			return true, out
		})
		t.Logf("kubectl top nodes answered %s after minik start began (cluster ready after %s)", time.Since(started).Round(100*time.Millisecond), clusterReady.Round(100*time.Millisecond))

		d := deployment("busy", 2)
		d.Spec.Template.Annotations = map[string]string{"minik.dev/cpu": "250m", "minik.dev/memory": "64Mi"}
		_, err := c.AppsV1().Deployments("default").Create(ctx, d, metav1.CreateOptions{})
		require.NoError(t, err)
		kubectl("rollout", "status", "deployment/busy", "--timeout=2m")
		podsReady := time.Now()
		eventually(t, time.Minute, "kubectl top pods -A shows the annotated usage", func() (bool, string) {
			out, ok := top("pods", "-A", "--no-headers")
			if !ok {
				return false, out
			}
			n := 0
			for key, r := range parseTop(t, out, 2) {
				if !strings.HasPrefix(key, "default/busy-") {
					continue
				}
				if !r.known || r.cpuMilli < 240 || r.cpuMilli > 260 || r.memory != 64<<20 {
					return false, out
				}
				n++
			}
			return n == 2, out
		})
		t.Logf("kubectl top pods showed new pods %s after they were ready", time.Since(podsReady).Round(100*time.Millisecond))
	})

	t.Run("discovery, APIService and raw API", func(t *testing.T) {
		out := kubectl("api-resources", "--api-group=metrics.k8s.io", "--no-headers")
		assert.Contains(t, out, "NodeMetrics")
		assert.Contains(t, out, "PodMetrics")
		assert.Equal(t, "True", kubectl("get", "apiservice", "v1beta1.metrics.k8s.io", "-o", "jsonpath={.status.conditions[?(@.type==\"Available\")].status}"))
		// Aggregated discovery, which kubectl reads, lists the group.
		raw := kubectl("get", "--raw", "/apis")
		assert.Contains(t, raw, `"name":"metrics.k8s.io"`)
		raw = kubectl("get", "--raw", "/apis/metrics.k8s.io/v1beta1/namespaces/default/pods?labelSelector=app%3Dbusy")
		assert.Contains(t, raw, `"kind":"PodMetricsList"`)
		assert.Equal(t, 2, strings.Count(raw, `"name":"main"`), raw)
		raw = kubectl("get", "--raw", "/apis/metrics.k8s.io/v1beta1/nodes/"+worker)
		assert.Contains(t, raw, `"kind":"NodeMetrics"`)
	})

	t.Run("usage annotation changes live; a bad one is an event", func(t *testing.T) {
		pod := podsOf(t, ctx, c, "busy")[0].Name
		kubectl("annotate", "pod", pod, "minik.dev/cpu=600m", "--overwrite")
		usage := func() (topRow, string) {
			out, ok := top("pod", pod, "--no-headers")
			if !ok {
				return topRow{}, out
			}
			return parseTop(t, out, 1)[pod], out
		}
		eventually(t, time.Minute, "the new usage shows", func() (bool, string) {
			r, out := usage()
			return r.cpuMilli >= 590 && r.cpuMilli <= 610, out
		})
		kubectl("annotate", "pod", pod, "minik.dev/cpu=lots", "--overwrite")
		eventually(t, 30*time.Second, "InvalidAnnotation event", func() (bool, string) {
			ev, err := c.CoreV1().Events("default").List(ctx, metav1.ListOptions{FieldSelector: "involvedObject.name=" + pod + ",reason=InvalidAnnotation"})
			if err != nil {
				return false, err.Error()
			}
			for _, e := range ev.Items {
				if strings.Contains(e.Message, `"lots"`) {
					return true, ""
				}
			}
			return false, fmt.Sprintf("%d events", len(ev.Items))
		})
		time.Sleep(12 * time.Second) // a scrape later, the usage is still the last valid one
		r, out := usage()
		assert.InDelta(t, 600, r.cpuMilli, 10, out)
	})

	t.Run("HPA scales with minik-load", func(t *testing.T) {
		testHPA(t, ctx, c, kubectl)
	})

	t.Run("Prometheus metrics of the apiserver and the kubelets", func(t *testing.T) {
		assert.Contains(t, kubectl("get", "--raw", "/metrics"), "apiserver_request_total")
		for _, n := range []string{profile, worker} {
			out := kubectl("get", "--raw", "/api/v1/nodes/"+n+"/proxy/metrics")
			assert.Contains(t, out, "kubelet_running_pods ", n)
			assert.Contains(t, out, `kubelet_running_containers{container_state="running"}`, n)
			assert.Contains(t, out, "go_goroutines ", n)
			assert.Contains(t, out, "process_resident_memory_bytes ", n)
			assert.Contains(t, out, `kubelet_node_name{node="`+n+`"} 1`)
			out = kubectl("get", "--raw", "/api/v1/nodes/"+n+"/proxy/metrics/resource")
			assert.Contains(t, out, "node_cpu_usage_seconds_total ", n)
			out = kubectl("get", "--raw", "/api/v1/nodes/"+n+"/proxy/metrics/cadvisor")
			_, _, ok := cadvisorValue(t, out, "container_cpu_usage_seconds_total", map[string]string{"id": "/"})
			assert.True(t, ok, "the node's own CPU series on %s", n)
		}
		// A running pod's simulated use, under cAdvisor's names and labels.
		pods, err := c.CoreV1().Pods("default").List(ctx, metav1.ListOptions{FieldSelector: "status.phase=Running"})
		require.NoError(t, err)
		require.NotEmpty(t, pods.Items)
		p := pods.Items[0]
		out := kubectl("get", "--raw", "/api/v1/nodes/"+p.Spec.NodeName+"/proxy/metrics/cadvisor")
		cpu, labels, ok := cadvisorValue(t, out, "container_cpu_usage_seconds_total", map[string]string{"namespace": "default", "pod": p.Name, "container": p.Spec.Containers[0].Name})
		require.True(t, ok, "a series of pod %s: %s", p.Name, out)
		assert.Greater(t, cpu, 0.0)
		assert.Equal(t, p.Spec.Containers[0].Image, labels["image"])
	})

	t.Run("stopped node: metrics absent, APIService stays Available", func(t *testing.T) {
		h.ok(time.Minute, "node", "stop", worker, "-p", profile)
		eventually(t, time.Minute, "the stopped node has no metrics", func() (bool, string) {
			out, ok := top("nodes", "--no-headers")
			if !ok {
				return false, out
			}
			rows := parseTop(t, out, 1)
			return !rows[worker].known && rows[profile].known, out
		})
		assert.Equal(t, "True", kubectl("get", "apiservice", "v1beta1.metrics.k8s.io", "-o", "jsonpath={.status.conditions[?(@.type==\"Available\")].status}"))
		out, ok := top("pods", "-A")
		assert.True(t, ok, "pods on the running node still have metrics: %s", out)
	})
}

// testHPA drives a Deployment's load through the minik-load ConfigMap:
// 150m over pods requesting 100m at a 50% target needs 3 replicas; 10m
// needs 1.
func testHPA(t *testing.T, ctx context.Context, c kubernetes.Interface, kubectl func(...string) string) {
	d := deployment("web", 1)
	d.Spec.Template.Spec.Containers[0].Resources.Requests[corev1.ResourceCPU] = resource.MustParse("100m")
	_, err := c.AppsV1().Deployments("default").Create(ctx, d, metav1.CreateOptions{})
	require.NoError(t, err)
	load := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "minik-load"}, Data: map[string]string{"web": "10m"}}
	_, err = c.CoreV1().ConfigMaps("default").Create(ctx, load, metav1.CreateOptions{})
	require.NoError(t, err)
	hpa := &autoscalingv2.HorizontalPodAutoscaler{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: autoscalingv2.HorizontalPodAutoscalerSpec{
			ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "web"},
			MinReplicas:    ptr.To[int32](1),
			MaxReplicas:    5,
			Metrics: []autoscalingv2.MetricSpec{{
				Type: autoscalingv2.ResourceMetricSourceType,
				Resource: &autoscalingv2.ResourceMetricSource{
					Name:   corev1.ResourceCPU,
					Target: autoscalingv2.MetricTarget{Type: autoscalingv2.UtilizationMetricType, AverageUtilization: ptr.To[int32](50)},
				},
			}},
		},
	}
	_, err = c.AutoscalingV2().HorizontalPodAutoscalers("default").Create(ctx, hpa, metav1.CreateOptions{})
	require.NoError(t, err)
	kubectl("rollout", "status", "deployment/web", "--timeout=2m")

	hpaState := func() (*autoscalingv2.HorizontalPodAutoscaler, string) {
		got, err := c.AutoscalingV2().HorizontalPodAutoscalers("default").Get(ctx, "web", metav1.GetOptions{})
		require.NoError(t, err)
		var util string
		if len(got.Status.CurrentMetrics) > 0 && got.Status.CurrentMetrics[0].Resource != nil && got.Status.CurrentMetrics[0].Resource.Current.AverageUtilization != nil {
			util = fmt.Sprintf("%d%%", *got.Status.CurrentMetrics[0].Resource.Current.AverageUtilization)
		}
		return got, fmt.Sprintf("replicas %d->%d, utilization %s", got.Status.CurrentReplicas, got.Status.DesiredReplicas, util)
	}
	eventually(t, time.Minute, "the HPA reads CPU utilization", func() (bool, string) {
		got, state := hpaState()
		return len(got.Status.CurrentMetrics) > 0 && got.Status.CurrentMetrics[0].Resource != nil &&
			got.Status.CurrentMetrics[0].Resource.Current.AverageUtilization != nil, state
	})

	setLoad := func(v string) {
		cm, err := c.CoreV1().ConfigMaps("default").Get(ctx, "minik-load", metav1.GetOptions{})
		require.NoError(t, err)
		cm.Data["web"] = v
		_, err = c.CoreV1().ConfigMaps("default").Update(ctx, cm, metav1.UpdateOptions{})
		require.NoError(t, err)
	}
	replicas := func() int32 {
		got, err := c.AppsV1().Deployments("default").Get(ctx, "web", metav1.GetOptions{})
		require.NoError(t, err)
		return *got.Spec.Replicas
	}

	raised := time.Now()
	setLoad("150m")
	eventually(t, 2*time.Minute, "the HPA scales web up to 3", func() (bool, string) {
		_, state := hpaState()
		return replicas() == 3, state
	})
	t.Logf("scaled up to 3 replicas %s after the load rose", time.Since(raised).Round(100*time.Millisecond))
	kubectl("rollout", "status", "deployment/web", "--timeout=2m")
	// At 50m a pod the HPA is at its target and stays there.
	eventually(t, time.Minute, "web's pods share the load", func() (bool, string) {
		n := 0
		for _, p := range podsOf(t, ctx, c, "web") {
			if p.Annotations["minik.dev/cpu"] == "50m" {
				n++
			}
		}
		return n == 3, fmt.Sprintf("%d pods at 50m", n)
	})

	lowered := time.Now()
	setLoad("10m")
	eventually(t, 2*time.Minute, "the HPA scales web down to 1", func() (bool, string) {
		_, state := hpaState()
		return replicas() == 1, state
	})
	t.Logf("scaled down to 1 replica %s after the load fell", time.Since(lowered).Round(100*time.Millisecond))
}
