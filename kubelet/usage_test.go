package kubelet

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/record"

	"minik.dev/minik/kubelet/sim"
)

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// runningPod is a one-container pod whose container started at t0.
func runningPod(annotations map[string]string) (*corev1.Pod, corev1.PodStatus) {
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default", UID: types.UID("uid-1"), Annotations: annotations},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "main"}}},
	}
	st := corev1.PodStatus{
		Phase: corev1.PodRunning,
		ContainerStatuses: []corev1.ContainerStatus{{
			Name: "main", ContainerID: "sim://run-0",
			State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: metav1.Time{Time: t0}}},
		}},
	}
	return pod, st
}

func testManager(t *testing.T, pod *corev1.Pod, st corev1.PodStatus) (*podManager, *record.FakeRecorder, *time.Time) {
	t.Helper()
	now := t0
	events := record.NewFakeRecorder(10)
	m := &podManager{recorder: events, now: func() time.Time { return now }, pods: map[types.UID]*podRecord{}}
	rec := m.record(pod)
	m.remember(rec, st, nil)
	return m, events, &now
}

func cpuSeconds(t *testing.T, samples []usageSample) float64 {
	t.Helper()
	require.Len(t, samples, 1)
	return float64(samples[0].usage.CPUUsageCoreNanoSeconds) / 1e9
}

func TestLiveCPUAnnotation(t *testing.T) {
	pod, st := runningPod(map[string]string{sim.AnnotationCPU: "100m"})
	m, events, now := testManager(t, pod, st)

	*now = t0.Add(10 * time.Second)
	assert.InDelta(t, 1.0, cpuSeconds(t, m.usage(*now)), 1e-9, "100m for 10 s since the start")

	// The load rises to 500m at 10 s: the counter integrates both rates.
	updated := pod.DeepCopy()
	updated.Annotations[sim.AnnotationCPU] = "500m"
	m.record(updated)
	*now = t0.Add(20 * time.Second)
	s := m.usage(*now)
	assert.InDelta(t, 1.0+5.0, cpuSeconds(t, s), 1e-9)
	assert.Equal(t, uint64(500_000_000), s[0].usage.CPUNanoCores)

	// A change between two samples counts from the moment it is seen.
	*now = t0.Add(25 * time.Second)
	lowered := updated.DeepCopy()
	lowered.Annotations[sim.AnnotationCPU] = "20m"
	m.record(lowered)
	*now = t0.Add(30 * time.Second)
	assert.InDelta(t, 6.0+2.5+0.1, cpuSeconds(t, m.usage(*now)), 1e-9, "never goes back when the rate drops")

	// A bad value keeps the last good one and is reported once.
	bad := lowered.DeepCopy()
	bad.Annotations[sim.AnnotationCPU] = "lots"
	m.record(bad)
	m.record(bad)
	*now = t0.Add(40 * time.Second)
	s = m.usage(*now)
	assert.Equal(t, uint64(20_000_000), s[0].usage.CPUNanoCores)
	assert.InDelta(t, 8.6+0.2, cpuSeconds(t, s), 1e-9)
	require.Len(t, events.Events, 1)
	assert.Contains(t, <-events.Events, `Warning InvalidAnnotation annotation minik.dev/cpu: "lots" is not a quantity`)

	// Removing the annotation goes back to the default.
	none := bad.DeepCopy()
	delete(none.Annotations, sim.AnnotationCPU)
	m.record(none)
	*now = t0.Add(50 * time.Second)
	assert.Equal(t, sim.DefaultPlan().CPUNanoCores(), m.usage(*now)[0].usage.CPUNanoCores)
}

func TestLiveMemoryAnnotationAndRestart(t *testing.T) {
	pod, st := runningPod(map[string]string{sim.AnnotationMemory: "64Mi"})
	m, _, now := testManager(t, pod, st)
	*now = t0.Add(10 * time.Second)
	assert.Equal(t, uint64(64<<20), m.usage(*now)[0].usage.MemoryWorkingSetBytes)
	updated := pod.DeepCopy()
	updated.Annotations[sim.AnnotationMemory] = "1Gi"
	m.record(updated)
	assert.Equal(t, uint64(1<<30), m.usage(*now)[0].usage.MemoryWorkingSetBytes)

	// A restarted container's counter starts again from its new start.
	rec := m.pods["uid-1"]
	st.ContainerStatuses[0].ContainerID = "sim://run-1"
	st.ContainerStatuses[0].State.Running.StartedAt = metav1.Time{Time: t0.Add(8 * time.Second)}
	m.remember(rec, st, nil)
	assert.InDelta(t, 0.02, cpuSeconds(t, m.usage(*now)), 1e-9, "10m for 2 s")
}

func TestAgentMetrics(t *testing.T) {
	pod, st := runningPod(nil)
	done := corev1.ContainerStatus{Name: "init", ContainerID: "sim://init", State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{}}}
	st.InitContainerStatuses = []corev1.ContainerStatus{done}
	pending := corev1.PodStatus{ContainerStatuses: []corev1.ContainerStatus{{Name: "main", State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{}}}}}
	views := []podView{{pod: pod, status: st}, {pod: pod, status: pending}}
	m := newAgentMetrics("n1", func() []podView { return views })
	want := `
# HELP kubelet_node_name [ALPHA] The node's name. The count is always 1.
# TYPE kubelet_node_name gauge
kubelet_node_name{node="n1"} 1
# HELP kubelet_running_containers [ALPHA] Number of containers currently running
# TYPE kubelet_running_containers gauge
kubelet_running_containers{container_state="created"} 0
kubelet_running_containers{container_state="exited"} 1
kubelet_running_containers{container_state="running"} 1
# HELP kubelet_running_pods [ALPHA] Number of pods that have a running pod sandbox
# TYPE kubelet_running_pods gauge
kubelet_running_pods 1
`
	require.NoError(t, testutil.GatherAndCompare(m.registry, strings.NewReader(want),
		"kubelet_node_name", "kubelet_running_containers", "kubelet_running_pods"))
	n, err := testutil.GatherAndCount(m.registry, "go_goroutines", "process_start_time_seconds")
	require.NoError(t, err)
	assert.GreaterOrEqual(t, n, 1, "Go and process collectors are registered")
}
