package autoscaler

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/tools/record"
	"k8s.io/utils/ptr"

	"minik.dev/minik/nodeconfig"
)

var settings = nodeconfig.Autoscale{Min: 0, Max: 2, ScaleDownAfter: time.Minute, CPUMillis: 1000, MemoryBytes: 2 << 30, MaxPods: 110}

func node(name string, cpuMillis int64, controlPlane bool) *corev1.Node {
	capacity := corev1.ResourceList{
		corev1.ResourceCPU:    *resource.NewMilliQuantity(cpuMillis, resource.DecimalSI),
		corev1.ResourceMemory: resource.MustParse("2Gi"),
		corev1.ResourcePods:   resource.MustParse("110"),
	}
	n := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{corev1.LabelHostname: name},
			CreationTimestamp: metav1.NewTime(time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC))},
		Status: corev1.NodeStatus{Capacity: capacity, Allocatable: capacity,
			Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}}},
	}
	if controlPlane {
		n.Labels[nodeconfig.ControlPlaneLabel] = ""
	}
	return n
}

// pod asks for cpu; on "" it is one the scheduler could not place.
func pod(name, cpu, on string) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default", UID: types.UID("uid-" + name),
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: "rs", UID: "rs", Controller: ptr.To(true)}}},
		Spec: corev1.PodSpec{NodeName: on, Containers: []corev1.Container{{Name: "c", Image: "i",
			Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(cpu)}}}}},
		Status: corev1.PodStatus{Phase: corev1.PodPending},
	}
	if on == "" {
		p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodScheduled, Status: corev1.ConditionFalse, Reason: corev1.PodReasonUnschedulable}}
	} else {
		p.Status.Phase = corev1.PodRunning
	}
	return p
}

type harness struct {
	a      *Autoscaler
	client *fake.Clientset
	events *record.FakeRecorder
	clock  time.Time
	// drained is every node the autoscaler drained; refuse fails a drain.
	drained []string
	refuse  bool
}

func newHarness(t *testing.T, s *nodeconfig.Autoscale, objects ...runtime.Object) *harness {
	t.Helper()
	if s != nil {
		objects = append(objects, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: nodeconfig.AutoscalerSettings, Namespace: metav1.NamespaceSystem}, Data: s.Data()})
	}
	client := fake.NewClientset(objects...)
	factory := informers.NewSharedInformerFactory(client, 0)
	events := record.NewFakeRecorder(100)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	a, err := New(ctx, client, factory, events)
	require.NoError(t, err)
	factory.Start(ctx.Done())
	factory.WaitForCacheSync(ctx.Done())
	h := &harness{a: a, client: client, events: events, clock: time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)}
	a.now = func() time.Time { return h.clock }
	a.drain = func(_ context.Context, node string) error {
		if h.refuse {
			return fmt.Errorf("cannot evict pod as it would violate the pod's disruption budget")
		}
		h.drained = append(h.drained, node)
		return nil
	}
	return h
}

func (h *harness) step(t *testing.T) nodeconfig.AutoscaleDecision {
	t.Helper()
	require.NoError(t, h.a.step(context.Background()))
	cm, err := h.client.CoreV1().ConfigMaps(metav1.NamespaceSystem).Get(context.Background(), nodeconfig.AutoscalerDecision, metav1.GetOptions{})
	require.NoError(t, err)
	d, err := nodeconfig.ParseAutoscaleDecision(cm.Data)
	require.NoError(t, err)
	return d
}

func (h *harness) drainEvents() []string {
	var out []string
	for {
		select {
		case e := <-h.events.Events:
			out = append(out, e)
		default:
			return out
		}
	}
}

func TestScaleUp(t *testing.T) {
	selecting := pod("selects", "100m", "")
	selecting.Spec.NodeSelector = map[string]string{"disk": "ssd"}
	tolerated := pod("spread", "100m", "")
	tolerated.Spec.TopologySpreadConstraints = []corev1.TopologySpreadConstraint{{MaxSkew: 1, TopologyKey: corev1.LabelHostname,
		WhenUnsatisfiable: corev1.DoNotSchedule, LabelSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "x"}}}}

	tests := []struct {
		name        string
		pending     []*corev1.Pod
		wantWorkers int
		wantEvents  []string
	}{
		{
			name:        "nothing pending",
			wantWorkers: 0,
		},
		{
			name:        "one worker per pod that fills one, up to max",
			pending:     []*corev1.Pod{pod("a", "600m", ""), pod("b", "600m", ""), pod("c", "600m", "")},
			wantWorkers: 2,
			wantEvents: []string{
				"Normal TriggeredScaleUp pod triggered scale-up: workers 0->2 (max 2)",
				"Normal TriggeredScaleUp pod triggered scale-up: workers 0->2 (max 2)",
				"Normal NotTriggerScaleUp pod didn't trigger scale-up: the cluster has its max of 2 workers",
			},
		},
		{
			name:        "small pods share a worker",
			pending:     []*corev1.Pod{pod("a", "300m", ""), pod("b", "300m", ""), pod("c", "300m", "")},
			wantWorkers: 1,
		},
		{
			name:        "more CPU than a worker has",
			pending:     []*corev1.Pod{pod("big", "4", "")},
			wantWorkers: 0,
			wantEvents:  []string{"Normal NotTriggerScaleUp pod didn't trigger scale-up: it would not fit on a new worker either: Insufficient cpu"},
		},
		{
			name:        "a label no worker has",
			pending:     []*corev1.Pod{selecting},
			wantWorkers: 0,
			wantEvents:  []string{"Normal NotTriggerScaleUp pod didn't trigger scale-up: it would not fit on a new worker either: node(s) didn't match Pod's node affinity/selector"},
		},
		{
			name:        "topology spread",
			pending:     []*corev1.Pod{tolerated},
			wantWorkers: 1,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			objects := []runtime.Object{node("cp", 1000, true), pod("busy", "1", "cp")}
			for _, p := range tc.pending {
				objects = append(objects, p)
			}
			h := newHarness(t, &settings, objects...)
			d := h.step(t)
			assert.Equal(t, tc.wantWorkers, d.Workers)
			got := h.drainEvents()
			if tc.wantEvents == nil {
				if tc.wantWorkers == 0 {
					assert.Empty(t, got)
				}
			} else {
				assert.ElementsMatch(t, tc.wantEvents, got)
			}
			// Asked for: the next look plans the pods on the coming workers.
			d = h.step(t)
			assert.Equal(t, tc.wantWorkers, d.Workers, "no second scale-up for the same pods")
			assert.Empty(t, h.drainEvents(), "each pod is told once")
		})
	}
}

func TestMinWorkers(t *testing.T) {
	s := settings
	s.Min = 1
	h := newHarness(t, &s, node("cp", 1000, true))
	assert.Equal(t, 1, h.step(t).Workers, "MIN workers even with nothing pending")
}

func TestOffWithoutSettings(t *testing.T) {
	h := newHarness(t, nil, node("cp", 1000, true), pod("a", "600m", ""))
	require.NoError(t, h.a.step(context.Background()))
	_, err := h.client.CoreV1().ConfigMaps(metav1.NamespaceSystem).Get(context.Background(), nodeconfig.AutoscalerDecision, metav1.GetOptions{})
	assert.Error(t, err, "no decision while autoscaling is off")
}

func TestScaleDown(t *testing.T) {
	bare := pod("bare", "100m", "w1")
	bare.OwnerReferences = nil
	tests := []struct {
		name       string
		onWorker   []*corev1.Pod
		refuse     bool
		wantRemove bool
		wantEvent  string
	}{
		{name: "idle worker goes", onWorker: []*corev1.Pod{pod("light", "100m", "w1")}, wantRemove: true,
			wantEvent: "Normal ScaleDown Node w1 removed by the autoscaler"},
		{name: "busy worker stays", onWorker: []*corev1.Pod{pod("heavy", "600m", "w1")}},
		{name: "a pod nothing would make again", onWorker: []*corev1.Pod{bare}},
		{name: "pods that fit nowhere else", onWorker: []*corev1.Pod{pod("a", "400m", "w1"), pod("b", "400m", "w1")}},
		{name: "a refused eviction keeps it", onWorker: []*corev1.Pod{pod("guarded", "100m", "w1")}, refuse: true,
			wantEvent: "Warning ScaleDownFailed Scale-down of idle node w1 failed, it stays"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			objects := []runtime.Object{node("cp", 1000, true), pod("cp-load", "500m", "cp"), node("w1", 1000, false),
				&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: nodeconfig.AutoscalerDecision, Namespace: metav1.NamespaceSystem},
					Data: nodeconfig.AutoscaleDecision{Workers: 1}.Data()}}
			for _, p := range tc.onWorker {
				objects = append(objects, p)
			}
			h := newHarness(t, &settings, objects...)
			h.refuse = tc.refuse
			assert.Equal(t, 1, h.step(t).Workers)
			h.clock = h.clock.Add(30 * time.Second)
			assert.Equal(t, 1, h.step(t).Workers, "not before ScaleDownAfter")
			h.clock = h.clock.Add(31 * time.Second)
			d := h.step(t)
			events := strings.Join(h.drainEvents(), "\n")
			if tc.wantRemove {
				assert.Equal(t, nodeconfig.AutoscaleDecision{Workers: 0, Remove: []string{"w1"}}, d)
				assert.Equal(t, []string{"w1"}, h.drained)
			} else {
				assert.Equal(t, nodeconfig.AutoscaleDecision{Workers: 1}, d)
			}
			if tc.wantEvent != "" {
				assert.Contains(t, events, tc.wantEvent)
			} else {
				assert.Empty(t, events)
			}
		})
	}
}

// TestScaleUpVolumeOnAnotherNode: a pod whose claim is bound to a volume
// pinned to a node adds no worker, as the VolumeBinding plugin says.
func TestScaleUpVolumeOnAnotherNode(t *testing.T) {
	pinned := &corev1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{Name: "pv-1"},
		Spec: corev1.PersistentVolumeSpec{
			Capacity:               corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")},
			AccessModes:            []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			PersistentVolumeSource: corev1.PersistentVolumeSource{CSI: &corev1.CSIPersistentVolumeSource{Driver: nodeconfig.VolumeDriver, VolumeHandle: "pv-1"}},
			ClaimRef:               &corev1.ObjectReference{Namespace: "default", Name: "data"},
			NodeAffinity: &corev1.VolumeNodeAffinity{Required: &corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{{
				MatchExpressions: []corev1.NodeSelectorRequirement{{Key: corev1.LabelHostname, Operator: corev1.NodeSelectorOpIn, Values: []string{"cp"}}},
			}}}},
		},
		Status: corev1.PersistentVolumeStatus{Phase: corev1.VolumeBound},
	}
	claim := &corev1.PersistentVolumeClaim{
		// Bound as the PV controller binds.
		ObjectMeta: metav1.ObjectMeta{Name: "data", Namespace: "default", Annotations: map[string]string{"pv.kubernetes.io/bind-completed": "yes"}},
		Spec: corev1.PersistentVolumeClaimSpec{VolumeName: "pv-1", AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources: corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}}},
		Status: corev1.PersistentVolumeClaimStatus{Phase: corev1.ClaimBound},
	}
	p := pod("db", "600m", "")
	p.Spec.Volumes = []corev1.Volume{{Name: "data", VolumeSource: corev1.VolumeSource{
		PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "data"}}}}
	h := newHarness(t, &settings, node("cp", 1000, true), pod("busy", "1", "cp"), pinned, claim, p)
	assert.Equal(t, 0, h.step(t).Workers)
	events := h.drainEvents()
	require.Len(t, events, 1)
	assert.Contains(t, events[0], "NotTriggerScaleUp pod didn't trigger scale-up: it would not fit on a new worker either")
	assert.Contains(t, events[0], "didn't match PersistentVolume's node affinity")
}

// TestScaleDownRetryAfterFailure: a worker whose drain was refused is not
// cordoned again until retryAfterFailure and the idle time have passed.
func TestScaleDownRetryAfterFailure(t *testing.T) {
	h := newHarness(t, &settings, node("cp", 1000, true), node("w1", 1000, false), pod("guarded", "100m", "w1"),
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: nodeconfig.AutoscalerDecision, Namespace: metav1.NamespaceSystem},
			Data: nodeconfig.AutoscaleDecision{Workers: 1}.Data()})
	h.refuse = true
	h.step(t)
	h.clock = h.clock.Add(settings.ScaleDownAfter)
	h.step(t)
	require.Contains(t, strings.Join(h.drainEvents(), "\n"), "ScaleDownFailed")
	h.refuse = false
	h.clock = h.clock.Add(settings.ScaleDownAfter)
	assert.Equal(t, 1, h.step(t).Workers, "not again before retryAfterFailure")
	assert.Empty(t, h.drained)
	h.clock = h.clock.Add(retryAfterFailure)
	assert.Equal(t, nodeconfig.AutoscaleDecision{Workers: 0, Remove: []string{"w1"}}, h.step(t))
}
