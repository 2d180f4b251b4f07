package integration

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"
)

func podTemplate(app string, annotations map[string]string) corev1.PodTemplateSpec {
	return corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": app}, Annotations: annotations},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{
			Name:  "main",
			Image: "registry.invalid/" + app + ":v1",
			Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{
				corev1.ResourceCPU: resource.MustParse("10m"),
			}},
		}}},
	}
}

func deployment(name string, replicas int32) *appsv1.Deployment {
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To(replicas),
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": name}},
			Template: podTemplate(name, nil),
		},
	}
}

// eventually polls cond every 100 ms until it holds or timeout passes.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var last string
	for time.Now().Before(deadline) {
		ok, state := cond()
		if ok {
			return
		}
		last = state
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s: not after %s; last seen: %s", what, timeout, last)
}

func podsOf(t *testing.T, ctx context.Context, c kubernetes.Interface, app string) []corev1.Pod {
	t.Helper()
	pods, err := c.CoreV1().Pods("default").List(ctx, metav1.ListOptions{LabelSelector: "app=" + app})
	require.NoError(t, err)
	return pods.Items
}

func isReady(p corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func TestPodsOnSimRuntime(t *testing.T) {
	h := newHarness(t)
	const profile = "pods"
	h.startJSON("-p", profile, "--nodes", "3")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	c := clientFor(t, h.kubeconfig, profile)
	kubectl := func(args ...string) string {
		return h.ok(3*time.Minute, append([]string{"kubectl", "-p", profile, "--"}, args...)...)
	}

	t.Run("deployment rollout, set image, undo, restart, scale", func(t *testing.T) {
		_, err := c.AppsV1().Deployments("default").Create(ctx, deployment("web", 6), metav1.CreateOptions{})
		require.NoError(t, err)
		kubectl("rollout", "status", "deployment/web", "--timeout=2m")
		pods := podsOf(t, ctx, c, "web")
		require.Len(t, pods, 6)
		nodes, ips := map[string]bool{}, map[string]bool{}
		for _, p := range pods {
			require.True(t, isReady(p), p.Name)
			require.Equal(t, corev1.PodRunning, p.Status.Phase)
			require.NotEmpty(t, p.Status.PodIP)
			require.False(t, ips[p.Status.PodIP], "pod IPs are unique")
			ips[p.Status.PodIP] = true
			nodes[p.Spec.NodeName] = true
			cs := p.Status.ContainerStatuses[0]
			require.True(t, cs.Ready)
			require.NotNil(t, cs.State.Running)
		}
		require.GreaterOrEqual(t, len(nodes), 2, "pods spread over nodes")

		kubectl("set", "image", "deployment/web", "main=registry.invalid/web:v2")
		kubectl("rollout", "status", "deployment/web", "--timeout=2m")
		kubectl("rollout", "undo", "deployment/web")
		kubectl("rollout", "status", "deployment/web", "--timeout=2m")
		d, err := c.AppsV1().Deployments("default").Get(ctx, "web", metav1.GetOptions{})
		require.NoError(t, err)
		require.Equal(t, "registry.invalid/web:v1", d.Spec.Template.Spec.Containers[0].Image)
		kubectl("rollout", "restart", "deployment/web")
		kubectl("rollout", "status", "deployment/web", "--timeout=2m")

		kubectl("scale", "deployment/web", "--replicas=0")
		eventually(t, time.Minute, "scale to 0: no pod left, none stuck Terminating", func() (bool, string) {
			n := len(podsOf(t, ctx, c, "web"))
			return n == 0, fmt.Sprintf("%d pods", n)
		})
		kubectl("scale", "deployment/web", "--replicas=3")
		kubectl("rollout", "status", "deployment/web", "--timeout=2m")
	})

	t.Run("daemonset on every node", func(t *testing.T) {
		ds := &appsv1.DaemonSet{
			ObjectMeta: metav1.ObjectMeta{Name: "agent"},
			Spec: appsv1.DaemonSetSpec{
				Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "agent"}},
				Template: podTemplate("agent", nil),
			},
		}
		_, err := c.AppsV1().DaemonSets("default").Create(ctx, ds, metav1.CreateOptions{})
		require.NoError(t, err)
		kubectl("rollout", "status", "daemonset/agent", "--timeout=2m")
		nodes := map[string]bool{}
		for _, p := range podsOf(t, ctx, c, "agent") {
			nodes[p.Spec.NodeName] = true
		}
		require.Len(t, nodes, 3)
	})

	t.Run("job completes", func(t *testing.T) {
		job := &batchv1.Job{
			ObjectMeta: metav1.ObjectMeta{Name: "batch"},
			Spec: batchv1.JobSpec{
				Completions: ptr.To[int32](2),
				Template:    podTemplate("batch", map[string]string{"minik.dev/run-duration": "1s"}),
			},
		}
		job.Spec.Template.Spec.RestartPolicy = corev1.RestartPolicyNever
		_, err := c.BatchV1().Jobs("default").Create(ctx, job, metav1.CreateOptions{})
		require.NoError(t, err)
		kubectl("wait", "--for=condition=complete", "job/batch", "--timeout=2m")
		for _, p := range podsOf(t, ctx, c, "batch") {
			require.Equal(t, corev1.PodSucceeded, p.Status.Phase)
		}
	})

	t.Run("crash loop, logs, exec and bad annotations", func(t *testing.T) {
		pod := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: "crasher", Annotations: map[string]string{
				"minik.dev/crash-after": "500ms",
				"minik.dev/logs":        "hello from the sim\nsecond line",
				"minik.dev/cpu":         "lots",
			}},
			Spec: podTemplate("crasher", nil).Spec,
		}
		_, err := c.CoreV1().Pods("default").Create(ctx, pod, metav1.CreateOptions{})
		require.NoError(t, err)
		eventually(t, time.Minute, "CrashLoopBackOff", func() (bool, string) {
			p, err := c.CoreV1().Pods("default").Get(ctx, "crasher", metav1.GetOptions{})
			if err != nil || len(p.Status.ContainerStatuses) == 0 {
				return false, fmt.Sprint(err)
			}
			cs := p.Status.ContainerStatuses[0]
			ok := cs.State.Waiting != nil && cs.State.Waiting.Reason == "CrashLoopBackOff" && cs.RestartCount >= 1
			return ok, fmt.Sprintf("%+v restarts=%d", cs.State, cs.RestartCount)
		})
		events, err := c.CoreV1().Events("default").List(ctx, metav1.ListOptions{FieldSelector: "involvedObject.name=crasher"})
		require.NoError(t, err)
		reasons := map[string]bool{}
		for _, e := range events.Items {
			reasons[e.Reason] = true
		}
		assert.True(t, reasons["InvalidAnnotation"], "a bad annotation is an event: %v", reasons)
		assert.True(t, reasons["BackOff"], "%v", reasons)
		assert.True(t, reasons["Started"], "%v", reasons)

		out := kubectl("logs", "crasher", "--previous")
		assert.Contains(t, out, "hello from the sim")
		assert.Contains(t, out, "second line")

		r := h.run(time.Minute, "kubectl", "-p", profile, "--", "exec", "crasher", "--", "true")
		require.NotEqual(t, 0, r.code)
		assert.Contains(t, r.stderr, "not supported by the sim runtime")
	})

	t.Run("too big to schedule stays Pending with the scheduler's message", func(t *testing.T) {
		pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "huge"}, Spec: podTemplate("huge", nil).Spec}
		pod.Spec.Containers[0].Resources.Requests[corev1.ResourceCPU] = resource.MustParse("10000")
		_, err := c.CoreV1().Pods("default").Create(ctx, pod, metav1.CreateOptions{})
		require.NoError(t, err)
		eventually(t, time.Minute, "Unschedulable", func() (bool, string) {
			p, err := c.CoreV1().Pods("default").Get(ctx, "huge", metav1.GetOptions{})
			if err != nil {
				return false, err.Error()
			}
			for _, cond := range p.Status.Conditions {
				if cond.Type == corev1.PodScheduled && cond.Reason == "Unschedulable" {
					return strings.Contains(cond.Message, "Insufficient cpu"), cond.Message
				}
			}
			return false, string(p.Status.Phase)
		})
	})

	t.Run("deleted pod is gone within its grace period", func(t *testing.T) {
		pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "short"}, Spec: podTemplate("short", nil).Spec}
		_, err := c.CoreV1().Pods("default").Create(ctx, pod, metav1.CreateOptions{})
		require.NoError(t, err)
		kubectl("wait", "--for=condition=Ready", "pod/short", "--timeout=1m")
		kubectl("delete", "pod", "short", "--wait=true", "--timeout=1m")
		_, err = c.CoreV1().Pods("default").Get(ctx, "short", metav1.GetOptions{})
		require.Error(t, err)
	})

	t.Run("node lost: pods move, node comes back", func(t *testing.T) {
		const lost = profile + "-m02"
		kubectl("scale", "deployment/web", "--replicas=6")
		kubectl("rollout", "status", "deployment/web", "--timeout=2m")
		onLost := 0
		for _, p := range podsOf(t, ctx, c, "web") {
			if p.Spec.NodeName == lost {
				onLost++
			}
		}
		require.Positive(t, onLost, "some web pods run on %s", lost)

		h.ok(time.Minute, "node", "stop", lost, "-p", profile)
		eventually(t, 2*time.Minute, "node NotReady", func() (bool, string) {
			ready := kubeReady(ctx, t, c, lost)
			return !ready, fmt.Sprintf("ready=%v", ready)
		})
		eventually(t, 3*time.Minute, "6 ready web pods, none on the lost node", func() (bool, string) {
			ready := 0
			for _, p := range podsOf(t, ctx, c, "web") {
				if p.DeletionTimestamp == nil && isReady(p) && p.Spec.NodeName != lost {
					ready++
				}
			}
			return ready == 6, fmt.Sprintf("%d ready elsewhere", ready)
		})

		h.ok(2*time.Minute, "node", "start", lost, "-p", profile)
		require.True(t, kubeReady(ctx, t, c, lost))
		eventually(t, time.Minute, "evicted pods on the returned node are gone", func() (bool, string) {
			n := 0
			for _, p := range podsOf(t, ctx, c, "web") {
				if p.Spec.NodeName == lost {
					n++
				}
			}
			return n == 0, fmt.Sprintf("%d web pods left on %s", n, lost)
		})
	})

	t.Run("stopped cluster comes back with its pods", func(t *testing.T) {
		h.ok(2*time.Minute, "stop", "-p", profile)
		require.Empty(t, h.nodePIDs())
		_, st := h.startJSON("-p", profile)
		require.Equal(t, "Running", st.State)
		for _, n := range st.Nodes {
			require.Equal(t, "Running", n.State, n.Name)
		}
		c = clientFor(t, h.kubeconfig, profile)
		kubectl("rollout", "status", "deployment/web", "--timeout=2m")
		kubectl("rollout", "status", "daemonset/agent", "--timeout=2m")
		for _, p := range podsOf(t, ctx, c, "web") {
			require.Equal(t, corev1.PodRunning, p.Status.Phase, p.Name)
		}
	})
}
