package storage

import (
	"context"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
)

// runAttacher confirms the VolumeAttachments the attach-detach controller
// makes for minik's volumes: a volume reaches a node as soon as it is
// asked for (the nodes of a cluster share one disk). The attach-detach
// controller, not this one, decides whether it may attach: that is where
// ReadWriteOnce is enforced.
func runAttacher(ctx context.Context, client kubernetes.Interface) {
	factory := informers.NewSharedInformerFactory(client, 0)
	attachments := factory.Storage().V1().VolumeAttachments()
	lister := attachments.Lister()
	runController(ctx, "volume-attacher", factory, attachments.Informer(), func(ctx context.Context, name string) error {
		va, err := lister.Get(name)
		if err != nil || va.Spec.Attacher != Driver || va.Status.Attached || va.DeletionTimestamp != nil {
			return err
		}
		va = va.DeepCopy()
		va.Status.Attached = true
		va.Status.AttachError = nil
		_, err = client.StorageV1().VolumeAttachments().UpdateStatus(ctx, va, metav1.UpdateOptions{})
		return err
	})
}
