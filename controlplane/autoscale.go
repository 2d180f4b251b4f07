package controlplane

import (
	"context"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	watchtools "k8s.io/client-go/tools/watch"
	"k8s.io/klog/v2"

	"minik.dev/minik/controlplane/autoscaler"
	"minik.dev/minik/nodeconfig"
)

// runAutoscaler runs the cluster autoscaler (see package autoscaler) once
// the CLI has turned it on, until ctx is done. Until then it only watches
// for its settings, so a cluster without autoscaling pays no informers
// and, idle, no requests (it polled every 2 s before).
func runAutoscaler(ctx context.Context, client kubernetes.Interface) {
	if err := waitForSettings(ctx, client); err != nil {
		if ctx.Err() == nil {
			klog.ErrorS(err, "autoscaler: wait for settings")
		}
		return
	}
	broadcaster := record.NewBroadcaster(record.WithContext(ctx))
	broadcaster.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: client.CoreV1().Events("")})
	defer broadcaster.Shutdown()
	recorder := broadcaster.NewRecorder(scheme.Scheme, corev1.EventSource{Component: "cluster-autoscaler"})

	factory := informers.NewSharedInformerFactory(client, 0)
	a, err := autoscaler.New(ctx, client, factory, recorder)
	if err != nil {
		klog.ErrorS(err, "start the autoscaler")
		return
	}
	factory.Start(ctx.Done())
	defer factory.Shutdown()
	factory.WaitForCacheSync(ctx.Done())
	klog.InfoS("autoscaler on")
	a.Run(ctx)
}

// waitForSettings returns once the autoscaler's settings ConfigMap
// exists, watching that one object (the watch is resumed across apiserver
// restarts and expired resource versions).
func waitForSettings(ctx context.Context, client kubernetes.Interface) error {
	sel := fields.OneTermEqualSelector("metadata.name", nodeconfig.AutoscalerSettings).String()
	maps := client.CoreV1().ConfigMaps(metav1.NamespaceSystem)
	lw := &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			o.FieldSelector = sel
			return maps.List(ctx, o)
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			o.FieldSelector = sel
			return maps.Watch(ctx, o)
		},
	}
	// A fake clientset says it has no watch-list semantics; the wrapper
	// passes that on (the apiserver has them).
	_, err := watchtools.UntilWithSync(ctx, cache.ToListWatcherWithWatchListSemantics(lw, client), &corev1.ConfigMap{}, nil, func(e watch.Event) (bool, error) {
		return e.Type == watch.Added || e.Type == watch.Modified, nil
	})
	return err
}
