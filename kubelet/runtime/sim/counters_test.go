package sim

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/record"

	"minik.dev/minik/kubelet/runtime"
)

var usageT0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// runningPod is a one-container pod whose container started at usageT0.
func runningPod(annotations map[string]string) (*corev1.Pod, corev1.PodStatus) {
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default", UID: types.UID("uid-1"), Annotations: annotations},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "main"}}},
	}
	st := corev1.PodStatus{
		Phase: corev1.PodRunning,
		ContainerStatuses: []corev1.ContainerStatus{{
			Name: "main", ContainerID: "sim://run-0",
			State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: metav1.Time{Time: usageT0}}},
		}},
	}
	return pod, st
}

func testRuntime(t *testing.T, pod *corev1.Pod, st corev1.PodStatus) (*Runtime, *record.FakeRecorder, *time.Time) {
	t.Helper()
	now := usageT0
	events := record.NewFakeRecorder(10)
	r := &Runtime{recorder: events, now: func() time.Time { return now }, pods: map[types.UID]*simPod{}}
	rec := r.record(pod)
	rec.status = st
	return r, events, &now
}

func cpuSeconds(t *testing.T, samples []runtime.ContainerUsage) float64 {
	t.Helper()
	require.Len(t, samples, 1)
	return float64(samples[0].CPUUsageCoreNanoSeconds) / 1e9
}

func TestLiveCPUAnnotation(t *testing.T) {
	pod, st := runningPod(map[string]string{AnnotationCPU: "100m"})
	m, events, now := testRuntime(t, pod, st)

	*now = usageT0.Add(10 * time.Second)
	assert.InDelta(t, 1.0, cpuSeconds(t, m.Usage(*now)), 1e-9, "100m for 10 s since the start")

	// The load rises to 500m at 10 s: the counter integrates both rates.
	updated := pod.DeepCopy()
	updated.Annotations[AnnotationCPU] = "500m"
	m.record(updated)
	*now = usageT0.Add(20 * time.Second)
	s := m.Usage(*now)
	assert.InDelta(t, 1.0+5.0, cpuSeconds(t, s), 1e-9)
	assert.Equal(t, uint64(500_000_000), s[0].CPUNanoCores)

	// A change between two samples counts from the moment it is seen.
	*now = usageT0.Add(25 * time.Second)
	lowered := updated.DeepCopy()
	lowered.Annotations[AnnotationCPU] = "20m"
	m.record(lowered)
	*now = usageT0.Add(30 * time.Second)
	assert.InDelta(t, 6.0+2.5+0.1, cpuSeconds(t, m.Usage(*now)), 1e-9, "never goes back when the rate drops")

	// A bad value keeps the last good one and is reported once.
	bad := lowered.DeepCopy()
	bad.Annotations[AnnotationCPU] = "lots"
	m.record(bad)
	m.record(bad)
	*now = usageT0.Add(40 * time.Second)
	s = m.Usage(*now)
	assert.Equal(t, uint64(20_000_000), s[0].CPUNanoCores)
	assert.InDelta(t, 8.6+0.2, cpuSeconds(t, s), 1e-9)
	require.Len(t, events.Events, 1)
	assert.Contains(t, <-events.Events, `Warning InvalidAnnotation annotation minik.dev/cpu: "lots" is not a quantity`)

	// Removing the annotation goes back to the default.
	none := bad.DeepCopy()
	delete(none.Annotations, AnnotationCPU)
	m.record(none)
	*now = usageT0.Add(50 * time.Second)
	assert.Equal(t, DefaultPlan().CPUNanoCores(), m.Usage(*now)[0].CPUNanoCores)
}

func TestLiveMemoryAnnotationAndRestart(t *testing.T) {
	pod, st := runningPod(map[string]string{AnnotationMemory: "64Mi"})
	m, _, now := testRuntime(t, pod, st)
	*now = usageT0.Add(10 * time.Second)
	assert.Equal(t, uint64(64<<20), m.Usage(*now)[0].MemoryWorkingSetBytes)
	updated := pod.DeepCopy()
	updated.Annotations[AnnotationMemory] = "1Gi"
	m.record(updated)
	assert.Equal(t, uint64(1<<30), m.Usage(*now)[0].MemoryWorkingSetBytes)

	// A restarted container's counter starts again from its new start.
	rec := m.pods["uid-1"]
	st.ContainerStatuses[0].ContainerID = "sim://run-1"
	st.ContainerStatuses[0].State.Running.StartedAt = metav1.Time{Time: usageT0.Add(8 * time.Second)}
	rec.status = st
	assert.InDelta(t, 0.02, cpuSeconds(t, m.Usage(*now)), 1e-9, "10m for 2 s")
}
