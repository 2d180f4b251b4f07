package kubelet

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/kubernetes/pkg/apis/core/v1/helper/qos"
	"k8s.io/utils/ptr"

	"minik.dev/minik/kubelet/sim"
)

// podWorkers is how many pods one node syncs at once.
const podWorkers = 16

var everything = labels.Everything()

// podManager runs the pods bound to this node on the sim runtime.
type podManager struct {
	*podQueue
	node     string
	nodeIP   string
	client   kubernetes.Interface
	recorder record.EventRecorder
	ipam     *ipam
	now      func() time.Time

	mu   sync.Mutex
	pods map[types.UID]*podRecord
}

// podRecord is what the agent remembers of a pod between syncs.
type podRecord struct {
	plan   sim.Plan
	warned bool
	// lastStatus is the last status computed, for logs and metrics.
	lastStatus corev1.PodStatus
	// written is the JSON of the last status written: the same status is
	// never written twice, even if the API server normalises it.
	written []byte
	pod     *corev1.Pod
	// usageKey is the usage annotations the plan's CPU and memory come from.
	usageKey [2]string
	// counters integrate each running container's CPU use, by name.
	counters map[string]*cpuCounter
}

func newPodManager(client kubernetes.Interface, node, nodeIP, podCIDR string, recorder record.EventRecorder) (*podManager, informers.SharedInformerFactory, error) {
	pool, err := newIPAM(podCIDR)
	if err != nil {
		return nil, nil, err
	}
	q, factory, err := newPodQueue(client, node, "pods", 50*time.Millisecond)
	if err != nil {
		return nil, nil, err
	}
	m := &podManager{
		podQueue: q,
		node:     node,
		nodeIP:   nodeIP,
		client:   client,
		recorder: recorder,
		ipam:     pool,
		now:      time.Now,
		pods:     map[types.UID]*podRecord{},
	}
	return m, factory, nil
}

// Run syncs pods until ctx is done; the informer must have been started.
func (m *podManager) Run(ctx context.Context) {
	defer m.queue.ShutDown()
	if !cache.WaitForCacheSync(ctx.Done(), m.informer.HasSynced) {
		return
	}
	// IPs already given out survive an agent restart.
	pods, _ := m.lister.List(everything)
	for _, p := range pods {
		if p.Status.PodIP != "" && !p.Spec.HostNetwork {
			m.ipam.Reserve(string(p.UID), p.Status.PodIP)
		}
	}
	m.work(ctx, func(ctx context.Context, key string) (time.Duration, error) {
		next, err := m.sync(ctx, key)
		if err != nil || next.IsZero() {
			return 0, err
		}
		return max(time.Until(next), time.Millisecond), nil
	})
}

// sync brings one pod's API status to what the runtime says now, and returns
// when it will change next.
func (m *podManager) sync(ctx context.Context, key string) (time.Time, error) {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return time.Time{}, nil
	}
	pod, err := m.lister.Pods(ns).Get(name)
	if apierrors.IsNotFound(err) {
		m.forget(key)
		return time.Time{}, nil
	}
	if err != nil {
		return time.Time{}, err
	}
	if pod.Spec.NodeName != m.node {
		return time.Time{}, nil
	}
	rec := m.record(pod)
	now := m.now()

	if pod.DeletionTimestamp != nil {
		return m.terminate(ctx, pod, rec, now)
	}
	if pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
		m.ipam.Release(string(pod.UID))
		return time.Time{}, nil
	}

	// The API keeps StartTime to the second: anchor the timeline there so it
	// does not shift after the first write.
	start := now.Truncate(time.Second)
	if pod.Status.StartTime != nil {
		start = pod.Status.StartTime.Time
	}
	status, next := sim.Status(pod, rec.plan, start, now)
	if err := m.setAddresses(pod, &status); err != nil {
		m.recorder.Event(pod, corev1.EventTypeWarning, "FailedCreatePodSandBox", err.Error())
		return time.Time{}, err
	}
	if err := m.writeStatus(ctx, pod, rec, status); err != nil {
		return time.Time{}, err
	}
	if status.Phase == corev1.PodSucceeded || status.Phase == corev1.PodFailed {
		m.ipam.Release(string(pod.UID))
	}
	return next, nil
}

// terminate stops a deleted pod's containers and removes the pod once they
// have stopped, within its grace period.
func (m *podManager) terminate(ctx context.Context, pod *corev1.Pod, rec *podRecord, now time.Time) (time.Time, error) {
	requested := pod.DeletionTimestamp.Time
	if g := pod.DeletionGracePeriodSeconds; g != nil {
		requested = requested.Add(-time.Duration(*g) * time.Second)
	}
	status, done := sim.Terminating(pod, rec.plan, pod.Status, requested, now)
	if now.Before(done) {
		if err := m.writeStatus(ctx, pod, rec, status); err != nil {
			return time.Time{}, err
		}
		return done, nil
	}
	// The pod object goes away with the delete below: report the stop now.
	for _, ev := range sim.Events(pod, &pod.Status, &status) {
		m.recorder.Event(pod, ev.Type, ev.Reason, ev.Message)
	}
	err := m.client.CoreV1().Pods(pod.Namespace).Delete(ctx, pod.Name, metav1.DeleteOptions{
		GracePeriodSeconds: ptr.To[int64](0),
		Preconditions:      metav1.NewUIDPreconditions(string(pod.UID)),
	})
	if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
		return time.Time{}, fmt.Errorf("delete pod %s/%s: %w", pod.Namespace, pod.Name, err)
	}
	m.ipam.Release(string(pod.UID))
	return time.Time{}, nil
}

func (m *podManager) record(pod *corev1.Pod) *podRecord {
	m.mu.Lock()
	defer m.mu.Unlock()
	rec, ok := m.pods[pod.UID]
	if !ok {
		plan, errs := sim.ParsePlan(pod)
		rec = &podRecord{plan: plan, usageKey: usageKey(pod)}
		m.pods[pod.UID] = rec
		for _, err := range errs {
			m.recorder.Event(pod, corev1.EventTypeWarning, "InvalidAnnotation", err.Error())
		}
	} else {
		m.updateUsage(rec, pod, m.now())
	}
	rec.pod = pod
	return rec
}

func (m *podManager) forget(key string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for uid, rec := range m.pods {
		if rec.pod != nil && rec.pod.Namespace+"/"+rec.pod.Name == key {
			delete(m.pods, uid)
			m.ipam.Release(string(uid))
		}
	}
}

func (m *podManager) setAddresses(pod *corev1.Pod, st *corev1.PodStatus) error {
	st.HostIP = m.nodeIP
	st.HostIPs = []corev1.HostIP{{IP: m.nodeIP}}
	ip := m.nodeIP
	if !pod.Spec.HostNetwork {
		var err error
		if ip, err = m.ipam.Allocate(string(pod.UID)); err != nil {
			return err
		}
	}
	st.PodIP = ip
	st.PodIPs = []corev1.PodIP{{IP: ip}}
	st.QOSClass = pod.Status.QOSClass
	if st.QOSClass == "" {
		st.QOSClass = qos.GetPodQOS(pod)
	}
	return nil
}

// kubeletConditions are the pod conditions a kubelet owns; others (set by the
// scheduler, the taint manager or users) are kept as they are.
var kubeletConditions = map[corev1.PodConditionType]bool{
	corev1.PodReadyToStartContainers: true,
	corev1.PodInitialized:            true,
	corev1.ContainersReady:           true,
	corev1.PodReady:                  true,
}

// writeStatus writes status if it differs from the pod's, and emits the
// events of the transition.
func (m *podManager) writeStatus(ctx context.Context, pod *corev1.Pod, rec *podRecord, status corev1.PodStatus) error {
	status = withAPIFields(pod, status)
	m.mu.Lock()
	last := rec.written
	m.mu.Unlock()
	written, err := putStatus(ctx, m.client, pod, status, last)
	if err != nil {
		return err
	}
	if written != nil {
		for _, ev := range sim.Events(pod, &pod.Status, &status) {
			m.recorder.Event(pod, ev.Type, ev.Reason, ev.Message)
		}
	}
	m.remember(rec, status, written)
	return nil
}

// withAPIFields completes a status the runtime computed with what the API
// holds that the kubelet does not own: the pod's generation, conditions
// others set (the scheduler, the taint manager, users), the nominated
// node, and a reason and message set by others.
func withAPIFields(pod *corev1.Pod, status corev1.PodStatus) corev1.PodStatus {
	status.ObservedGeneration = pod.Generation
	for i := range status.Conditions {
		status.Conditions[i].ObservedGeneration = pod.Generation
	}
	for _, c := range pod.Status.Conditions {
		if kubeletConditions[c.Type] || hasCondition(status.Conditions, c.Type) {
			continue
		}
		status.Conditions = append(status.Conditions, c)
	}
	status.NominatedNodeName = pod.Status.NominatedNodeName
	if status.Reason == "" {
		status.Reason, status.Message = pod.Status.Reason, pod.Status.Message
	}
	return status
}

// putStatus writes status unless the pod has it already or it is what was
// last written (the API server may normalise what it stores, and the same
// status is never written twice). It returns the JSON written, nil when
// nothing was.
func putStatus(ctx context.Context, client kubernetes.Interface, pod *corev1.Pod, status corev1.PodStatus, last []byte) ([]byte, error) {
	newJSON, err := json.Marshal(&status)
	if err != nil {
		return nil, fmt.Errorf("encode pod status: %w", err)
	}
	oldJSON, _ := json.Marshal(&pod.Status)
	if string(newJSON) == string(oldJSON) || string(newJSON) == string(last) {
		return nil, nil
	}
	updated := pod.DeepCopy()
	updated.Status = status
	if _, err := client.CoreV1().Pods(pod.Namespace).UpdateStatus(ctx, updated, metav1.UpdateOptions{}); err != nil {
		return nil, fmt.Errorf("update pod status %s/%s: %w", pod.Namespace, pod.Name, err)
	}
	return newJSON, nil
}

func (m *podManager) remember(rec *podRecord, st corev1.PodStatus, written []byte) {
	m.mu.Lock()
	rec.lastStatus = st
	if written != nil {
		rec.written = written
	}
	m.mu.Unlock()
}

func hasCondition(cs []corev1.PodCondition, t corev1.PodConditionType) bool {
	for _, c := range cs {
		if c.Type == t {
			return true
		}
	}
	return false
}

// snapshot returns the pods this node runs, with their plans and statuses.
func (m *podManager) snapshot() []podView {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]podView, 0, len(m.pods))
	for _, rec := range m.pods {
		if rec.pod == nil {
			continue
		}
		out = append(out, podView{pod: rec.pod, plan: rec.plan, status: rec.lastStatus})
	}
	return out
}

// podView is a consistent copy of one pod's state for the kubelet API.
type podView struct {
	pod    *corev1.Pod
	plan   sim.Plan
	status corev1.PodStatus
}

// lookup finds a pod's view by namespace and name.
func (m *podManager) lookup(namespace, name string) (podView, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, rec := range m.pods {
		if rec.pod != nil && rec.pod.Namespace == namespace && rec.pod.Name == name {
			return podView{pod: rec.pod, plan: rec.plan, status: rec.lastStatus}, true
		}
	}
	return podView{}, false
}
