package integration

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
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

	// Without the pods, the workers are idle: drained and deleted, down to MIN.
	require.NoError(t, c.AppsV1().Deployments("default").Delete(ctx, "wide", metav1.DeleteOptions{}))
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
