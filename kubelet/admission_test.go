package kubelet

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/tools/record"
	"k8s.io/utils/ptr"

	"minik.dev/minik/kubelet/runtime/sim"
)

func admissionNode() *corev1.Node {
	capacity := corev1.ResourceList{
		corev1.ResourceCPU:    resource.MustParse("2"),
		corev1.ResourceMemory: resource.MustParse("4Gi"),
		corev1.ResourcePods:   resource.MustParse("110"),
	}
	return &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: "n1", Labels: map[string]string{
			corev1.LabelHostname: "n1", corev1.LabelOSStable: "linux", "disk": "ssd"}},
		Spec:   corev1.NodeSpec{Taints: []corev1.Taint{{Key: "dedicated", Value: "db", Effect: corev1.TaintEffectNoSchedule}}},
		Status: corev1.NodeStatus{Capacity: capacity, Allocatable: capacity},
	}
}

// admissionPod is a pod bound to n1 by hand: the scheduler checked nothing.
func admissionPod(name string, edit func(*corev1.Pod)) *corev1.Pod {
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name, UID: types.UID(name)},
		Spec:       corev1.PodSpec{NodeName: "n1", Containers: []corev1.Container{{Name: "c", Image: "i"}}},
		Status:     corev1.PodStatus{Phase: corev1.PodPending},
	}
	if edit != nil {
		edit(pod)
	}
	return pod
}

func hostPort(port int32) func(*corev1.Pod) {
	return func(p *corev1.Pod) {
		p.Spec.Containers[0].Ports = []corev1.ContainerPort{{ContainerPort: 8080, HostPort: port, Protocol: corev1.ProtocolTCP}}
	}
}

func requests(cpu string) func(*corev1.Pod) {
	return func(p *corev1.Pod) {
		p.Spec.Containers[0].Resources.Requests = corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(cpu)}
	}
}

func TestAdmit(t *testing.T) {
	finishedWithPort := admissionPod("done", hostPort(80))
	finishedWithPort.Status.Phase = corev1.PodSucceeded
	tests := []struct {
		name       string
		admitted   []*corev1.Pod // admitted before, in this order
		pod        *corev1.Pod
		wantReason string // "" means admitted
	}{
		{name: "fits", admitted: []*corev1.Pod{admissionPod("web", hostPort(80))}, pod: admissionPod("p", hostPort(81))},
		{name: "host port taken", admitted: []*corev1.Pod{admissionPod("web", hostPort(80))}, pod: admissionPod("p", hostPort(80)), wantReason: "NodePorts"},
		{name: "host port of a finished pod", admitted: []*corev1.Pod{finishedWithPort}, pod: admissionPod("p", hostPort(80))},
		{name: "out of cpu", admitted: []*corev1.Pod{admissionPod("big", requests("1500m"))}, pod: admissionPod("p", requests("1")), wantReason: "OutOfcpu"},
		{name: "node selector", pod: admissionPod("p", func(p *corev1.Pod) { p.Spec.NodeSelector = map[string]string{"disk": "hdd"} }), wantReason: "NodeAffinity"},
		{name: "node selector matches", pod: admissionPod("p", func(p *corev1.Pod) { p.Spec.NodeSelector = map[string]string{"disk": "ssd"} })},
		{name: "another node's name", pod: admissionPod("p", func(p *corev1.Pod) { p.Spec.NodeName = "n2" }), wantReason: "NodeName"},
		{name: "os label", pod: admissionPod("p", func(p *corev1.Pod) { p.Labels = map[string]string{corev1.LabelOSStable: "windows"} }), wantReason: "PodOSSelectorNodeLabelDoesNotMatch"},
		{name: "os field", pod: admissionPod("p", func(p *corev1.Pod) { p.Spec.OS = &corev1.PodOS{Name: corev1.Windows} }), wantReason: "PodOSNotSupported"},
		{name: "NoSchedule taints are the scheduler's", pod: admissionPod("p", nil)},
		{name: "untolerated NoExecute taint", pod: admissionPod("p", nil), wantReason: "TaintToleration"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			node := admissionNode()
			if tt.name == "untolerated NoExecute taint" {
				node.Spec.Taints = append(node.Spec.Taints, corev1.Taint{Key: "evict", Effect: corev1.TaintEffectNoExecute})
			}
			client := fake.NewClientset(node, tt.pod)
			recorder := record.NewFakeRecorder(10)
			w := &podWorker{node: "n1", client: client, admission: newAdmission(client, "n1", recorder), pods: map[types.UID]*podRecord{}}
			for _, p := range tt.admitted {
				rec := w.record(p)
				rec.admitted = true
			}

			ok, err := w.admit(ctx, tt.pod, w.record(tt.pod))
			require.NoError(t, err)
			got, err := client.CoreV1().Pods("default").Get(ctx, tt.pod.Name, metav1.GetOptions{})
			require.NoError(t, err)
			if tt.wantReason == "" {
				assert.True(t, ok)
				assert.Equal(t, corev1.PodPending, got.Status.Phase, "an admitted pod's status is the runtime's to write")
				assert.Empty(t, recorder.Events)
				return
			}
			assert.False(t, ok)
			assert.Equal(t, corev1.PodFailed, got.Status.Phase)
			assert.Equal(t, tt.wantReason, got.Status.Reason)
			assert.Contains(t, got.Status.Message, "Pod was rejected: ")
			require.Len(t, recorder.Events, 1)
			assert.Contains(t, <-recorder.Events, "Warning "+tt.wantReason)
		})
	}
}

// A rejected pod stays rejected once what it conflicted with is gone, as
// with the kubelet: its controller makes a new pod, which is admitted.
func TestRejectedStaysRejected(t *testing.T) {
	ctx := context.Background()
	web, late := admissionPod("web", hostPort(80)), admissionPod("late", hostPort(80))
	client := fake.NewClientset(admissionNode(), web, late)
	w := &podWorker{node: "n1", client: client, admission: newAdmission(client, "n1", record.NewFakeRecorder(10)), pods: map[types.UID]*podRecord{}}

	ok, err := w.admit(ctx, web, w.record(web))
	require.NoError(t, err)
	require.True(t, ok)
	ok, err = w.admit(ctx, late, w.record(late))
	require.NoError(t, err)
	require.False(t, ok)

	w.mu.Lock()
	delete(w.pods, web.UID)
	w.mu.Unlock()
	ok, err = w.admit(ctx, late, w.record(late))
	require.NoError(t, err)
	assert.False(t, ok)

	again := admissionPod("late-2", hostPort(80))
	_, err = client.CoreV1().Pods("default").Create(ctx, again, metav1.CreateOptions{})
	require.NoError(t, err)
	ok, err = w.admit(ctx, again, w.record(again))
	require.NoError(t, err)
	assert.True(t, ok)
}

func TestByCreation(t *testing.T) {
	at := func(name string, sec int64) *corev1.Pod {
		return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, CreationTimestamp: metav1.Unix(sec, 0)}}
	}
	pods := []*corev1.Pod{at("c", 30), at("a", 10), at("b", 20)}
	byCreation(pods)
	var names []string
	for _, p := range pods {
		names = append(names, p.Name)
	}
	assert.Equal(t, []string{"a", "b", "c"}, names)
}

// BenchmarkAdmit is one pod's admission on a node that already runs 0,
// 10 or 100 pods: the cost admission adds to each new pod (#21 counts
// pods/s). The upstream handler sums the requests of every pod on the
// node each time, so it grows with them.
func BenchmarkAdmit(b *testing.B) {
	for _, running := range []int{0, 10, 100} {
		b.Run(fmt.Sprintf("running=%d", running), func(b *testing.B) {
			ctx := context.Background()
			client := fake.NewClientset(admissionNode())
			w := &podWorker{node: "n1", client: client, admission: newAdmission(client, "n1", record.NewFakeRecorder(10)), pods: map[types.UID]*podRecord{}}
			// The Node from the watch, as in the agent.
			stop := make(chan struct{})
			defer close(stop)
			w.admission.factory.Start(stop)
			w.admission.factory.WaitForCacheSync(stop)
			for i := range running {
				p := admissionPod(fmt.Sprintf("running-%d", i), requests("10m"))
				w.record(p).admitted = true
			}
			pod := admissionPod("new", requests("10m"))
			for b.Loop() {
				rec := w.record(pod)
				rec.admitted, rec.rejection = false, nil
				if ok, err := w.admit(ctx, pod, rec); !ok || err != nil {
					b.Fatal(ok, err)
				}
			}
		})
	}
}

// A pod already admitted does not wait while another pod is admitted.
func TestAdmittedDoesNotWait(t *testing.T) {
	client := fake.NewClientset(admissionNode())
	w := &podWorker{node: "n1", client: client, admission: newAdmission(client, "n1", record.NewFakeRecorder(10)), pods: map[types.UID]*podRecord{}}
	pod := admissionPod("web", nil)
	w.record(pod).admitted = true
	w.admitting.Lock() // another pod's admission under way
	defer w.admitting.Unlock()
	done := make(chan bool)
	go func() {
		ok, _ := w.admit(context.Background(), pod, w.record(pod))
		done <- ok
	}()
	select {
	case ok := <-done:
		assert.True(t, ok)
	case <-time.After(5 * time.Second):
		t.Fatal("an admitted pod's sync waited for another admission")
	}
}

// A deleted pod whose containers have stopped holds nothing on the node,
// even before its deletion reaches the informer: the scheduler binds a
// preemptor as soon as the victim is gone from the API server.
func TestTerminatedPodFreesTheNode(t *testing.T) {
	ctx := context.Background()
	victim := admissionPod("victim", requests("1500m"))
	victim.DeletionTimestamp = &metav1.Time{Time: time.Now().Add(-time.Second)}
	victim.DeletionGracePeriodSeconds = ptr.To[int64](0)
	preemptor := admissionPod("preemptor", requests("1"))
	client := fake.NewClientset(admissionNode(), victim, preemptor)
	recorder := record.NewFakeRecorder(10)
	rt := sim.New("10.0.0.1", "v1.37.2", func(context.Context) (string, error) { return "10.244.0.0/24", nil }, recorder, nil)
	require.NoError(t, rt.Prepare(ctx, nil, func(string) {}))
	w := &podWorker{node: "n1", client: client, runtime: rt, admission: newAdmission(client, "n1", recorder), pods: map[types.UID]*podRecord{}}
	w.record(victim).admitted = true

	_, err := w.kill(ctx, victim, w.record(victim))
	require.NoError(t, err)
	_, err = client.CoreV1().Pods("default").Get(ctx, victim.Name, metav1.GetOptions{})
	require.True(t, apierrors.IsNotFound(err), "the victim is removed from the API server: %v", err)

	ok, err := w.admit(ctx, preemptor, w.record(preemptor))
	require.NoError(t, err)
	assert.True(t, ok, "the preemptor fits once the victim has stopped")
}
