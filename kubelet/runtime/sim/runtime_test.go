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

// A container whose sub-path expands out of its volume is not made: the
// pod stays Pending with the container waiting in CreateContainerConfigError
// and one Failed event, as with a kubelet; it never runs to completion.
func TestConfigErrorHoldsPod(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	events := record.NewFakeRecorder(100)
	r := New("172.20.0.3", "v1.37.2", func(context.Context) (string, error) { return "10.244.1.0/24", nil }, events, nil)
	r.now = func() time.Time { return now }
	require.NoError(t, r.Prepare(ctx, nil, func(string) {}))
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "expand", Namespace: "default", UID: "uid-2"},
		Spec: corev1.PodSpec{NodeName: "n1", RestartPolicy: corev1.RestartPolicyNever,
			Volumes: []corev1.Volume{{Name: "work", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}},
			Containers: []corev1.Container{{Name: "app", Image: "busybox",
				Env:          []corev1.EnvVar{{Name: "POD_NAME", Value: ".."}},
				VolumeMounts: []corev1.VolumeMount{{Name: "work", MountPath: "/logs", SubPathExpr: "$(POD_NAME)"}}}}}}

	for range 3 {
		res, err := r.SyncPod(ctx, pod)
		require.NoError(t, err)
		st := res.Status
		require.NotNil(t, st)
		assert.Equal(t, corev1.PodPending, st.Phase)
		assert.NotEmpty(t, st.PodIP, "the sandbox is there; its container is not")
		require.Len(t, st.ContainerStatuses, 1)
		require.NotNil(t, st.ContainerStatuses[0].State.Waiting)
		assert.Equal(t, "CreateContainerConfigError", st.ContainerStatuses[0].State.Waiting.Reason)
		assert.Equal(t, "unable to provision SubPath `..`: must not contain '..'", st.ContainerStatuses[0].State.Waiting.Message)
		pod.Status = *st
		now = now.Add(10 * time.Second)
	}
	require.Len(t, events.Events, 1, "the failure is reported once")
	assert.Equal(t, "Warning Failed Error: unable to provision SubPath `..`: must not contain '..'", <-events.Events)
}

func TestConfigError(t *testing.T) {
	mount := func(expr string) []corev1.VolumeMount {
		return []corev1.VolumeMount{{Name: "work", MountPath: "/w", SubPathExpr: expr}}
	}
	literal := func(name, value string) corev1.EnvVar { return corev1.EnvVar{Name: name, Value: value} }
	fromField := func(name, field string) corev1.EnvVar {
		return corev1.EnvVar{Name: name, ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: field}}}
	}
	fromConfigMap := corev1.EnvVar{Name: "CM", ValueFrom: &corev1.EnvVarSource{ConfigMapKeyRef: &corev1.ConfigMapKeySelector{
		LocalObjectReference: corev1.LocalObjectReference{Name: "c"}, Key: "k"}}}
	cases := []struct {
		name    string
		c       corev1.Container
		init    bool
		wantErr string
	}{
		{name: "no sub-path", c: corev1.Container{Env: []corev1.EnvVar{literal("A", "/tmp")}}},
		{name: "relative", c: corev1.Container{Env: []corev1.EnvVar{literal("A", "logs")}, VolumeMounts: mount("$(A)/x")}},
		{name: "pod name from the downward API", c: corev1.Container{Env: []corev1.EnvVar{fromField("P", "metadata.name")}, VolumeMounts: mount("$(P)")}},
		{name: "absolute", c: corev1.Container{Env: []corev1.EnvVar{literal("A", "/tmp")}, VolumeMounts: mount("$(A)")},
			wantErr: "error SubPath `/tmp` must not be an absolute path"},
		{name: "backsteps", c: corev1.Container{Env: []corev1.EnvVar{literal("A", "..")}, VolumeMounts: mount("x/$(A)")},
			wantErr: "unable to provision SubPath `x/..`: must not contain '..'"},
		{name: "in an init container", init: true, c: corev1.Container{Env: []corev1.EnvVar{literal("A", "..")}, VolumeMounts: mount("$(A)")},
			wantErr: "unable to provision SubPath `..`: must not contain '..'"},
		{name: "missing and empty values", c: corev1.Container{Env: []corev1.EnvVar{literal("E", "")}, VolumeMounts: mount("$(M)/$(E)")},
			wantErr: "missing value for E, M"},
		{name: "a literal made of another", c: corev1.Container{Env: []corev1.EnvVar{literal("A", ".."), literal("B", "$(A)")}, VolumeMounts: mount("$(B)")},
			wantErr: "unable to provision SubPath `..`: must not contain '..'"},
		{name: "a ConfigMap's value is not known here", c: corev1.Container{Env: []corev1.EnvVar{fromConfigMap}, VolumeMounts: mount("$(CM)")}},
		{name: "envFrom may hold a missing name", c: corev1.Container{EnvFrom: []corev1.EnvFromSource{{Prefix: "X"}}, VolumeMounts: mount("$(M)")}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.c.Name = "c"
			pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p"}}
			if tc.init {
				pod.Spec.InitContainers = []corev1.Container{tc.c}
			} else {
				pod.Spec.Containers = []corev1.Container{tc.c}
			}
			name, err := ConfigError(pod)
			if tc.wantErr == "" {
				assert.NoError(t, err)
				assert.Empty(t, name)
				return
			}
			assert.EqualError(t, err, tc.wantErr)
			assert.Equal(t, "c", name)
		})
	}
}
