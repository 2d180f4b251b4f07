package tui

import (
	"fmt"
	"strings"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"
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
	metricsv1beta1 "k8s.io/metrics/pkg/apis/metrics/v1beta1"
	metricsfake "k8s.io/metrics/pkg/client/clientset/versioned/fake"
	"k8s.io/utils/ptr"

	"minik.dev/minik/tui/kube"
)

// now is the tests' clock: ages in golden files never change.
var now = time.Date(2026, 9, 1, 12, 0, 0, 0, time.UTC)

func ago(d time.Duration) metav1.Time { return metav1.NewTime(now.Add(-d)) }

func node(name string, ready bool, role string) *corev1.Node {
	st := corev1.ConditionTrue
	if !ready {
		st = corev1.ConditionUnknown
	}
	n := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name, UID: types.UID("uid-" + name), CreationTimestamp: ago(2 * time.Hour), Labels: map[string]string{}},
		Status: corev1.NodeStatus{
			Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: st}},
			Capacity: corev1.ResourceList{
				corev1.ResourceCPU:    resource.MustParse("4"),
				corev1.ResourceMemory: resource.MustParse("8Gi"),
				corev1.ResourcePods:   resource.MustParse("110"),
			},
			NodeInfo: corev1.NodeSystemInfo{KubeletVersion: "v1.37.2"},
		},
	}
	if role != "" {
		n.Labels["node-role.kubernetes.io/"+role] = ""
	}
	return n
}

func template(app, image string) corev1.PodTemplateSpec {
	return corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": app}},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "main", Image: image}}},
	}
}

func deploy(name string, replicas, updated, ready int32, revision int64, image string) *appsv1.Deployment {
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default", UID: types.UID("uid-" + name), Generation: 4,
			CreationTimestamp: ago(90 * time.Minute),
			Annotations:       map[string]string{kube.RevisionAnnotation: fmt.Sprint(revision)}},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To(replicas),
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": name}},
			Template: template(name, image),
		},
		Status: appsv1.DeploymentStatus{ObservedGeneration: 4, Replicas: replicas,
			UpdatedReplicas: updated, ReadyReplicas: ready, AvailableReplicas: ready},
	}
}

func replicaSet(d *appsv1.Deployment, revision int64, image, cause string, replicas int32, created time.Duration) *appsv1.ReplicaSet {
	hash := fmt.Sprintf("%s%d", d.Name[:1], revision*1111)
	t := template(d.Name, image)
	t.Labels["pod-template-hash"] = hash
	rs := &appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{
			Name: d.Name + "-" + hash, Namespace: d.Namespace, UID: types.UID(fmt.Sprintf("uid-%s-%d", d.Name, revision)),
			CreationTimestamp: ago(created),
			Labels:            map[string]string{"app": d.Name, "pod-template-hash": hash},
			Annotations:       map[string]string{kube.RevisionAnnotation: fmt.Sprint(revision)},
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "Deployment", Name: d.Name, UID: d.UID,
				Controller: ptr.To(true)}},
		},
		Spec:   appsv1.ReplicaSetSpec{Replicas: ptr.To(replicas), Selector: d.Spec.Selector, Template: t},
		Status: appsv1.ReplicaSetStatus{Replicas: replicas, ReadyReplicas: replicas},
	}
	if cause != "" {
		rs.Annotations[kube.ChangeCauseAnnotation] = cause
	}
	return rs
}

func pod(ns, name, nodeName string, phase corev1.PodPhase, ready bool, restarts int32, created time.Duration) *corev1.Pod {
	cs := corev1.ContainerStatus{Name: "main", Ready: ready, RestartCount: restarts}
	switch {
	case phase == corev1.PodRunning:
		cs.State.Running = &corev1.ContainerStateRunning{StartedAt: ago(created)}
	case phase == corev1.PodSucceeded:
		cs.State.Terminated = &corev1.ContainerStateTerminated{Reason: "Completed"}
	default:
		cs.State.Waiting = &corev1.ContainerStateWaiting{Reason: "ContainerCreating"}
	}
	cond := corev1.ConditionFalse
	if ready {
		cond = corev1.ConditionTrue
	}
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, UID: types.UID("uid-" + name), CreationTimestamp: ago(created),
			Labels: map[string]string{"app": strings.Split(name, "-")[0]}},
		Spec: corev1.PodSpec{NodeName: nodeName, Containers: []corev1.Container{{Name: "main", Image: "registry.invalid/" + name + ":v1"}}},
		Status: corev1.PodStatus{Phase: phase, Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: cond}},
			ContainerStatuses: []corev1.ContainerStatus{cs}},
	}
	if phase == corev1.PodPending && nodeName == "" {
		p.Status.ContainerStatuses = nil
	}
	return p
}

func crashing(p *corev1.Pod) *corev1.Pod {
	p.Status.ContainerStatuses[0].State = corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff"}}
	p.Status.ContainerStatuses[0].Ready = false
	p.Status.Conditions[0].Status = corev1.ConditionFalse
	return p
}

// mounting gives pod p a volume of claim.
func mounting(p *corev1.Pod, volume, claim string) *corev1.Pod {
	p.Spec.Volumes = append(p.Spec.Volumes, corev1.Volume{Name: volume,
		VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: claim}}})
	p.Spec.Containers[0].VolumeMounts = append(p.Spec.Containers[0].VolumeMounts, corev1.VolumeMount{Name: volume, MountPath: "/" + volume})
	return p
}

// standardClass is minik's default StorageClass.
func standardClass() *storagev1.StorageClass {
	return &storagev1.StorageClass{
		ObjectMeta: metav1.ObjectMeta{Name: "standard", UID: "uid-sc-standard", CreationTimestamp: ago(2 * time.Hour),
			Annotations: map[string]string{"storageclass.kubernetes.io/is-default-class": "true"}},
		Provisioner:          "volumes.minik.dev",
		ReclaimPolicy:        ptr.To(corev1.PersistentVolumeReclaimDelete),
		VolumeBindingMode:    ptr.To(storagev1.VolumeBindingWaitForFirstConsumer),
		AllowVolumeExpansion: ptr.To(true),
	}
}

// claim is a ReadWriteOnce claim of class standard; volume "" leaves it
// Pending, as WaitForFirstConsumer does until its pod is scheduled.
func claim(ns, name, size, volume string, uid types.UID, created time.Duration) *corev1.PersistentVolumeClaim {
	c := &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, UID: uid, CreationTimestamp: ago(created)},
		Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes:      []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			StorageClassName: ptr.To("standard"),
			Resources:        corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse(size)}},
		},
		Status: corev1.PersistentVolumeClaimStatus{Phase: corev1.ClaimPending},
	}
	if volume != "" {
		c.Spec.VolumeName = volume
		c.Status = corev1.PersistentVolumeClaimStatus{Phase: corev1.ClaimBound, AccessModes: c.Spec.AccessModes,
			Capacity: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse(size)}}
	}
	return c
}

// volume is a provisioned volume of class standard for claim ns/name, in
// the given phase.
func volume(name, size string, phase corev1.PersistentVolumePhase, reclaim corev1.PersistentVolumeReclaimPolicy, ns, claim string, created time.Duration) *corev1.PersistentVolume {
	return &corev1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{Name: name, UID: types.UID("uid-" + name), CreationTimestamp: ago(created)},
		Spec: corev1.PersistentVolumeSpec{
			Capacity:                      corev1.ResourceList{corev1.ResourceStorage: resource.MustParse(size)},
			AccessModes:                   []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			PersistentVolumeReclaimPolicy: reclaim,
			StorageClassName:              "standard",
			ClaimRef:                      &corev1.ObjectReference{Kind: "PersistentVolumeClaim", Namespace: ns, Name: claim},
			PersistentVolumeSource: corev1.PersistentVolumeSource{
				CSI: &corev1.CSIPersistentVolumeSource{Driver: "volumes.minik.dev", VolumeHandle: name}},
		},
		Status: corev1.PersistentVolumeStatus{Phase: phase},
	}
}

func event(ns, name, typ, reason, kind, obj, msg string, last time.Duration, count int32) *corev1.Event {
	return &corev1.Event{
		ObjectMeta:     metav1.ObjectMeta{Name: name, Namespace: ns, UID: types.UID("uid-ev-" + name), CreationTimestamp: ago(last)},
		InvolvedObject: corev1.ObjectReference{Kind: kind, Namespace: ns, Name: obj, UID: types.UID("uid-" + obj)},
		Type:           typ, Reason: reason, Message: msg, Count: count,
		FirstTimestamp: ago(last), LastTimestamp: ago(last),
	}
}

// cluster is a small, varied cluster: three nodes (one NotReady), a
// deployment at rest with three revisions, one mid-rollout with a crashing
// pod, a finished job pod whose claim is Bound, a pending pod whose claim
// is Pending, a Released volume, the default StorageClass, and events.
func clusterObjects() []runtime.Object {
	web := deploy("web", 3, 3, 3, 3, "registry.invalid/web:v3")
	api := deploy("api", 2, 1, 1, 2, "registry.invalid/api:v2")
	api.Status.Replicas = 3
	return []runtime.Object{
		node("minik", true, "control-plane"), node("minik-m02", true, ""), node("minik-m03", false, ""),
		web,
		replicaSet(web, 1, "registry.invalid/web:v1", "first release", 0, 80*time.Minute),
		replicaSet(web, 2, "registry.invalid/web:v2", "", 0, 60*time.Minute),
		replicaSet(web, 3, "registry.invalid/web:v3", "image v3", 3, 30*time.Minute),
		api,
		replicaSet(api, 1, "registry.invalid/api:v1", "", 1, 70*time.Minute),
		replicaSet(api, 2, "registry.invalid/api:v2", "", 2, 3*time.Minute),
		pod("default", "web-w3333-aaaaa", "minik", corev1.PodRunning, true, 0, 30*time.Minute),
		pod("default", "web-w3333-bbbbb", "minik-m02", corev1.PodRunning, true, 0, 29*time.Minute),
		pod("default", "web-w3333-ccccc", "minik-m02", corev1.PodRunning, true, 2, 28*time.Minute),
		pod("default", "api-a1111-yyyyy", "minik", corev1.PodRunning, true, 0, 70*time.Minute),
		crashing(pod("default", "api-a2222-xxxxx", "minik-m02", corev1.PodRunning, false, 5, 3*time.Minute)),
		mounting(pod("default", "batch-zzzzz", "minik", corev1.PodSucceeded, false, 0, 40*time.Minute), "results", "batch-results"),
		mounting(pod("default", "pending-ppppp", "", corev1.PodPending, false, 0, time.Minute), "scratch", "scratch"),
		pod("kube-system", "coredns-ddddd", "minik", corev1.PodRunning, true, 0, 2*time.Hour),
		standardClass(),
		claim("default", "batch-results", "1Gi", "pvc-3f6d2c1e-8b0a-4c55-9e2f-1a7b9c0d4e21", "3f6d2c1e-8b0a-4c55-9e2f-1a7b9c0d4e21", 40*time.Minute),
		volume("pvc-3f6d2c1e-8b0a-4c55-9e2f-1a7b9c0d4e21", "1Gi", corev1.VolumeBound, corev1.PersistentVolumeReclaimDelete,
			"default", "batch-results", 40*time.Minute),
		claim("default", "scratch", "5Gi", "", "0c9e7b4a-2d1f-4e8a-b6c3-5f7a9d2e1b80", time.Minute),
		volume("pvc-9a1b2c3d-4e5f-4a6b-8c7d-0e1f2a3b4c5d", "2Gi", corev1.VolumeReleased, corev1.PersistentVolumeReclaimRetain,
			"default", "old-data", 5*time.Hour),
		event("default", "api-a2222-xxxxx.1", corev1.EventTypeWarning, "BackOff", "Pod", "api-a2222-xxxxx",
			"Back-off restarting failed container main in pod api-a2222-xxxxx", 2*time.Minute, 7),
		event("default", "pending-ppppp.1", corev1.EventTypeWarning, "FailedScheduling", "Pod", "pending-ppppp",
			"0/3 nodes are available: 1 node(s) were unschedulable,\n2 Insufficient cpu.", time.Minute, 1),
		event("default", "web-w3333-aaaaa.1", corev1.EventTypeNormal, "Scheduled", "Pod", "web-w3333-aaaaa",
			"Successfully assigned default/web-w3333-aaaaa to minik", 30*time.Minute, 1),
		event("default", "web.1", corev1.EventTypeNormal, "ScalingReplicaSet", "Deployment", "web",
			"Scaled up replica set web-w3333 from 0 to 3", 30*time.Minute, 1),
	}
}

// fakeCluster is a kube.Client over fake clientsets, watching.
type fakeCluster struct {
	*kube.Client
	kc *fake.Clientset
	mc *metricsfake.Clientset
}

// serveMetrics makes discovery list metrics.k8s.io and adds usage.
func (f *fakeCluster) serveMetrics(t *testing.T, cpuScale int64) {
	t.Helper()
	disc := f.kc.Discovery().(*fakediscovery.FakeDiscovery)
	if len(disc.Resources) == 0 {
		disc.Resources = []*metav1.APIResourceList{{GroupVersion: kube.MetricsGroupVersion,
			APIResources: []metav1.APIResource{{Name: "pods", Namespaced: true}, {Name: "nodes"}}}}
	}
	usage := func(cpu, mem int64) corev1.ResourceList {
		return corev1.ResourceList{corev1.ResourceCPU: *resource.NewMilliQuantity(cpu, resource.DecimalSI),
			corev1.ResourceMemory: *resource.NewQuantity(mem, resource.BinarySI)}
	}
	// The generated fake lists "pods"/"nodes" of metrics.k8s.io, which the
	// tracker cannot guess from the kinds: store under those resources.
	upsert := func(gvr, ns string, obj runtime.Object) {
		gv := metricsv1beta1.SchemeGroupVersion.WithResource(gvr)
		if err := f.mc.Tracker().Create(gv, obj, ns); err != nil {
			require.NoError(t, f.mc.Tracker().Update(gv, obj, ns))
		}
	}
	for i, n := range []string{"minik", "minik-m02"} {
		upsert("nodes", "", &metricsv1beta1.NodeMetrics{ObjectMeta: metav1.ObjectMeta{Name: n},
			Usage: usage(cpuScale*int64(300+400*i), int64(2+i)<<30)})
	}
	for i, p := range []string{"web-w3333-aaaaa", "web-w3333-bbbbb", "web-w3333-ccccc", "api-a1111-yyyyy"} {
		upsert("pods", "default", &metricsv1beta1.PodMetrics{ObjectMeta: metav1.ObjectMeta{Name: p, Namespace: "default"},
			Containers: []metricsv1beta1.ContainerMetrics{{Name: "main", Usage: usage(cpuScale*int64(10+5*i), int64(16+8*i)<<20)}}})
	}
}

// newFakeCluster starts informers on fake clientsets and waits for them.
func newFakeCluster(t *testing.T, ns string, objs ...runtime.Object) *fakeCluster {
	t.Helper()
	kc := fake.NewClientset(objs...)
	mc := metricsfake.NewSimpleClientset()
	f := &fakeCluster{Client: kube.New(kc, mc, kube.Options{Namespace: ns}), kc: kc, mc: mc}
	f.Watch(t.Context())
	require.NoError(t, f.WaitSynced(t.Context()))
	return f
}

func testOptions(ns string) Options {
	return Options{Target: "profile minik", Namespace: ns, Styles: PlainStyles(), Now: func() time.Time { return now }}
}

// newModel is a dashboard on the fixture cluster, 100x30, with its first
// snapshot, health and metrics poll applied, as Init's commands would.
func newModel(t *testing.T, f *fakeCluster, opts Options) *Model {
	t.Helper()
	m := New(t.Context(), f, opts)
	m.Update(tea.WindowSizeMsg{Width: 100, Height: 30})
	m.Update(snapshotMsg{snap: f.Snapshot()})
	m.Update(healthMsg{})
	m.Update(metricsMsg{m: f.Metrics(t.Context(), now)})
	return m
}

// keyMsg is what a terminal sends for a key named like key.Binding names.
func keyMsg(k string) tea.KeyPressMsg {
	special := map[string]rune{"enter": tea.KeyEnter, "esc": tea.KeyEscape, "tab": tea.KeyTab, "up": tea.KeyUp,
		"down": tea.KeyDown, "left": tea.KeyLeft, "right": tea.KeyRight, "backspace": tea.KeyBackspace,
		"home": tea.KeyHome, "end": tea.KeyEnd, "pgdown": tea.KeyPgDown, "pgup": tea.KeyPgUp}
	switch {
	case k == "shift+tab":
		return tea.KeyPressMsg{Code: tea.KeyTab, Mod: tea.ModShift}
	case k == "ctrl+c":
		return tea.KeyPressMsg{Code: 'c', Mod: tea.ModCtrl}
	case special[k] != 0:
		return tea.KeyPressMsg{Code: special[k]}
	}
	r := []rune(k)[0]
	return tea.KeyPressMsg{Code: r, Text: k}
}

// press sends keys one by one and runs what they start (see run).
func press(t *testing.T, m *Model, keys ...string) {
	t.Helper()
	for _, k := range keys {
		_, cmd := m.Update(keyMsg(k))
		run(t, m, cmd)
	}
}

// run executes a command the way the program would and feeds its message
// back, recursively. Commands that do not answer within 500 ms (ticks,
// the informer wait) are what the program would run in the background;
// the test drops them.
func run(t *testing.T, m *Model, cmd tea.Cmd) {
	t.Helper()
	if cmd == nil {
		return
	}
	done := make(chan tea.Msg, 1)
	go func() { done <- cmd() }()
	var msg tea.Msg
	select {
	case msg = <-done:
	case <-time.After(500 * time.Millisecond):
		return
	}
	switch msg := msg.(type) {
	case nil:
	case tea.BatchMsg:
		for _, c := range msg {
			run(t, m, c)
		}
	default:
		_, next := m.Update(msg)
		run(t, m, next)
	}
}

// screen is the model's current frame.
func screen(m *Model) string { return m.View().Content }
