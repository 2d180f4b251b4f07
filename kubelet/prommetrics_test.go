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
)

func TestAgentMetrics(t *testing.T) {
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default", UID: "uid-1"},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "main"}}},
	}
	st := corev1.PodStatus{
		Phase: corev1.PodRunning,
		ContainerStatuses: []corev1.ContainerStatus{{
			Name: "main", ContainerID: "sim://run-0",
			State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: metav1.Time{Time: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}}},
		}},
	}
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
