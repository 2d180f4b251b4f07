package integration

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
)

// TestAutoscaleSim grows a process-driver cluster (sim runtime) for pods
// that do not fit and shrinks it back once they are gone, through the
// real scheduler's filters, the control plane's decision and the
// host-side agent.
func TestAutoscaleSim(t *testing.T) {
	h := newHarness(t)
	const profile = "auto"

	t.Run("bad input", func(t *testing.T) {
		for _, args := range [][]string{
			{"start", "-p", "bad", "--autoscale", "3:1"},
			{"start", "-p", "bad", "--autoscale", "two"},
			{"start", "-p", "bad", "--autoscale", "0:600"},
			{"start", "-p", "bad", "--autoscale-idle", "5s"},
			{"start", "-p", "bad", "--nodes", "4", "--autoscale", "0:2"},
			{"autoscale", "-p", "bad", "--min", "1"},
			{"autoscale", "-p", "bad", "--off", "--max", "2"},
		} {
			r := h.run(time.Minute, args...)
			assert.Equal(t, 2, r.code, "%v: %s", args, r.stderr)
		}
		assert.NoDirExists(t, filepath.Join(h.home, "profiles", "bad"), "bad input creates nothing")
	})

	// Each node has 1 CPU; a worker holds one 600m pod.
	h.startJSON("-p", profile, "--cpus", "1", "--memory", "2Gi", "--autoscale", "0:2", "--autoscale-idle", "5s")
	c := clientFor(t, h.kubeconfig, profile)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	kubectl := func(args ...string) string {
		return h.ok(2*time.Minute, append([]string{"kubectl", "-p", profile, "--"}, args...)...)
	}
	pidFile := filepath.Join(h.home, "profiles", profile, "autoscaler", "pid")
	agentRuns := func() bool {
		b, err := os.ReadFile(pidFile)
		if err != nil {
			return false
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", strings.TrimSpace(string(b)), "cmdline"))
		return err == nil && strings.Contains(string(cmdline), "--agent-of="+profile)
	}
	require.True(t, agentRuns(), "minik start runs the autoscaler's agent")
	assert.Contains(t, h.ok(time.Minute, "status", "-p", profile), "autoscale:  0 to 2 workers, idle ones removed after 5s")

	r := h.run(time.Minute, "autoscale", "-p", profile, "--max", "400")
	assert.Equal(t, 2, r.code, r.stderr)
	assert.Contains(t, r.stderr, "this machine has", "a MAX the machine's memory cannot hold is refused with the numbers")

	d := deployment("wide", 3)
	d.Spec.Template.Spec.Containers[0].Resources.Requests = corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("600m")}
	_, err := c.AppsV1().Deployments("default").Create(ctx, d, metav1.CreateOptions{})
	require.NoError(t, err)
	pending := time.Now()
	kubectl("rollout", "status", "deployment/wide", "--timeout", "3m")
	t.Logf("3 pods of 600m on 1-CPU nodes: all Running %s after the Deployment was made", time.Since(pending).Round(100*time.Millisecond))

	nodes := h.ok(time.Minute, "node", "list", "-p", profile)
	assert.Equal(t, 2, strings.Count(nodes, "worker (autoscaled)"), nodes)
	assert.Contains(t, kubectl("get", "events", "--field-selector", "reason=TriggeredScaleUp"), "pod triggered scale-up")
	assert.Equal(t, "true true", strings.TrimSpace(kubectl("get", "nodes", "-l", "minik.dev/autoscaled", "-o", "jsonpath={range .items[*]}{.metadata.labels.minik\\.dev/autoscaled} {end}")))

	// Past MAX, and a pod no worker could hold: neither adds a node, and
	// the pods say why.
	_, err = c.AppsV1().Deployments("default").UpdateScale(ctx, "wide", scaleTo("wide", 4), metav1.UpdateOptions{})
	require.NoError(t, err)
	big := deployment("big", 1)
	big.Spec.Template.Spec.Containers[0].Resources.Requests = corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("4")}
	_, err = c.AppsV1().Deployments("default").Create(ctx, big, metav1.CreateOptions{})
	require.NoError(t, err)
	eventually(t, time.Minute, "pods say why they added no node", func() (bool, string) {
		out := kubectl("get", "events", "--field-selector", "reason=NotTriggerScaleUp", "-o", "jsonpath={range .items[*]}{.message}{\"\\n\"}{end}")
		return strings.Contains(out, "max of 2 workers") && strings.Contains(out, "Insufficient cpu"), out
	})
	assert.Equal(t, 2, strings.Count(h.ok(time.Minute, "node", "list", "-p", profile), "worker (autoscaled)"))

	// The agent survives stop and start.
	h.ok(3*time.Minute, "stop", "-p", profile)
	assert.False(t, agentRuns(), "minik stop stops the agent")
	h.ok(6*time.Minute, "start", "-p", profile)
	require.True(t, agentRuns(), "minik start runs the agent again")

	// Scaled to zero, the workers are idle: drained and deleted, down to MIN.
	_, err = c.AppsV1().Deployments("default").UpdateScale(ctx, "wide", scaleTo("wide", 0), metav1.UpdateOptions{})
	require.NoError(t, err)
	require.NoError(t, c.AppsV1().Deployments("default").Delete(ctx, "big", metav1.DeleteOptions{}))
	eventually(t, 3*time.Minute, "idle workers removed", func() (bool, string) {
		r := h.run(time.Minute, "node", "list", "-p", profile)
		return r.code == 0 && !strings.Contains(r.stdout, "worker"), r.stdout + r.stderr
	})
	assert.Contains(t, kubectl("get", "events", "-A", "--field-selector", "reason=ScaleDown"), "removed by the autoscaler")

	h.ok(time.Minute, "autoscale", "-p", profile, "--off")
	assert.False(t, agentRuns(), "autoscale --off stops the agent")
	_, err = c.CoreV1().ConfigMaps("kube-system").Get(ctx, "minik-autoscaler", metav1.GetOptions{})
	assert.Error(t, err, "and removes the settings")
}

func scaleTo(name string, replicas int32) *autoscalingv1.Scale {
	return &autoscalingv1.Scale{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"}, Spec: autoscalingv1.ScaleSpec{Replicas: replicas}}
}

// TestAutoscaleDocker adds a docker node for a real container that does
// not fit, and removes it once idle, after a PodDisruptionBudget that
// held the scale-down back is gone.
func TestAutoscaleDocker(t *testing.T) {
	requireEngine(t)
	keepNodeImages(t)
	h := newHarness(t)
	h.env = append(slices.DeleteFunc(h.env, func(e string) bool { return strings.HasPrefix(e, "MINIK_DRIVER=") }), "MINIK_DRIVER=docker")
	const profile = "adk"
	removeCluster(t, h, profile)
	image := buildApp(t)
	h.startJSON("-p", profile, "--cpus", "1", "--memory", "1Gi", "--autoscale", "0:1", "--autoscale-idle", "5s")
	c := clientFor(t, h.kubeconfig, profile)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	kubectl := func(args ...string) string {
		return h.ok(3*time.Minute, append([]string{"kubectl", "-p", profile, "--"}, args...)...)
	}
	withCPU := func(name, cpu string) *appsv1.Deployment {
		d := appDeployment(name, image, 1)
		d.Spec.Template.Spec.Containers[0].Resources.Requests = corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(cpu)}
		return d
	}

	// fill takes the control plane; web does not fit beside it.
	_, err := c.AppsV1().Deployments("default").Create(ctx, withCPU("fill", "700m"), metav1.CreateOptions{})
	require.NoError(t, err)
	kubectl("rollout", "status", "deployment/fill", "--timeout", "2m")
	_, err = c.PolicyV1().PodDisruptionBudgets("default").Create(ctx, &policyv1.PodDisruptionBudget{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: policyv1.PodDisruptionBudgetSpec{MinAvailable: ptr.To(intstr.FromInt32(1)),
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}}},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	made := time.Now()
	_, err = c.AppsV1().Deployments("default").Create(ctx, withCPU("web", "400m"), metav1.CreateOptions{})
	require.NoError(t, err)
	kubectl("rollout", "status", "deployment/web", "--timeout", "3m")
	t.Logf("a container that fits no node: Ready on a new docker node %s after its Deployment was made", time.Since(made).Round(100*time.Millisecond))
	worker := profile + "-m02"
	assert.Equal(t, "true", docker(t, "inspect", "-f", "{{.State.Running}}", worker))
	assert.Equal(t, worker, kubectl("get", "pods", "-l", "app=web", "-o", "jsonpath={.items[0].spec.nodeName}"))

	// With fill gone the worker is idle and web fits on the control
	// plane, but the budget allows no eviction: the worker stays.
	require.NoError(t, c.AppsV1().Deployments("default").Delete(ctx, "fill", metav1.DeleteOptions{}))
	eventually(t, 2*time.Minute, "the budget holds the scale-down back", func() (bool, string) {
		out := kubectl("get", "events", "--field-selector", "reason=ScaleDownFailed", "-o", "jsonpath={range .items[*]}{.message}{\"\\n\"}{end}")
		return strings.Contains(out, worker), out
	})
	assert.Contains(t, h.ok(time.Minute, "node", "list", "-p", profile), worker)
	assert.Empty(t, kubectl("get", "node", worker, "-o", "jsonpath={.spec.unschedulable}"), "a refused scale-down uncordons the node")

	require.NoError(t, c.PolicyV1().PodDisruptionBudgets("default").Delete(ctx, "web", metav1.DeleteOptions{}))
	eventually(t, 3*time.Minute, "the idle worker is removed", func() (bool, string) {
		r := h.run(time.Minute, "node", "list", "-p", profile)
		return r.code == 0 && !strings.Contains(r.stdout, worker), r.stdout + r.stderr
	})
	kubectl("rollout", "status", "deployment/web", "--timeout", "2m")
	assert.Equal(t, profile, kubectl("get", "pods", "-l", "app=web", "-o", "jsonpath={.items[0].spec.nodeName}"), "web moved to the control plane")
	out, err := exec.Command("docker", "ps", "-a", "--filter", "name="+worker, "--format", "{{.Names}}").Output()
	require.NoError(t, err)
	assert.Empty(t, strings.TrimSpace(string(out)), "the worker's container is gone")
}
