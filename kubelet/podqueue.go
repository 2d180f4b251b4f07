package kubelet

import (
	"context"
	"fmt"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/klog/v2"
)

// podQueue watches the pods bound to one node and syncs each, by key, on
// a pool of workers: a failed sync is retried with back-off, and a sync
// says when to look at its pod again. Both runtimes drive pods through it.
type podQueue struct {
	lister   corelisters.PodLister
	informer cache.SharedIndexInformer
	queue    workqueue.TypedRateLimitingInterface[string]
}

// newPodQueue watches node's pods; retries start at baseDelay. The factory
// must be started by the caller.
func newPodQueue(client kubernetes.Interface, node, name string, baseDelay time.Duration) (*podQueue, informers.SharedInformerFactory, error) {
	factory := informers.NewSharedInformerFactoryWithOptions(client, 0,
		informers.WithTweakListOptions(func(o *metav1.ListOptions) {
			o.FieldSelector = fields.OneTermEqualSelector("spec.nodeName", node).String()
		}))
	pods := factory.Core().V1().Pods()
	q := &podQueue{
		lister:   pods.Lister(),
		informer: pods.Informer(),
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(
			workqueue.NewTypedItemExponentialFailureRateLimiter[string](baseDelay, 10*time.Second),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: name}),
	}
	_, err := q.informer.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    q.enqueue,
		UpdateFunc: func(_, obj any) { q.enqueue(obj) },
		DeleteFunc: q.enqueue,
	})
	if err != nil {
		return nil, nil, fmt.Errorf("watch pods: %w", err)
	}
	return q, factory, nil
}

func (q *podQueue) enqueue(obj any) {
	key, err := cache.DeletionHandlingMetaNamespaceKeyFunc(obj)
	if err != nil {
		return
	}
	q.queue.Add(key)
}

// syncFunc syncs one pod and returns how long until it should be synced
// again (0: only when it changes).
type syncFunc func(ctx context.Context, key string) (time.Duration, error)

// work runs sync on podWorkers workers until ctx is done.
func (q *podQueue) work(ctx context.Context, syncPod syncFunc) {
	var wg sync.WaitGroup
	for range podWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for q.processNext(ctx, syncPod) {
			}
		}()
	}
	<-ctx.Done()
	q.queue.ShutDown()
	wg.Wait()
}

func (q *podQueue) processNext(ctx context.Context, syncPod syncFunc) bool {
	key, quit := q.queue.Get()
	if quit {
		return false
	}
	defer q.queue.Done(key)
	next, err := syncPod(ctx, key)
	switch {
	case err != nil:
		if ctx.Err() == nil && !apierrors.IsConflict(err) && !apierrors.IsNotFound(err) {
			klog.V(2).InfoS("sync pod: retrying", "pod", key, "err", err)
		}
		q.queue.AddRateLimited(key)
	default:
		q.queue.Forget(key)
		if next > 0 {
			q.queue.AddAfter(key, next)
		}
	}
	return true
}
