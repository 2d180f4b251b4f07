// Package simload drives the simulated CPU use of whole workloads: a
// ConfigMap named minik-load in a namespace maps an app (the value of the
// pods' "app" label) to the total CPU it uses, e.g. `web: 800m`. The
// controller splits that total evenly across the app's ready pods and writes
// each pod's share to its minik.dev/cpu annotation, which the node agent
// applies live. Raising or lowering the total, or a change in the number of
// ready pods (a HorizontalPodAutoscaler scaling), re-splits it at once.
package simload

import (
	"context"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/klog/v2"
)

const (
	// ConfigMapName is the ConfigMap a namespace's load comes from.
	ConfigMapName = "minik-load"
	// AppLabel is the pod label the ConfigMap's keys name.
	AppLabel = "app"
	// CPUAnnotation is where each pod's share goes (sim.AnnotationCPU).
	CPUAnnotation = "minik.dev/cpu"
)

// Controller keeps pods' CPU annotations at their share of their app's load.
type Controller struct {
	client   kubernetes.Interface
	pods     corelisters.PodLister
	maps     corelisters.ConfigMapLister
	synced   []cache.InformerSynced
	queue    workqueue.TypedRateLimitingInterface[string]
	recorder record.EventRecorder
	// warned remembers the bad values already reported, so each becomes one event.
	warned map[string]string
}

// New watches pods and minik-load ConfigMaps through the given factories;
// the ConfigMap factory should select metadata.name=minik-load (see
// ConfigMapSelector) so that only those are cached.
func New(client kubernetes.Interface, pods informers.SharedInformerFactory, maps informers.SharedInformerFactory, recorder record.EventRecorder) (*Controller, error) {
	podInformer := pods.Core().V1().Pods()
	mapInformer := maps.Core().V1().ConfigMaps()
	c := &Controller{
		client: client,
		pods:   podInformer.Lister(),
		maps:   mapInformer.Lister(),
		synced: []cache.InformerSynced{podInformer.Informer().HasSynced, mapInformer.Informer().HasSynced},
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(
			workqueue.NewTypedItemExponentialFailureRateLimiter[string](100*time.Millisecond, 10*time.Second),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "minik-load"}),
		recorder: recorder,
		warned:   map[string]string{},
	}
	onMap := func(obj any) {
		if m, ok := meta(obj); ok && m.GetName() == ConfigMapName {
			c.queue.Add(m.GetNamespace())
		}
	}
	if _, err := mapInformer.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: onMap, UpdateFunc: func(_, obj any) { onMap(obj) }, DeleteFunc: onMap,
	}); err != nil {
		return nil, fmt.Errorf("watch %s config maps: %w", ConfigMapName, err)
	}
	// Pod events matter only where a minik-load ConfigMap exists.
	onPod := func(obj any) {
		m, ok := meta(obj)
		if !ok {
			return
		}
		if _, err := c.maps.ConfigMaps(m.GetNamespace()).Get(ConfigMapName); err == nil {
			c.queue.Add(m.GetNamespace())
		}
	}
	if _, err := podInformer.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: onPod, UpdateFunc: func(_, obj any) { onPod(obj) }, DeleteFunc: onPod,
	}); err != nil {
		return nil, fmt.Errorf("watch pods: %w", err)
	}
	return c, nil
}

// ConfigMapSelector restricts a ConfigMap informer to minik-load.
func ConfigMapSelector(o *metav1.ListOptions) {
	o.FieldSelector = fields.OneTermEqualSelector("metadata.name", ConfigMapName).String()
}

func meta(obj any) (metav1.Object, bool) {
	if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = t.Obj
	}
	m, ok := obj.(metav1.Object)
	return m, ok
}

// Run syncs until ctx is done; the factories must have been started.
func (c *Controller) Run(ctx context.Context) {
	defer c.queue.ShutDown()
	if !cache.WaitForCacheSync(ctx.Done(), c.synced...) {
		return
	}
	go func() {
		<-ctx.Done()
		c.queue.ShutDown()
	}()
	// One worker: syncs are cheap, and it keeps warned unshared.
	for c.processNext(ctx) {
	}
}

func (c *Controller) processNext(ctx context.Context) bool {
	ns, quit := c.queue.Get()
	if quit {
		return false
	}
	defer c.queue.Done(ns)
	if err := c.sync(ctx, ns); err != nil {
		klog.V(2).InfoS("sync simulated load: retrying", "namespace", ns, "err", err)
		c.queue.AddRateLimited(ns)
		return true
	}
	c.queue.Forget(ns)
	return true
}

// sync writes every covered ready pod's share in one namespace.
func (c *Controller) sync(ctx context.Context, ns string) error {
	cm, err := c.maps.ConfigMaps(ns).Get(ConfigMapName)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	loads, bad := ParseLoads(cm.Data)
	c.report(cm, bad)
	pods, err := c.pods.Pods(ns).List(labels.Everything())
	if err != nil {
		return err
	}
	var errs []error
	for name, value := range Shares(loads, pods) {
		pod, err := c.pods.Pods(ns).Get(name)
		if err != nil || pod.Annotations[CPUAnnotation] == value {
			continue
		}
		patch := fmt.Sprintf(`{"metadata":{"annotations":{%q:%q}}}`, CPUAnnotation, value)
		_, err = c.client.CoreV1().Pods(ns).Patch(ctx, name, types.StrategicMergePatchType, []byte(patch), metav1.PatchOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("set load of pod %s/%s: %w", ns, name, err))
		}
	}
	if len(errs) > 0 {
		return errs[0]
	}
	return nil
}

// report turns each new bad value into one Warning event on the ConfigMap.
func (c *Controller) report(cm *corev1.ConfigMap, bad map[string]string) {
	for key, problem := range bad {
		id := cm.Namespace + "/" + key
		if c.warned[id] == cm.Data[key] {
			continue
		}
		c.warned[id] = cm.Data[key]
		if c.recorder != nil {
			c.recorder.Eventf(cm, corev1.EventTypeWarning, "InvalidLoad", "key %s: %s", key, problem)
		}
	}
	for id := range c.warned {
		ns, key, _ := strings.Cut(id, "/")
		if _, stillBad := bad[key]; ns == cm.Namespace && !stillBad {
			delete(c.warned, id)
		}
	}
}

// ParseLoads reads a minik-load ConfigMap's data: app -> total CPU. Bad
// entries are left out and returned with what is wrong with them.
func ParseLoads(data map[string]string) (map[string]resource.Quantity, map[string]string) {
	loads := map[string]resource.Quantity{}
	bad := map[string]string{}
	for key, v := range data {
		q, err := resource.ParseQuantity(strings.TrimSpace(v))
		switch {
		case err != nil:
			bad[key] = fmt.Sprintf("%q is not a CPU quantity (e.g. 800m or 2)", v)
		case q.Sign() < 0:
			bad[key] = fmt.Sprintf("%q must not be negative", v)
		default:
			loads[key] = q
		}
	}
	return loads, bad
}

// Shares splits each app's load evenly across its ready, not terminating
// pods: pod name -> its minik.dev/cpu value, in whole millicores (at least
// 1m; the runtime's floor). Pods of apps without a load get nothing.
func Shares(loads map[string]resource.Quantity, pods []*corev1.Pod) map[string]string {
	byApp := map[string][]string{}
	for _, p := range pods {
		app, ok := p.Labels[AppLabel]
		if _, covered := loads[app]; !ok || !covered || p.DeletionTimestamp != nil || !ready(p) {
			continue
		}
		byApp[app] = append(byApp[app], p.Name)
	}
	out := map[string]string{}
	for app, names := range byApp {
		total := loads[app]
		share := max((total.MilliValue()+int64(len(names))/2)/int64(len(names)), 1)
		for _, n := range names {
			out[n] = resource.NewMilliQuantity(share, resource.DecimalSI).String()
		}
	}
	return out
}

func ready(p *corev1.Pod) bool {
	if p.Status.Phase != corev1.PodRunning {
		return false
	}
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}
