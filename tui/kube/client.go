// Package kube is the dashboard's only door to a cluster: shared informers
// for what it lists, the metrics API, pod logs, /readyz and the few writes
// the dashboard offers. It takes client-go interfaces, so tests run it on
// client-go's fake clientsets.
package kube

import (
	"context"
	"fmt"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"
	metricsclient "k8s.io/metrics/pkg/client/clientset/versioned"
)

// Client reads and changes one cluster. Watch must be called before Snapshot
// has anything to return.
type Client struct {
	kc        kubernetes.Interface
	mc        metricsclient.Interface
	namespace string
	readyz    func(ctx context.Context) error

	mu        sync.Mutex
	informers *watched
	watchErr  error
	watchAt   time.Time
}

type watched struct {
	pods        cache.SharedIndexInformer
	deployments cache.SharedIndexInformer
	replicaSets cache.SharedIndexInformer
	nodes       cache.SharedIndexInformer
	events      cache.SharedIndexInformer
	claims      cache.SharedIndexInformer
	volumes     cache.SharedIndexInformer
	classes     cache.SharedIndexInformer
}

// Options are a Client's optional settings.
type Options struct {
	// Namespace limits pods, deployments, replica sets, events and
	// PersistentVolumeClaims to one namespace; "" watches all of them.
	// Nodes, PersistentVolumes and StorageClasses are cluster-wide either
	// way.
	Namespace string
	// Readyz checks the apiserver's health; nil reads /readyz through kc's
	// discovery REST client (fake clientsets have none: always healthy).
	Readyz func(ctx context.Context) error
}

// New wraps client-go clientsets; mc may be nil when no metrics client could
// be built, and the dashboard then says metrics are not served.
func New(kc kubernetes.Interface, mc metricsclient.Interface, o Options) *Client {
	c := &Client{kc: kc, mc: mc, namespace: o.Namespace, readyz: o.Readyz}
	if c.readyz == nil {
		c.readyz = discoveryReadyz(kc)
	}
	return c
}

// NewForConfig builds the clientsets from a rest config.
func NewForConfig(cfg *rest.Config, o Options) (*Client, error) {
	cfg = rest.CopyConfig(cfg)
	// Warnings would go to stderr, under the full-screen UI.
	cfg.WarningHandler = rest.NoWarnings{}
	cfg.QPS, cfg.Burst = 50, 100
	kc, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("build kubernetes client: %w", err)
	}
	mc, err := metricsclient.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("build metrics client: %w", err)
	}
	return New(kc, mc, o), nil
}

// Target is a resolved kubeconfig: where to connect and which namespace a
// context defaults to.
type Target struct {
	Config    *rest.Config
	Context   string
	Namespace string
}

// LoadKubeconfig resolves a context (""= the current one) from kubeconfig
// files, merged in order like kubectl does with $KUBECONFIG.
func LoadKubeconfig(files []string, context string) (*Target, error) {
	rules := &clientcmd.ClientConfigLoadingRules{Precedence: files}
	cc := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{CurrentContext: context})
	raw, err := cc.RawConfig()
	if err != nil {
		return nil, fmt.Errorf("read kubeconfig %v: %w", files, err)
	}
	name := context
	if name == "" {
		name = raw.CurrentContext
	}
	if _, ok := raw.Contexts[name]; !ok {
		return nil, fmt.Errorf("context %q not found in kubeconfig %v", name, files)
	}
	cfg, err := cc.ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("kubeconfig context %q: %w", name, err)
	}
	ns, _, err := cc.Namespace()
	if err != nil {
		return nil, fmt.Errorf("kubeconfig context %q namespace: %w", name, err)
	}
	return &Target{Config: cfg, Context: name, Namespace: ns}, nil
}

func discoveryReadyz(kc kubernetes.Interface) func(ctx context.Context) error {
	return func(ctx context.Context) error {
		rc := kc.Discovery().RESTClient()
		if rc == nil {
			return nil
		}
		if r, ok := rc.(*rest.RESTClient); ok && r == nil {
			return nil
		}
		if err := rc.Get().AbsPath("/readyz").Do(ctx).Error(); err != nil {
			return fmt.Errorf("apiserver /readyz: %w", err)
		}
		return nil
	}
}

// Namespace is the namespace the client watches; "" means all.
func (c *Client) Namespace() string { return c.namespace }

// Watch starts the shared informers; call it once. The returned channel
// receives a value (coalesced: it holds at most one) whenever a watched
// object changes or a list/watch fails. The informers retry on their own
// while the cluster is away and stop when ctx ends.
func (c *Client) Watch(ctx context.Context) <-chan struct{} {
	changed := make(chan struct{}, 1)
	notify := func() {
		select {
		case changed <- struct{}{}:
		default:
		}
	}
	handler := cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { notify() },
		UpdateFunc: func(any, any) { notify() },
		DeleteFunc: func(any) { notify() },
	}
	f := informers.NewSharedInformerFactoryWithOptions(c.kc, 0,
		informers.WithNamespace(c.namespace),
		informers.WithTransform(stripManagedFields))
	w := &watched{
		pods:        f.Core().V1().Pods().Informer(),
		deployments: f.Apps().V1().Deployments().Informer(),
		replicaSets: f.Apps().V1().ReplicaSets().Informer(),
		nodes:       f.Core().V1().Nodes().Informer(),
		events:      f.Core().V1().Events().Informer(),
		// The factory's namespace applies to claims; volumes and classes
		// are cluster-scoped, like nodes.
		claims:  f.Core().V1().PersistentVolumeClaims().Informer(),
		volumes: f.Core().V1().PersistentVolumes().Informer(),
		classes: f.Storage().V1().StorageClasses().Informer(),
	}
	for _, inf := range w.all() {
		// Errors only go into the status bar: the default handler logs them,
		// and the reflector retries with backoff by itself.
		_ = inf.SetWatchErrorHandlerWithContext(func(_ context.Context, _ *cache.Reflector, err error) {
			c.mu.Lock()
			c.watchErr, c.watchAt = err, time.Now()
			c.mu.Unlock()
			notify()
		})
		_, _ = inf.AddEventHandler(handler)
	}
	c.mu.Lock()
	c.informers = w
	c.mu.Unlock()
	f.Start(ctx.Done())
	return changed
}

func (w *watched) all() []cache.SharedIndexInformer {
	return []cache.SharedIndexInformer{w.pods, w.deployments, w.replicaSets, w.nodes, w.events, w.claims, w.volumes, w.classes}
}

// WaitSynced blocks until every informer has listed once, or ctx ends.
func (c *Client) WaitSynced(ctx context.Context) error {
	c.mu.Lock()
	w := c.informers
	c.mu.Unlock()
	if w == nil {
		return fmt.Errorf("wait for informers: Watch was not called")
	}
	var synced []cache.InformerSynced
	for _, inf := range w.all() {
		synced = append(synced, inf.HasSynced)
	}
	if !cache.WaitForCacheSync(ctx.Done(), synced...) {
		return fmt.Errorf("wait for informers to list: %w", context.Cause(ctx))
	}
	return nil
}

// stripManagedFields keeps the caches small and the YAML view readable.
func stripManagedFields(obj any) (any, error) {
	if a, err := meta.Accessor(obj); err == nil {
		a.SetManagedFields(nil)
	}
	return obj, nil
}

// Snapshot is a consistent-enough copy of the informers' caches: the
// objects are shared with the caches and must not be modified.
type Snapshot struct {
	Pods        []*corev1.Pod
	Deployments []*appsv1.Deployment
	ReplicaSets []*appsv1.ReplicaSet
	Nodes       []*corev1.Node
	Events      []*corev1.Event
	// PersistentVolumeClaims are the watched namespace's (or all);
	// PersistentVolumes and StorageClasses are cluster-wide.
	PersistentVolumeClaims []*corev1.PersistentVolumeClaim
	PersistentVolumes      []*corev1.PersistentVolume
	StorageClasses         []*storagev1.StorageClass
	// Synced is true once every informer has listed.
	Synced bool
	// WatchError is the last list/watch failure, if it is recent.
	WatchError error
}

// Snapshot reads the informers' caches; it does no I/O.
func (c *Client) Snapshot() *Snapshot {
	c.mu.Lock()
	w, werr, wat := c.informers, c.watchErr, c.watchAt
	c.mu.Unlock()
	s := &Snapshot{}
	if w == nil {
		return s
	}
	s.Synced = true
	for _, inf := range w.all() {
		s.Synced = s.Synced && inf.HasSynced()
	}
	if werr != nil && time.Since(wat) < 30*time.Second {
		s.WatchError = werr
	}
	s.Pods = list[*corev1.Pod](w.pods)
	s.Deployments = list[*appsv1.Deployment](w.deployments)
	s.ReplicaSets = list[*appsv1.ReplicaSet](w.replicaSets)
	s.Nodes = list[*corev1.Node](w.nodes)
	s.Events = list[*corev1.Event](w.events)
	s.PersistentVolumeClaims = list[*corev1.PersistentVolumeClaim](w.claims)
	s.PersistentVolumes = list[*corev1.PersistentVolume](w.volumes)
	s.StorageClasses = list[*storagev1.StorageClass](w.classes)
	return s
}

func list[T any](inf cache.SharedIndexInformer) []T {
	var out []T
	_ = cache.ListAll(inf.GetStore(), labels.Everything(), func(o any) {
		if t, ok := o.(T); ok {
			out = append(out, t)
		}
	})
	return out
}

// Healthy asks the apiserver's /readyz.
func (c *Client) Healthy(ctx context.Context) error {
	return c.readyz(ctx)
}
