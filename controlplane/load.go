package controlplane

import (
	"context"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/tools/record"
	"k8s.io/klog/v2"

	"minik.dev/minik/controlplane/simload"
)

// runLoadController runs the minik-load controller (see package simload)
// until ctx is done.
func runLoadController(ctx context.Context, client kubernetes.Interface) {
	broadcaster := record.NewBroadcaster(record.WithContext(ctx))
	broadcaster.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: client.CoreV1().Events("")})
	defer broadcaster.Shutdown()
	recorder := broadcaster.NewRecorder(scheme.Scheme, corev1.EventSource{Component: "minik-load"})

	pods := informers.NewSharedInformerFactory(client, 0)
	maps := informers.NewSharedInformerFactoryWithOptions(client, 0, informers.WithTweakListOptions(simload.ConfigMapSelector))
	c, err := simload.New(client, pods, maps, recorder)
	if err != nil {
		klog.ErrorS(err, "start the minik-load controller")
		return
	}
	pods.Start(ctx.Done())
	maps.Start(ctx.Done())
	defer pods.Shutdown()
	defer maps.Shutdown()
	c.Run(ctx)
}
