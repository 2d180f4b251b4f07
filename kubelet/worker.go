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
	"k8s.io/klog/v2"
	"k8s.io/kubernetes/pkg/kubelet/lifecycle"
	"k8s.io/utils/ptr"

	"minik.dev/minik/kubelet/runtime"
)

// podWorkers is how many pods one node syncs at once.
const podWorkers = 16

// podWorker runs the pods bound to one node through its runtime, whatever
// the runtime: one queue, one record of each pod, one status writer.
type podWorker struct {
	*podQueue
	node      string
	client    kubernetes.Interface
	runtime   runtime.Runtime
	admission *admission

	// admitting makes admission one pod at a time, so that two pods that
	// cannot both fit are never both admitted.
	admitting sync.Mutex

	mu   sync.Mutex
	pods map[types.UID]*podRecord
}

// podRecord is what the worker remembers of a pod between syncs.
type podRecord struct {
	pod *corev1.Pod
	// status is the last status the runtime reported, as written: what
	// the kubelet API shows.
	status corev1.PodStatus
	// written is the JSON of the last status written: the same status is
	// never written twice, even if the API server normalises it.
	written []byte
	// admitted: the pod fits the node and may run; rejection: why it
	// does not (it never runs).
	admitted  bool
	rejection *lifecycle.PodAdmitResult
	// terminated: a deleted pod whose containers have all stopped. It
	// holds nothing on the node any more, though its record stays until
	// the API server's deletion reaches the informer; the kubelet's
	// admission likewise leaves out pods it knows are terminated (a
	// preemptor bound the moment its victim is gone must fit).
	terminated bool
}

// newPodWorker watches node's pods; the factory must be started by the caller.
func newPodWorker(client kubernetes.Interface, node string, rt runtime.Runtime, recorder record.EventRecorder) (*podWorker, informers.SharedInformerFactory, error) {
	q, factory, err := newPodQueue(client, node, rt.Name()+"-pods", 50*time.Millisecond)
	if err != nil {
		return nil, nil, err
	}
	return &podWorker{podQueue: q, node: node, client: client, runtime: rt,
		admission: newAdmission(client, node, recorder), pods: map[types.UID]*podRecord{}}, factory, nil
}

// Run syncs pods until ctx is done; the informer must have been started.
func (w *podWorker) Run(ctx context.Context) error {
	defer w.queue.ShutDown()
	w.admission.factory.Start(ctx.Done())
	defer w.admission.factory.Shutdown()
	if !cache.WaitForCacheSync(ctx.Done(), w.informer.HasSynced) {
		return ctx.Err()
	}
	w.admission.factory.WaitForCacheSync(ctx.Done())
	pods, err := w.lister.List(labels.Everything())
	if err != nil {
		return fmt.Errorf("list pods: %w", err)
	}
	if err := w.runtime.Prepare(ctx, pods, w.queue.Add); err != nil {
		return fmt.Errorf("prepare the %s runtime: %w", w.runtime.Name(), err)
	}
	// The pods already here are admitted oldest first, as the kubelet
	// admits a batch, before the workers take them in any order.
	byCreation(pods)
	for _, pod := range pods {
		if pod.Spec.NodeName == w.node && pod.DeletionTimestamp == nil && !finished(pod.Status.Phase) {
			if _, err := w.admit(ctx, pod, w.record(pod)); err != nil {
				klog.ErrorS(err, "reject pod", "pod", klog.KObj(pod))
			}
		}
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Add(1)
	go func() {
		defer wg.Done()
		w.runtime.Run(ctx)
	}()
	w.work(ctx, w.sync)
	return nil
}

// sync brings one pod to its spec through the runtime and writes what the
// runtime reports; it returns when to look at the pod again.
func (w *podWorker) sync(ctx context.Context, key string) (time.Duration, error) {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return 0, nil
	}
	pod, err := w.lister.Pods(ns).Get(name)
	if apierrors.IsNotFound(err) {
		return 0, w.forget(ctx, key)
	}
	if err != nil {
		return 0, err
	}
	if pod.Spec.NodeName != w.node {
		return 0, nil
	}
	rec := w.record(pod)
	if pod.DeletionTimestamp != nil {
		return w.kill(ctx, pod, rec)
	}
	if !finished(pod.Status.Phase) {
		if ok, err := w.admit(ctx, pod, rec); !ok || err != nil {
			return 0, err
		}
	}
	res, err := w.runtime.SyncPod(ctx, pod)
	if err != nil {
		return 0, err
	}
	if res.Status != nil {
		left, exceeded := activeDeadline(pod, res.Status, time.Now())
		if exceeded {
			// The runtime stops the containers of a pod that failed on
			// its next sync, which this write causes.
			failDeadlineExceeded(res.Status)
			return 0, w.writeStatus(ctx, pod, rec, *res.Status)
		}
		if left > 0 && (res.Requeue == 0 || left < res.Requeue) {
			res.Requeue = left
		}
	}
	if res.Status != nil {
		if err := w.writeStatus(ctx, pod, rec, *res.Status); err != nil {
			return 0, err
		}
	}
	return res.Requeue, nil
}

// admit says whether the pod may run: once admitted it stays so; a pod
// that does not fit the node beside the admitted pods is rejected, and
// its Failed status is written (again, until the write succeeds).
func (w *podWorker) admit(ctx context.Context, pod *corev1.Pod, rec *podRecord) (bool, error) {
	// Every sync asks: an admitted pod need not wait for another's
	// admission.
	w.mu.Lock()
	admitted := rec.admitted
	w.mu.Unlock()
	if admitted {
		return true, nil
	}
	w.admitting.Lock()
	defer w.admitting.Unlock()
	w.mu.Lock()
	admitted, rejection := rec.admitted, rec.rejection
	var others []*corev1.Pod
	if !admitted && rejection == nil {
		for uid, r := range w.pods {
			if uid != pod.UID && r.admitted && !r.terminated && !finished(r.pod.Status.Phase) && !finished(r.status.Phase) {
				others = append(others, r.pod)
			}
		}
	}
	w.mu.Unlock()
	if admitted {
		return true, nil
	}
	if rejection == nil {
		res := w.admission.admit(ctx, pod, others)
		w.mu.Lock()
		if res.Admit {
			rec.admitted = true
		} else {
			rec.rejection = &res
		}
		w.mu.Unlock()
		if res.Admit {
			return true, nil
		}
		rejection = &res
	}
	return false, w.writeStatus(ctx, pod, rec, rejectedStatus(pod, *rejection))
}

// finished says whether a pod in phase has ended for good.
func finished(phase corev1.PodPhase) bool {
	return phase == corev1.PodSucceeded || phase == corev1.PodFailed
}

// activeDeadline says how long a pod with activeDeadlineSeconds has left
// to run, counted from its start time as the kubelet counts it, or that it
// has run out; a pod without one, or finished, has no deadline.
func activeDeadline(pod *corev1.Pod, status *corev1.PodStatus, now time.Time) (left time.Duration, exceeded bool) {
	secs := pod.Spec.ActiveDeadlineSeconds
	start := status.StartTime
	if secs == nil || start == nil || status.Phase == corev1.PodSucceeded || status.Phase == corev1.PodFailed {
		return 0, false
	}
	left = start.Add(time.Duration(*secs) * time.Second).Sub(now)
	return left, left <= 0
}

// failDeadlineExceeded turns a status into the kubelet's for a pod that
// ran past its activeDeadlineSeconds.
func failDeadlineExceeded(status *corev1.PodStatus) {
	status.Phase = corev1.PodFailed
	status.Reason = "DeadlineExceeded"
	status.Message = "Pod was active on the node longer than the specified deadline"
	for i := range status.Conditions {
		if t := status.Conditions[i].Type; t == corev1.PodReady || t == corev1.ContainersReady {
			status.Conditions[i].Status = corev1.ConditionFalse
			status.Conditions[i].Reason = "PodFailed"
		}
	}
}

// kill stops a deleted pod's containers within its grace period, then
// removes the pod object, as the kubelet does.
func (w *podWorker) kill(ctx context.Context, pod *corev1.Pod, rec *podRecord) (time.Duration, error) {
	res, err := w.runtime.KillPod(ctx, pod)
	if err != nil {
		return 0, err
	}
	if res.Status != nil {
		return res.Requeue, w.writeStatus(ctx, pod, rec, *res.Status)
	}
	w.mu.Lock()
	rec.terminated = true
	w.mu.Unlock()
	err = w.client.CoreV1().Pods(pod.Namespace).Delete(ctx, pod.Name, metav1.DeleteOptions{
		GracePeriodSeconds: ptr.To[int64](0),
		Preconditions:      metav1.NewUIDPreconditions(string(pod.UID)),
	})
	if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
		return 0, fmt.Errorf("delete pod %s/%s: %w", pod.Namespace, pod.Name, err)
	}
	return 0, nil
}

// record returns the pod's record, making it on first sight.
func (w *podWorker) record(pod *corev1.Pod) *podRecord {
	w.mu.Lock()
	defer w.mu.Unlock()
	rec, ok := w.pods[pod.UID]
	if !ok {
		rec = &podRecord{status: pod.Status}
		w.pods[pod.UID] = rec
	}
	rec.pod = pod
	return rec
}

// forget drops the pods gone from the API under key, and what the
// runtime has left of them.
func (w *podWorker) forget(ctx context.Context, key string) error {
	w.mu.Lock()
	var uids []types.UID
	for uid, rec := range w.pods {
		if rec.pod.Namespace+"/"+rec.pod.Name == key {
			uids = append(uids, uid)
		}
	}
	w.mu.Unlock()
	for _, uid := range uids {
		if err := w.runtime.ForgetPod(ctx, uid); err != nil {
			return err
		}
		w.mu.Lock()
		delete(w.pods, uid)
		w.mu.Unlock()
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

// writeStatus is the one status writer: it completes what the runtime
// reported with the fields the API owns, keeps the transition time of
// every condition whose status did not change, and writes the result
// unless the pod has it already.
func (w *podWorker) writeStatus(ctx context.Context, pod *corev1.Pod, rec *podRecord, status corev1.PodStatus) error {
	status = withAPIFields(pod, status)
	w.mu.Lock()
	rec.status = status
	last := rec.written
	w.mu.Unlock()
	written, err := putStatus(ctx, w.client, pod, status, last)
	if err != nil || written == nil {
		return err
	}
	w.mu.Lock()
	rec.written = written
	w.mu.Unlock()
	return nil
}

// withAPIFields completes a status the runtime computed with what the API
// holds that the kubelet does not own: the pod's generation, conditions
// others set (the scheduler, the taint manager, users), the nominated
// node, and a reason and message set by others. A condition whose status
// did not change keeps its transition time.
func withAPIFields(pod *corev1.Pod, status corev1.PodStatus) corev1.PodStatus {
	status.ObservedGeneration = pod.Generation
	for i := range status.Conditions {
		c := &status.Conditions[i]
		c.ObservedGeneration = pod.Generation
		for _, old := range pod.Status.Conditions {
			if old.Type == c.Type && old.Status == c.Status {
				c.LastTransitionTime = old.LastTransitionTime
			}
		}
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

func hasCondition(cs []corev1.PodCondition, t corev1.PodConditionType) bool {
	for _, c := range cs {
		if c.Type == t {
			return true
		}
	}
	return false
}

// podView is a consistent copy of one pod's state for the kubelet API.
type podView struct {
	pod    *corev1.Pod
	status corev1.PodStatus
}

// snapshot returns the pods this node runs, with their statuses.
func (w *podWorker) snapshot() []podView {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make([]podView, 0, len(w.pods))
	for _, rec := range w.pods {
		out = append(out, podView{pod: rec.pod, status: rec.status})
	}
	return out
}

// lookup finds a pod's view by namespace and name.
func (w *podWorker) lookup(namespace, name string) (podView, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, rec := range w.pods {
		if rec.pod.Namespace == namespace && rec.pod.Name == name {
			return podView{pod: rec.pod, status: rec.status}, true
		}
	}
	return podView{}, false
}
