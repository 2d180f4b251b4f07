package autoscaler

import (
	"context"
	"fmt"
	"runtime"
	"slices"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	fwk "k8s.io/kube-scheduler/framework"
	"k8s.io/kubernetes/pkg/scheduler/apis/config"
	"k8s.io/kubernetes/pkg/scheduler/apis/config/latest"
	"k8s.io/kubernetes/pkg/scheduler/backend/cache"
	"k8s.io/kubernetes/pkg/scheduler/framework"
	"k8s.io/kubernetes/pkg/scheduler/framework/plugins"
	"k8s.io/kubernetes/pkg/scheduler/framework/plugins/names"
	frameworkruntime "k8s.io/kubernetes/pkg/scheduler/framework/runtime"
	schedulermetrics "k8s.io/kubernetes/pkg/scheduler/metrics"

	"minik.dev/minik/nodeconfig"
)

// filterPlugins are the scheduler's plugins that decide whether a pod can
// run on a node at all (scoring plays no part in it): requests, ports,
// node name, selectors and affinity, taints and tolerations, inter-pod
// affinity, topology spread and the claims' volumes. The rest of the
// default profile binds, preempts or needs state the simulation has not.
var filterPlugins = sets.New(
	names.PrioritySort, names.DefaultBinder,
	names.NodeUnschedulable, names.NodeName, names.TaintToleration, names.NodeAffinity, names.NodePorts,
	names.NodeResourcesFit, names.VolumeBinding, names.PodTopologySpread, names.InterPodAffinity,
)

// simulator asks the scheduler's filter plugins whether pods fit on
// nodes, real or not yet made, of a cluster snapshot it can replace.
type simulator struct {
	fw     framework.Framework
	lister *snapshotLister
}

// snapshotLister is the scheduler framework's view of the cluster: the
// snapshot of the current simulation step.
type snapshotLister struct{ *cache.Snapshot }

func newSimulator(ctx context.Context, client kubernetes.Interface, factory informers.SharedInformerFactory) (*simulator, error) {
	cfg, err := latest.Default()
	if err != nil {
		return nil, fmt.Errorf("scheduler defaults: %w", err)
	}
	// Its plugins count their runs in the scheduler's metrics, under a
	// profile of their own.
	schedulermetrics.Register()
	profile := cfg.Profiles[0]
	profile.SchedulerName = "minik-autoscaler-simulation"
	var enabled []config.Plugin
	for _, p := range profile.Plugins.MultiPoint.Enabled {
		if filterPlugins.Has(p.Name) {
			enabled = append(enabled, p)
		}
	}
	profile.Plugins.MultiPoint.Enabled = enabled
	lister := &snapshotLister{Snapshot: cache.NewSnapshot(nil, nil)}
	fw, err := frameworkruntime.NewFramework(ctx, plugins.NewInTreeRegistry(), &profile,
		frameworkruntime.WithClientSet(client),
		frameworkruntime.WithInformerFactory(factory),
		frameworkruntime.WithSnapshotSharedLister(lister),
		frameworkruntime.WithParallelism(1))
	if err != nil {
		return nil, fmt.Errorf("scheduler framework: %w", err)
	}
	return &simulator{fw: fw, lister: lister}, nil
}

// load makes nodes, with pods on them (pods' NodeName), the simulated
// cluster.
func (s *simulator) load(pods []*corev1.Pod, nodes []*corev1.Node) {
	s.lister.Snapshot = cache.NewSnapshot(pods, nodes)
}

// fits says whether pod may run on node of the loaded cluster; when not,
// the status says why (the scheduler's own reasons).
func (s *simulator) fits(ctx context.Context, pod *corev1.Pod, node string) *fwk.Status {
	state := framework.NewCycleState()
	res, st, _ := s.fw.RunPreFilterPlugins(ctx, state, pod)
	if !st.IsSuccess() {
		return st
	}
	if !res.AllNodes() && !res.NodeNames.Has(node) {
		return fwk.NewStatus(fwk.UnschedulableAndUnresolvable, "the pod is for other nodes")
	}
	ni, err := s.lister.NodeInfos().Get(node)
	if err != nil {
		return fwk.AsStatus(err)
	}
	return s.fw.RunFilterPlugins(ctx, state, pod, ni)
}

// place returns the first of candidates that pod fits on, or "" and why
// it fits on none (the reason on the last one tried).
func (s *simulator) place(ctx context.Context, pod *corev1.Pod, candidates []string) (string, *fwk.Status) {
	var last *fwk.Status
	for _, n := range candidates {
		st := s.fits(ctx, pod, n)
		if st.IsSuccess() {
			return n, nil
		}
		last = st
	}
	return "", last
}

// templateNode is a worker the agent would make: named name, with the
// settings' capacity and the labels of like (an existing worker), if any.
func templateNode(name string, a nodeconfig.Autoscale, like *corev1.Node) *corev1.Node {
	labels := map[string]string{
		corev1.LabelOSStable:   runtime.GOOS,
		corev1.LabelArchStable: runtime.GOARCH,
	}
	if like != nil {
		for k, v := range like.Labels {
			labels[k] = v
		}
	}
	labels[corev1.LabelHostname] = name
	capacity := corev1.ResourceList{
		corev1.ResourceCPU:    *resource.NewMilliQuantity(a.CPUMillis, resource.DecimalSI),
		corev1.ResourceMemory: *resource.NewQuantity(a.MemoryBytes, resource.BinarySI),
		corev1.ResourcePods:   *resource.NewQuantity(int64(a.MaxPods), resource.DecimalSI),
	}
	return &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels},
		Status: corev1.NodeStatus{
			Capacity: capacity, Allocatable: capacity.DeepCopy(),
			Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}},
		},
	}
}

// onNode is a copy of pod placed on node.
func onNode(pod *corev1.Pod, node string) *corev1.Pod {
	p := pod.DeepCopy()
	p.Spec.NodeName = node
	return p
}

// scaleUpPlan is what a scale-up simulation found.
type scaleUpPlan struct {
	// Add is how many workers to add beyond those coming already.
	Add int
	// Placed maps a pending pod's UID to the new (or coming) worker it
	// would run on.
	Placed map[string]string
	// NoFit says why a pending pod would not fit on a new worker; AtMax
	// holds pods that would, but MAX is reached.
	NoFit map[string]string
	AtMax []string
}

// planScaleUp places pending pods on workers not made yet: first on the
// coming ones (upcoming, made or asked for but not Ready), then on as
// many new ones as they need, up to room. A pod is tried on a new worker
// only where it fits on none opened before, so workers fill up in turn.
func (s *simulator) planScaleUp(ctx context.Context, a nodeconfig.Autoscale, nodes []*corev1.Node, assigned, pending []*corev1.Pod, upcoming []*corev1.Node, room int) scaleUpPlan {
	plan := scaleUpPlan{Placed: map[string]string{}, NoFit: map[string]string{}}
	pods := slices.Clone(assigned)
	opened := slices.Clone(upcoming)
	var like *corev1.Node
	for _, n := range nodes {
		if _, cp := n.Labels[nodeconfig.ControlPlaneLabel]; !cp {
			like = n
			break
		}
	}
	names := func() []string {
		out := make([]string, len(opened))
		for i, n := range opened {
			out[i] = n.Name
		}
		return out
	}
	reload := func() { s.load(pods, append(slices.Clone(nodes), opened...)) }
	reload()
	for _, pod := range pending {
		if node, _ := s.place(ctx, pod, names()); node != "" {
			pods = append(pods, onNode(pod, node))
			plan.Placed[string(pod.UID)] = node
			reload()
			continue
		}
		fresh := templateNode(fmt.Sprintf("new-worker-%d", plan.Add+1), a, like)
		opened = append(opened, fresh)
		reload()
		if st := s.fits(ctx, pod, fresh.Name); !st.IsSuccess() {
			opened = opened[:len(opened)-1]
			plan.NoFit[string(pod.UID)] = st.Message()
			reload()
			continue
		}
		if plan.Add+1 > room {
			opened = opened[:len(opened)-1]
			plan.AtMax = append(plan.AtMax, string(pod.UID))
			reload()
			continue
		}
		plan.Add++
		pods = append(pods, onNode(pod, fresh.Name))
		plan.Placed[string(pod.UID)] = fresh.Name
		reload()
	}
	return plan
}

// movable says which of a node's pods must go elsewhere for the node to
// go (DaemonSet and static pods go with it), or why the node must stay:
// a pod no controller would make again.
func movable(pods []*corev1.Pod) ([]*corev1.Pod, string) {
	var out []*corev1.Pod
	for _, p := range pods {
		if p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed || p.DeletionTimestamp != nil {
			continue
		}
		if _, mirror := p.Annotations[corev1.MirrorPodAnnotationKey]; mirror {
			continue
		}
		owner := metav1.GetControllerOf(p)
		if owner != nil && owner.Kind == "DaemonSet" {
			continue
		}
		if owner == nil {
			return nil, fmt.Sprintf("pod %s/%s is run by no controller, so nothing would make it again elsewhere", p.Namespace, p.Name)
		}
		out = append(out, p)
	}
	return out, ""
}

// utilization is the larger of the CPU and memory the node's pods request
// (DaemonSets' and static pods' left out), as a share of what it has.
func utilization(node *corev1.Node, pods []*corev1.Pod) float64 {
	var cpu, mem int64
	for _, p := range pods {
		for _, c := range p.Spec.Containers {
			cpu += c.Resources.Requests.Cpu().MilliValue()
			mem += c.Resources.Requests.Memory().Value()
		}
	}
	share := 0.0
	if alloc := node.Status.Allocatable.Cpu().MilliValue(); alloc > 0 {
		share = float64(cpu) / float64(alloc)
	}
	if alloc := node.Status.Allocatable.Memory().Value(); alloc > 0 {
		share = max(share, float64(mem)/float64(alloc))
	}
	return share
}

// fitElsewhere says whether the pods can all run on the other nodes (not
// the one they are leaving), placed one after another; if not, why.
func (s *simulator) fitElsewhere(ctx context.Context, leaving string, nodes []*corev1.Node, assigned, moving []*corev1.Pod) (bool, string) {
	var others []*corev1.Node
	var candidates []string
	for _, n := range nodes {
		if n.Name != leaving {
			others = append(others, n)
			candidates = append(candidates, n.Name)
		}
	}
	var pods []*corev1.Pod
	for _, p := range assigned {
		if p.Spec.NodeName != leaving {
			pods = append(pods, p)
		}
	}
	s.load(pods, others)
	for _, p := range moving {
		free := p.DeepCopy()
		free.Spec.NodeName = ""
		node, st := s.place(ctx, free, candidates)
		if node == "" {
			why := "no other node"
			if st != nil {
				why = st.Message()
			}
			return false, fmt.Sprintf("pod %s/%s fits on no other node: %s", p.Namespace, p.Name, why)
		}
		pods = append(pods, onNode(free, node))
		s.load(pods, others)
	}
	return true, ""
}
