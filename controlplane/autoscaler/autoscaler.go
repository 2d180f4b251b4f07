// Package autoscaler is the control plane's half of cluster autoscaling
// (see nodeconfig.Autoscale). Every second it reads the settings the CLI
// wrote, asks the scheduler's own filter plugins where the pods the
// scheduler could not place would fit on workers not made yet and how
// many of those they need, and which underused workers' pods would fit on
// the other nodes. It drains a worker that stayed underused long enough
// (through the eviction API, so PodDisruptionBudgets hold) and writes its
// decision for the host-side agent, which makes and deletes the nodes
// through the cluster's driver. Pods and nodes hear what it did, or why
// not, as events.
package autoscaler

import (
	"context"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/record"
	"k8s.io/klog/v2"
	"k8s.io/kubectl/pkg/drain"

	"minik.dev/minik/nodeconfig"
)

const (
	// loopInterval is how often the autoscaler looks at the cluster.
	loopInterval = time.Second
	// comingFor is how long a new worker that is not Ready yet counts as
	// coming (its pods are planned on it); after that it is left out.
	comingFor = 3 * time.Minute
	// idleShare is the share of a worker's CPU or memory its pods may
	// request for it to count as underused.
	idleShare = 0.5
	// drainTimeout bounds a scale-down's evictions: a PodDisruptionBudget
	// that allows none keeps the node.
	drainTimeout = 20 * time.Second
	// retryAfterFailure is how long a worker whose drain was refused is
	// left alone before it is tried again (the cluster-autoscaler's
	// scale-down delay after failure, shorter for a laptop): it is not
	// cordoned over and over meanwhile.
	retryAfterFailure = 30 * time.Second
)

// Event reasons, the cluster-autoscaler's.
const (
	ReasonTriggeredScaleUp  = "TriggeredScaleUp"
	ReasonNotTriggerScaleUp = "NotTriggerScaleUp"
	ReasonScaleDown         = "ScaleDown"
	ReasonScaleDownFailed   = "ScaleDownFailed"
)

// Autoscaler decides the cluster's workers.
type Autoscaler struct {
	client   kubernetes.Interface
	pods     corelisters.PodLister
	nodes    corelisters.NodeLister
	sim      *simulator
	recorder record.EventRecorder
	now      func() time.Time
	drain    func(ctx context.Context, node string) error

	// unneeded is since when each underused worker has been.
	unneeded map[string]time.Time
	// told is what each pending pod was last told, so it is told once.
	told        map[string]string
	lastScaleUp time.Time
}

// New returns an autoscaler on factory's informers; start the factory
// after New (the scheduler's plugins add informers of their own).
func New(ctx context.Context, client kubernetes.Interface, factory informers.SharedInformerFactory, recorder record.EventRecorder) (*Autoscaler, error) {
	a := &Autoscaler{
		client:   client,
		pods:     factory.Core().V1().Pods().Lister(),
		nodes:    factory.Core().V1().Nodes().Lister(),
		recorder: recorder,
		now:      time.Now,
		unneeded: map[string]time.Time{},
		told:     map[string]string{},
	}
	a.drain = a.drainNode
	sim, err := newSimulator(ctx, client, factory)
	if err != nil {
		return nil, err
	}
	a.sim = sim
	return a, nil
}

// Run decides every loopInterval until ctx is done.
func (a *Autoscaler) Run(ctx context.Context) {
	t := time.NewTicker(loopInterval)
	defer t.Stop()
	for {
		if err := a.step(ctx); err != nil && ctx.Err() == nil {
			klog.ErrorS(err, "autoscaler")
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// settings reads the CLI's settings; ok is false when autoscaling is off.
func (a *Autoscaler) settings(ctx context.Context) (s nodeconfig.Autoscale, ok bool, err error) {
	cm, err := a.client.CoreV1().ConfigMaps(metav1.NamespaceSystem).Get(ctx, nodeconfig.AutoscalerSettings, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return s, false, nil
	}
	if err != nil {
		return s, false, fmt.Errorf("read the autoscaler's settings: %w", err)
	}
	s, err = nodeconfig.ParseAutoscale(cm.Data)
	return s, err == nil, err
}

// decision reads the last decision; ok is false when there is none.
func (a *Autoscaler) decision(ctx context.Context) (d nodeconfig.AutoscaleDecision, ok bool, err error) {
	cm, err := a.client.CoreV1().ConfigMaps(metav1.NamespaceSystem).Get(ctx, nodeconfig.AutoscalerDecision, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return d, false, nil
	}
	if err != nil {
		return d, false, fmt.Errorf("read the autoscaler's decision: %w", err)
	}
	d, err = nodeconfig.ParseAutoscaleDecision(cm.Data)
	if err != nil {
		// A decision nobody can read is made again.
		klog.ErrorS(err, "autoscaler: decision unreadable, making it again")
		return d, false, nil
	}
	return d, true, nil
}

func (a *Autoscaler) writeDecision(ctx context.Context, d nodeconfig.AutoscaleDecision) error {
	cms := a.client.CoreV1().ConfigMaps(metav1.NamespaceSystem)
	cm, err := cms.Get(ctx, nodeconfig.AutoscalerDecision, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		cm = &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: nodeconfig.AutoscalerDecision, Namespace: metav1.NamespaceSystem}, Data: d.Data()}
		_, err = cms.Create(ctx, cm, metav1.CreateOptions{})
	} else if err == nil {
		cm.Data = d.Data()
		_, err = cms.Update(ctx, cm, metav1.UpdateOptions{})
	}
	if err != nil {
		return fmt.Errorf("write the autoscaler's decision: %w", err)
	}
	return nil
}

// isWorker: the autoscaler sizes the driver's workers; the control plane
// and nodes that joined from other machines are not its to remove.
func isWorker(n *corev1.Node) bool {
	_, cp := n.Labels[nodeconfig.ControlPlaneLabel]
	_, joined := n.Labels[nodeconfig.JoinedLabel]
	return !cp && !joined
}

func nodeReady(n *corev1.Node) bool {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// unschedulable says whether the default scheduler gave up on the pod
// for now.
func unschedulable(p *corev1.Pod) bool {
	if p.Spec.NodeName != "" || p.DeletionTimestamp != nil || p.Status.Phase != corev1.PodPending ||
		(p.Spec.SchedulerName != "" && p.Spec.SchedulerName != corev1.DefaultSchedulerName) {
		return false
	}
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodScheduled {
			return c.Status == corev1.ConditionFalse && c.Reason == corev1.PodReasonUnschedulable
		}
	}
	return false
}

func (a *Autoscaler) step(ctx context.Context) error {
	settings, on, err := a.settings(ctx)
	if err != nil || !on {
		return err
	}
	decision, decided, err := a.decision(ctx)
	if err != nil {
		return err
	}
	nodes, err := a.nodes.List(labels.Everything())
	if err != nil {
		return err
	}
	pods, err := a.pods.List(labels.Everything())
	if err != nil {
		return err
	}
	now := a.now()
	byName := map[string]*corev1.Node{}
	for _, n := range nodes {
		byName[n.Name] = n
	}
	// A removed worker leaves the list once its Node is gone.
	var remove []string
	for _, name := range decision.Remove {
		if _, ok := byName[name]; ok {
			remove = append(remove, name)
		}
	}
	// The nodes pods are simulated on: Ready workers and the control
	// plane as they are, new workers not Ready yet as they will be.
	var simNodes, ready, coming []*corev1.Node
	for _, n := range nodes {
		switch {
		case slices.Contains(remove, n.Name):
		case !isWorker(n):
			simNodes = append(simNodes, n)
		case nodeReady(n):
			simNodes = append(simNodes, n)
			ready = append(ready, n)
		case now.Sub(n.CreationTimestamp.Time) < comingFor:
			coming = append(coming, templateNode(n.Name, settings, nil))
		}
	}
	// Workers made by hand count too; the agent never removes a worker
	// on its own, so want is never below what there is.
	registered := len(ready) + len(coming)
	want := registered
	if decided {
		want = max(want, decision.Workers)
	}
	want = min(max(want, settings.Min), max(settings.Max, registered))
	for i := registered; i < want; i++ {
		coming = append(coming, templateNode(fmt.Sprintf("coming-worker-%d", i-registered+1), settings, nil))
	}

	var assigned, pending []*corev1.Pod
	onNode := map[string][]*corev1.Pod{}
	for _, p := range pods {
		switch {
		case unschedulable(p):
			pending = append(pending, p)
		case p.Spec.NodeName != "" && p.Status.Phase != corev1.PodSucceeded && p.Status.Phase != corev1.PodFailed:
			assigned = append(assigned, p)
			onNode[p.Spec.NodeName] = append(onNode[p.Spec.NodeName], p)
		}
	}
	sortPending(pending)
	plan := a.sim.planScaleUp(ctx, settings, simNodes, assigned, pending, coming, settings.Max-want)
	a.tellPods(pending, plan, want, settings)
	if plan.Add > 0 {
		klog.InfoS("autoscaler: scale up", "workers", want, "to", want+plan.Add, "pending", len(pending))
		want += plan.Add
		a.lastScaleUp = now
	} else if len(coming) == 0 && now.Sub(a.lastScaleUp) >= settings.ScaleDownAfter && want > settings.Min {
		if node := a.idleWorker(ctx, simNodes, ready, assigned, onNode, settings, now); node != "" {
			if err := a.drain(ctx, node); err != nil {
				a.recorder.Eventf(byName[node], corev1.EventTypeWarning, ReasonScaleDownFailed, "Scale-down of idle node %s failed, it stays: %v", node, err)
				a.unneeded[node] = now.Add(retryAfterFailure)
			} else {
				a.recorder.Eventf(byName[node], corev1.EventTypeNormal, ReasonScaleDown,
					"Node %s removed by the autoscaler: underused for %s and its pods fit elsewhere (workers %d->%d, min %d)", node, settings.ScaleDownAfter, want, want-1, settings.Min)
				klog.InfoS("autoscaler: scale down", "node", node, "workers", want-1)
				remove = append(remove, node)
				want--
				delete(a.unneeded, node)
			}
		}
	}
	next := nodeconfig.AutoscaleDecision{Workers: want, Remove: remove}
	if !decided || next.Workers != decision.Workers || !slices.Equal(next.Remove, decision.Remove) {
		return a.writeDecision(ctx, next)
	}
	return nil
}

// sortPending puts pods of higher priority first, then older ones, then
// by name: the same pods are planned in the same order at every look.
func sortPending(pods []*corev1.Pod) {
	sort.Slice(pods, func(i, j int) bool {
		pi, pj := priority(pods[i]), priority(pods[j])
		if pi != pj {
			return pi > pj
		}
		ti, tj := pods[i].CreationTimestamp, pods[j].CreationTimestamp
		if !ti.Equal(&tj) {
			return ti.Before(&tj)
		}
		return pods[i].Namespace+"/"+pods[i].Name < pods[j].Namespace+"/"+pods[j].Name
	})
}

func priority(p *corev1.Pod) int32 {
	if p.Spec.Priority != nil {
		return *p.Spec.Priority
	}
	return 0
}

// tellPods records, once per pod and reason, why it did or did not make
// the cluster grow.
func (a *Autoscaler) tellPods(pending []*corev1.Pod, plan scaleUpPlan, want int, s nodeconfig.Autoscale) {
	seen := map[string]bool{}
	for _, p := range pending {
		uid := string(p.UID)
		seen[uid] = true
		var typ, reason, msg string
		switch node, placed := plan.Placed[uid]; {
		case placed && strings.HasPrefix(node, "new-worker-"):
			typ, reason = corev1.EventTypeNormal, ReasonTriggeredScaleUp
			msg = fmt.Sprintf("pod triggered scale-up: workers %d->%d (max %d)", want, want+plan.Add, s.Max)
		case placed:
			continue // it waits for a worker on its way
		case slices.Contains(plan.AtMax, uid):
			typ, reason = corev1.EventTypeNormal, ReasonNotTriggerScaleUp
			msg = fmt.Sprintf("pod didn't trigger scale-up: the cluster has its max of %d workers", s.Max)
		default:
			typ, reason = corev1.EventTypeNormal, ReasonNotTriggerScaleUp
			msg = "pod didn't trigger scale-up: it would not fit on a new worker either: " + plan.NoFit[uid]
		}
		if a.told[uid] == msg {
			continue
		}
		a.told[uid] = msg
		a.recorder.Event(p, typ, reason, msg)
	}
	for uid := range a.told {
		if !seen[uid] {
			delete(a.told, uid)
		}
	}
}

// idleWorker returns the worker that has been underused, with pods that
// fit elsewhere, for longest, once that is ScaleDownAfter; else "".
func (a *Autoscaler) idleWorker(ctx context.Context, simNodes, ready []*corev1.Node, assigned []*corev1.Pod, onNode map[string][]*corev1.Pod, s nodeconfig.Autoscale, now time.Time) string {
	idle := map[string]bool{}
	for _, n := range ready {
		if n.Spec.Unschedulable {
			continue // someone cordoned it: not the autoscaler's to take
		}
		moving, why := movable(onNode[n.Name])
		if why != "" || utilization(n, moving) >= idleShare {
			continue
		}
		if ok, _ := a.sim.fitElsewhere(ctx, n.Name, simNodes, assigned, moving); !ok {
			continue
		}
		idle[n.Name] = true
		if _, ok := a.unneeded[n.Name]; !ok {
			a.unneeded[n.Name] = now
		}
	}
	best := ""
	for name, since := range a.unneeded {
		if !idle[name] {
			delete(a.unneeded, name)
			continue
		}
		if now.Sub(since) >= s.ScaleDownAfter && (best == "" || since.Before(a.unneeded[best])) {
			best = name
		}
	}
	return best
}

// drainNode cordons the node and evicts its pods as `kubectl drain
// --ignore-daemonsets --delete-emptydir-data` does; when an eviction is
// refused past drainTimeout (a PodDisruptionBudget), the node is
// uncordoned and stays.
func (a *Autoscaler) drainNode(ctx context.Context, name string) error {
	node, err := a.client.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("get node %s: %w", name, err)
	}
	h := &drain.Helper{
		Ctx:                 ctx,
		Client:              a.client,
		IgnoreAllDaemonSets: true,
		DeleteEmptyDirData:  true,
		GracePeriodSeconds:  -1,
		Timeout:             drainTimeout,
		Out:                 io.Discard,
		ErrOut:              io.Discard,
	}
	if err := drain.RunCordonOrUncordon(h, node, true); err != nil {
		return fmt.Errorf("cordon node %s: %w", name, err)
	}
	if err := drain.RunNodeDrain(h, name); err != nil {
		if node, gerr := a.client.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{}); gerr == nil {
			_ = drain.RunCordonOrUncordon(h, node, false)
		}
		return fmt.Errorf("drain node %s: %w", name, err)
	}
	return nil
}
