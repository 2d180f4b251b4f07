package sim

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/record"
)

// fakeVolumes fails set-up with err while it is set.
type fakeVolumes struct {
	mu        sync.Mutex
	err       error
	forgotten []types.UID
}

func (f *fakeVolumes) Ready(context.Context, *corev1.Pod) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.err
}

func (f *fakeVolumes) ForgetPod(_ context.Context, uid types.UID) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.forgotten = append(f.forgotten, uid)
}

// A pod whose volumes cannot be set up stays Pending with its containers
// being created, no IP and a FailedMount event, retried with back-off;
// once they can be, it runs.
func TestVolumesHoldContainers(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	events := record.NewFakeRecorder(100)
	vols := &fakeVolumes{err: errors.New(`volume "ctb": no ClusterTrustBundle "ca"`)}
	r := New("172.20.0.3", "v1.37.2", func(context.Context) (string, error) { return "10.244.1.0/24", nil }, events, vols)
	r.now = func() time.Time { return now }
	require.NoError(t, r.Prepare(ctx, nil, func(string) {}))
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default", UID: "uid-1"},
		Spec: corev1.PodSpec{NodeName: "n1", Containers: []corev1.Container{{Name: "app", Image: "app:1"}}}}

	for _, wantRetry := range []time.Duration{time.Second, 2 * time.Second, 4 * time.Second} {
		res, err := r.SyncPod(ctx, pod)
		require.NoError(t, err)
		require.NotNil(t, res.Status)
		assert.Equal(t, wantRetry, res.Requeue)
		st := res.Status
		assert.Equal(t, corev1.PodPending, st.Phase)
		assert.Empty(t, st.PodIP)
		assert.Equal(t, "172.20.0.3", st.HostIP)
		require.Len(t, st.ContainerStatuses, 1)
		require.NotNil(t, st.ContainerStatuses[0].State.Waiting)
		assert.Equal(t, "ContainerCreating", st.ContainerStatuses[0].State.Waiting.Reason)
		ready := cond(t, *st, corev1.PodReady)
		assert.Equal(t, corev1.ConditionFalse, ready.Status)
		assert.Equal(t, "ContainersNotReady", ready.Reason)
		assert.Equal(t, "containers with unready status: [app]", ready.Message)
		assert.Contains(t, <-events.Events, `Warning FailedMount MountVolume.SetUp failed: volume "ctb": no ClusterTrustBundle "ca"`)
		pod.Status = *st
		now = now.Add(res.Requeue)
	}

	vols.mu.Lock()
	vols.err = nil
	vols.mu.Unlock()
	res, err := r.SyncPod(ctx, pod)
	require.NoError(t, err)
	assert.Equal(t, corev1.PodRunning, res.Status.Phase)
	assert.NotEmpty(t, res.Status.PodIP)

	require.NoError(t, r.ForgetPod(ctx, pod.UID))
	assert.Equal(t, []types.UID{"uid-1"}, vols.forgotten)
}
