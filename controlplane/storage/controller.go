package storage

import (
	"context"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/klog/v2"
)

// runController syncs each object of informer, by key, until ctx is done:
// a sync that fails is retried with back-off. The factory is started here.
func runController(ctx context.Context, name string, factory informers.SharedInformerFactory, informer cache.SharedIndexInformer, sync func(ctx context.Context, key string) error) {
	queue := workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[string](),
		workqueue.TypedRateLimitingQueueConfig[string]{Name: name})
	defer queue.ShutDown()
	enqueue := func(obj any) {
		if key, err := cache.MetaNamespaceKeyFunc(obj); err == nil {
			queue.Add(key)
		}
	}
	if _, err := informer.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    enqueue,
		UpdateFunc: func(_, obj any) { enqueue(obj) },
	}); err != nil {
		klog.ErrorS(err, "watch", "controller", name)
		return
	}
	factory.Start(ctx.Done())
	defer factory.Shutdown()
	if !cache.WaitForCacheSync(ctx.Done(), informer.HasSynced) {
		return
	}
	go func() {
		<-ctx.Done()
		queue.ShutDown()
	}()
	for {
		key, quit := queue.Get()
		if quit {
			return
		}
		err := sync(ctx, key)
		switch {
		case err != nil && !apierrors.IsNotFound(err) && ctx.Err() == nil:
			klog.V(2).InfoS("sync: retrying", "controller", name, "key", key, "err", err)
			queue.AddRateLimited(key)
		default:
			queue.Forget(key)
		}
		queue.Done(key)
	}
}
