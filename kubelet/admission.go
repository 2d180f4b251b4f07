package kubelet

import (
	"context"
	"fmt"
	"sort"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/record"
	"k8s.io/kubernetes/pkg/apis/core/v1/helper/qos"
	"k8s.io/kubernetes/pkg/kubelet/lifecycle"
	schedulerframework "k8s.io/kubernetes/pkg/scheduler/framework"
)

// admission decides, as the kubelet does before it runs a pod, whether a
// pod fits its node beside the pods admitted before it: host ports,
// resources, node name, selector and affinity, NoExecute taints and the
// OS. The scheduler checks the same, but a pod bound by hand or on a
// stale view skips it; a pod that does not fit is rejected (it fails
// without running) and its controller makes another.
type admission struct {
	node     string
	client   kubernetes.Interface
	nodes    corelisters.NodeLister
	factory  informers.SharedInformerFactory
	handler  lifecycle.PodAdmitHandler
	recorder record.EventRecorder
}

// newAdmission watches node's Node object; the factory must be started.
func newAdmission(client kubernetes.Interface, node string, recorder record.EventRecorder) *admission {
	factory := informers.NewSharedInformerFactoryWithOptions(client, 0,
		informers.WithTweakListOptions(func(o *metav1.ListOptions) {
			o.FieldSelector = fields.OneTermEqualSelector("metadata.name", node).String()
		}))
	a := &admission{node: node, client: client, factory: factory, recorder: recorder}
	a.nodes = factory.Core().V1().Nodes().Lister()
	a.handler = lifecycle.NewPredicateAdmitHandler(a.getNode,
		// No critical-pod preemption: a node of a local cluster evicts
		// nothing to make room, so a failure stands as it is.
		lifecycle.NewAdmissionFailureHandlerStub(),
		// A node agent serves no device plugins: no plugin resources to add.
		func(*schedulerframework.NodeInfo, *lifecycle.PodAdmitAttributes) error { return nil })
	return a
}

// getNode is the kubelet's view of its Node: the watched copy, or the
// API server's when the caller asks for it fresh.
func (a *admission) getNode(ctx context.Context, useCache bool) (*corev1.Node, error) {
	if useCache {
		node, err := a.nodes.Get(a.node)
		if err == nil {
			return node, nil
		}
		if !apierrors.IsNotFound(err) {
			return nil, err
		}
	}
	node, err := a.client.CoreV1().Nodes().Get(ctx, a.node, metav1.GetOptions{})
	if err != nil {
		return nil, fmt.Errorf("get node %s: %w", a.node, err)
	}
	return node, nil
}

// admit says whether pod may run beside others (the node's admitted,
// unfinished pods), and records why not.
func (a *admission) admit(ctx context.Context, pod *corev1.Pod, others []*corev1.Pod) lifecycle.PodAdmitResult {
	res := a.handler.Admit(ctx, &lifecycle.PodAdmitAttributes{Pod: pod, OtherPods: others, Operation: lifecycle.AddOperation})
	if !res.Admit {
		a.recorder.Eventf(pod, corev1.EventTypeWarning, res.Reason, "%s", res.Message)
	}
	return res
}

// rejectedStatus is the status the kubelet writes for a pod it rejected.
func rejectedStatus(pod *corev1.Pod, res lifecycle.PodAdmitResult) corev1.PodStatus {
	return corev1.PodStatus{
		QOSClass: qos.GetPodQOS(pod),
		Phase:    corev1.PodFailed,
		Reason:   res.Reason,
		Message:  "Pod was rejected: " + res.Message,
	}
}

// byCreation orders pods as the kubelet admits a batch: oldest first, so
// that of two pods that cannot both fit, the older one runs.
func byCreation(pods []*corev1.Pod) {
	sort.SliceStable(pods, func(i, j int) bool {
		return pods[i].CreationTimestamp.Before(&pods[j].CreationTimestamp)
	})
}
