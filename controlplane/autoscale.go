package controlplane

import (
	"context"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/tools/record"
	"k8s.io/klog/v2"

	"minik.dev/minik/controlplane/autoscaler"
	"minik.dev/minik/nodeconfig"
)

// runAutoscaler runs the cluster autoscaler (see package autoscaler) once
// the CLI has turned it on, until ctx is done. Until then it only looks
// for its settings, so a cluster without autoscaling pays no informers.
func runAutoscaler(ctx context.Context, client kubernetes.Interface) {
	for {
		_, err := client.CoreV1().ConfigMaps(metav1.NamespaceSystem).Get(ctx, nodeconfig.AutoscalerSettings, metav1.GetOptions{})
		if err == nil {
			break
		}
		if !apierrors.IsNotFound(err) && ctx.Err() == nil {
			klog.V(2).InfoS("autoscaler: read settings", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(2 * time.Second):
		}
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
