package kube

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	fakediscovery "k8s.io/client-go/discovery/fake"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/rest"
	k8stesting "k8s.io/client-go/testing"
	metricsv1beta1 "k8s.io/metrics/pkg/apis/metrics/v1beta1"
	metricsfake "k8s.io/metrics/pkg/client/clientset/versioned/fake"
	"k8s.io/utils/ptr"
)

func web() *appsv1.Deployment {
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default", UID: "uid-web",
			Annotations: map[string]string{RevisionAnnotation: "2", ChangeCauseAnnotation: "v2 please", "team": "a"}},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](2),
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "web"}},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "main", Image: "web:v2"}}},
			},
		},
	}
}

func rs(d *appsv1.Deployment, rev, image string, annotations map[string]string) *appsv1.ReplicaSet {
	a := map[string]string{RevisionAnnotation: rev}
	for k, v := range annotations {
		a[k] = v
	}
	return &appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{Name: "web-" + rev, Namespace: "default", UID: types.UID("uid-rs-" + rev),
			Labels: map[string]string{"app": "web", "pod-template-hash": "h" + rev}, Annotations: a,
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "Deployment", Name: d.Name, UID: d.UID, Controller: ptr.To(true)}}},
		Spec: appsv1.ReplicaSetSpec{Selector: d.Spec.Selector, Template: corev1.PodTemplateSpec{
			ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "web", "pod-template-hash": "h" + rev}},
			Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "main", Image: image}}},
		}},
	}
}

func TestUndoCopiesTemplateAndAnnotationsLikeKubectl(t *testing.T) {
	d := web()
	orphan := rs(d, "9", "other:v9", nil)
	orphan.OwnerReferences = nil
	kc := fake.NewClientset(d, rs(d, "1", "web:v1", map[string]string{ChangeCauseAnnotation: "first", "team": "b"}), rs(d, "2", "web:v2", nil), orphan)
	c := New(kc, nil, Options{})

	require.NoError(t, c.Undo(t.Context(), "default", "web", 1))
	got, err := kc.AppsV1().Deployments("default").Get(t.Context(), "web", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, "web:v1", got.Spec.Template.Spec.Containers[0].Image)
	assert.Equal(t, map[string]string{"app": "web"}, got.Spec.Template.Labels, "pod-template-hash is the controller's")
	assert.Equal(t, map[string]string{RevisionAnnotation: "2", ChangeCauseAnnotation: "first", "team": "b"}, got.Annotations)

	err = c.Undo(t.Context(), "default", "web", 1)
	assert.ErrorIs(t, err, ErrAlreadyAtRevision)
	assert.ErrorContains(t, c.Undo(t.Context(), "default", "web", 9), "revision 9 not found", "not owned by web")
	assert.ErrorContains(t, c.Undo(t.Context(), "default", "nope", 1), `undo deployment default/nope: deployments.apps "nope" not found`)
}

func TestPausedDeploymentRefusesUndoAndRestart(t *testing.T) {
	d := web()
	d.Spec.Paused = true
	c := New(fake.NewClientset(d, rs(d, "1", "web:v1", nil)), nil, Options{})
	assert.ErrorContains(t, c.Undo(t.Context(), "default", "web", 1), "it is paused; resume it first")
	assert.ErrorContains(t, c.Restart(t.Context(), "default", "web", time.Now()), "it is paused; resume it first")
}

func TestScaleRestartCordonDelete(t *testing.T) {
	d := web()
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1"}}
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "default"}}
	kc := fake.NewClientset(d, n, p)
	c := New(kc, nil, Options{})
	ctx := t.Context()

	require.NoError(t, c.Scale(ctx, "default", "web", 0))
	got, _ := kc.AppsV1().Deployments("default").Get(ctx, "web", metav1.GetOptions{})
	assert.Equal(t, int32(0), *got.Spec.Replicas)

	at := time.Date(2026, 9, 1, 12, 0, 0, 0, time.UTC)
	require.NoError(t, c.Restart(ctx, "default", "web", at))
	got, _ = kc.AppsV1().Deployments("default").Get(ctx, "web", metav1.GetOptions{})
	assert.Equal(t, "2026-09-01T12:00:00Z", got.Spec.Template.Annotations[RestartedAtAnnotation])
	assert.Equal(t, "web", got.Spec.Template.Labels["app"], "a strategic merge keeps the rest")

	require.NoError(t, c.Cordon(ctx, "n1", true))
	gn, _ := kc.CoreV1().Nodes().Get(ctx, "n1", metav1.GetOptions{})
	assert.True(t, gn.Spec.Unschedulable)
	require.NoError(t, c.Cordon(ctx, "n1", false))
	gn, _ = kc.CoreV1().Nodes().Get(ctx, "n1", metav1.GetOptions{})
	assert.False(t, gn.Spec.Unschedulable)
	assert.ErrorContains(t, c.Cordon(ctx, "n9", true), "cordon node n9:")

	require.NoError(t, c.DeletePod(ctx, "default", "p"))
	assert.ErrorContains(t, c.DeletePod(ctx, "default", "p"), `delete pod default/p: pods "p" not found`)
}

func TestOwnedReplicaSetsNewestFirst(t *testing.T) {
	d := web()
	other := rs(d, "5", "x", nil)
	other.Namespace = "elsewhere"
	got := OwnedReplicaSets([]*appsv1.ReplicaSet{rs(d, "1", "a", nil), rs(d, "10", "b", nil), rs(d, "2", "c", nil), other}, d)
	var revs []int64
	for _, r := range got {
		revs = append(revs, Revision(r))
	}
	assert.Equal(t, []int64{10, 2, 1}, revs)
}

func TestMetrics(t *testing.T) {
	now := time.Now()
	kc := fake.NewClientset()
	mc := metricsfake.NewSimpleClientset()
	c := New(kc, mc, Options{Namespace: "default"})

	m := c.Metrics(t.Context(), now)
	assert.False(t, m.Served)
	assert.ErrorIs(t, m.Err, ErrMetricsNotServed)

	kc.PrependReactor("get", "resource", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, errors.New("connection refused")
	})
	m = c.Metrics(t.Context(), now)
	assert.False(t, m.Served)
	assert.NotErrorIs(t, m.Err, ErrMetricsNotServed, "unreachable is not \"not served\"")
	assert.EqualError(t, m.Err, "discover metrics.k8s.io/v1beta1: connection refused")
	kc.ReactionChain = kc.ReactionChain[1:]

	kc.Discovery().(*fakediscovery.FakeDiscovery).Resources = []*metav1.APIResourceList{{GroupVersion: MetricsGroupVersion}}
	usage := corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("250m"), corev1.ResourceMemory: resource.MustParse("64Mi")}
	require.NoError(t, mc.Tracker().Create(metricsv1beta1.SchemeGroupVersion.WithResource("nodes"),
		&metricsv1beta1.NodeMetrics{ObjectMeta: metav1.ObjectMeta{Name: "n1"}, Usage: usage}, ""))
	require.NoError(t, mc.Tracker().Create(metricsv1beta1.SchemeGroupVersion.WithResource("pods"),
		&metricsv1beta1.PodMetrics{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "default"},
			Containers: []metricsv1beta1.ContainerMetrics{{Name: "a", Usage: usage}, {Name: "b", Usage: usage}}}, "default"))
	m = c.Metrics(t.Context(), now)
	require.NoError(t, m.Err)
	assert.True(t, m.Served)
	assert.Equal(t, Usage{CPUMilli: 250, MemoryBytes: 64 << 20}, m.Nodes["n1"])
	assert.Equal(t, Usage{CPUMilli: 500, MemoryBytes: 128 << 20}, m.Pods["default/p"], "containers add up")

	mc.PrependReactor("list", "pods", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, errors.New("the server is currently unable to handle the request")
	})
	m = c.Metrics(t.Context(), now)
	assert.True(t, m.Served)
	assert.EqualError(t, m.Err, "list pod metrics: the server is currently unable to handle the request")

	m = New(kc, nil, Options{}).Metrics(t.Context(), now)
	assert.False(t, m.Served)
	assert.ErrorIs(t, m.Err, ErrMetricsNotServed)
}

func TestWatchSnapshot(t *testing.T) {
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "default",
		ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "kubectl"}}}}
	q := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "q", Namespace: "other"}}
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1"}}
	claim := &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Name: "data", Namespace: "default"}}
	otherClaim := &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Name: "data", Namespace: "other"}}
	pv := &corev1.PersistentVolume{ObjectMeta: metav1.ObjectMeta{Name: "pvc-1"}}
	sc := &storagev1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: "standard"}, Provisioner: "volumes.minik.dev"}
	kc := fake.NewClientset(p, q, n, claim, otherClaim, pv, sc)
	c := New(kc, nil, Options{Namespace: "default"})
	assert.False(t, c.Snapshot().Synced, "nothing before Watch")
	assert.Error(t, c.WaitSynced(t.Context()))

	changed := c.Watch(t.Context())
	require.NoError(t, c.WaitSynced(t.Context()))
	s := c.Snapshot()
	assert.True(t, s.Synced)
	require.Len(t, s.Pods, 1, "only the namespace asked for")
	assert.Equal(t, "p", s.Pods[0].Name)
	assert.Empty(t, s.Pods[0].ManagedFields)
	require.Len(t, s.Nodes, 1, "nodes are cluster-wide")
	require.Len(t, s.PersistentVolumeClaims, 1, "claims of the namespace asked for")
	assert.Equal(t, "default", s.PersistentVolumeClaims[0].Namespace)
	require.Len(t, s.PersistentVolumes, 1, "volumes are cluster-wide")
	require.Len(t, s.StorageClasses, 1, "storage classes are cluster-wide")
	assert.Equal(t, "volumes.minik.dev", s.StorageClasses[0].Provisioner)

	// Drain what the initial list signalled, then a change signals again.
	select {
	case <-changed:
	case <-time.After(time.Second):
	}
	_, err := kc.CoreV1().Pods("default").Create(t.Context(), &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "r", Namespace: "default"}}, metav1.CreateOptions{})
	require.NoError(t, err)
	select {
	case <-changed:
	case <-time.After(5 * time.Second):
		t.Fatal("no change signalled")
	}
	assert.Eventually(t, func() bool { return len(c.Snapshot().Pods) == 2 }, 5*time.Second, 10*time.Millisecond)
}

func TestHealthyReadsReadyz(t *testing.T) {
	status := http.StatusOK
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/readyz" {
			http.NotFound(w, r)
			return
		}
		w.WriteHeader(status)
	}))
	defer srv.Close()
	c, err := NewForConfig(&rest.Config{Host: srv.URL}, Options{})
	require.NoError(t, err)
	require.NoError(t, c.Healthy(t.Context()))
	status = http.StatusInternalServerError
	assert.ErrorContains(t, c.Healthy(t.Context()), "apiserver /readyz")
	srv.Close()
	assert.ErrorContains(t, c.Healthy(t.Context()), "connection refused")

	assert.NoError(t, New(fake.NewClientset(), nil, Options{}).Healthy(t.Context()), "fakes have no REST client: healthy")
}

func TestLoadKubeconfig(t *testing.T) {
	dir := t.TempDir()
	a := filepath.Join(dir, "a")
	b := filepath.Join(dir, "b")
	require.NoError(t, os.WriteFile(a, []byte(`apiVersion: v1
kind: Config
current-context: one
clusters:
- name: one
  cluster: {server: "https://127.0.0.1:1111"}
users:
- name: u
  user: {token: t}
contexts:
- name: one
  context: {cluster: one, user: u}
`), 0o600))
	require.NoError(t, os.WriteFile(b, []byte(`apiVersion: v1
kind: Config
clusters:
- name: two
  cluster: {server: "https://127.0.0.1:2222"}
users:
- name: u2
  user: {token: t}
contexts:
- name: two
  context: {cluster: two, user: u2, namespace: team}
`), 0o600))

	tg, err := LoadKubeconfig([]string{a, b}, "")
	require.NoError(t, err)
	assert.Equal(t, "one", tg.Context)
	assert.Equal(t, "default", tg.Namespace)
	assert.Equal(t, "https://127.0.0.1:1111", tg.Config.Host)

	tg, err = LoadKubeconfig([]string{a, b}, "two")
	require.NoError(t, err)
	assert.Equal(t, "team", tg.Namespace)
	assert.Equal(t, "https://127.0.0.1:2222", tg.Config.Host)

	_, err = LoadKubeconfig([]string{a, b}, "three")
	assert.ErrorContains(t, err, `context "three" not found in kubeconfig`)
}
