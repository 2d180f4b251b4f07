package storage

import (
	"context"
	"errors"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
)

// errNoRoom is returned while the disk has no room for a resize: the
// claim is looked at again after a back-off.
var errNoRoom = errors.New("not enough free disk")

// runResizer grows volumes whose claims ask for more. minik's volumes take
// what their disk has, so growing one is bookkeeping once the disk has
// room: the PersistentVolume's capacity, then the claim's.
func runResizer(ctx context.Context, client kubernetes.Interface, backend Backend) {
	factory := informers.NewSharedInformerFactory(client, 0)
	claims := factory.Core().V1().PersistentVolumeClaims()
	lister := claims.Lister()
	broadcaster := record.NewBroadcaster(record.WithContext(ctx))
	broadcaster.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: client.CoreV1().Events("")})
	defer broadcaster.Shutdown()
	recorder := broadcaster.NewRecorder(scheme.Scheme, corev1.EventSource{Component: "minik-volume-resizer"})
	runController(ctx, "volume-resizer", factory, claims.Informer(), func(ctx context.Context, key string) error {
		ns, name, _ := cache.SplitMetaNamespaceKey(key)
		claim, err := lister.PersistentVolumeClaims(ns).Get(name)
		if err != nil {
			return err
		}
		return resize(ctx, client, backend, recorder, claim)
	})
}

func resize(ctx context.Context, client kubernetes.Interface, backend Backend, recorder record.EventRecorder, claim *corev1.PersistentVolumeClaim) error {
	want, ok := claim.Spec.Resources.Requests[corev1.ResourceStorage]
	have, bound := claim.Status.Capacity[corev1.ResourceStorage]
	if !ok || !bound || claim.Status.Phase != corev1.ClaimBound || want.Cmp(have) <= 0 {
		return nil
	}
	pv, err := client.CoreV1().PersistentVolumes().Get(ctx, claim.Spec.VolumeName, metav1.GetOptions{})
	if err != nil {
		return err
	}
	if pv.Spec.CSI == nil || pv.Spec.CSI.Driver != Driver {
		return nil
	}
	grow := want.DeepCopy()
	grow.Sub(have)
	free, err := backend.Free(ctx)
	if err != nil {
		return err
	}
	if grow.Value() > free {
		recorder.Eventf(claim, corev1.EventTypeWarning, "VolumeResizeFailed",
			"not enough disk to grow %s from %s to %s: the disk that holds minik's volumes has %s free",
			pv.Name, have.String(), want.String(), gibibytes(free))
		return errNoRoom
	}
	if pvHave := pv.Spec.Capacity[corev1.ResourceStorage]; pvHave.Cmp(want) < 0 {
		pv = pv.DeepCopy()
		pv.Spec.Capacity[corev1.ResourceStorage] = want
		if _, err := client.CoreV1().PersistentVolumes().Update(ctx, pv, metav1.UpdateOptions{}); err != nil {
			return err
		}
	}
	claim = claim.DeepCopy()
	claim.Status.Capacity[corev1.ResourceStorage] = want
	claim.Status.AllocatedResources = corev1.ResourceList{corev1.ResourceStorage: want}
	claim.Status.AllocatedResourceStatuses = nil
	claim.Status.Conditions = nil
	if _, err := client.CoreV1().PersistentVolumeClaims(claim.Namespace).UpdateStatus(ctx, claim, metav1.UpdateOptions{}); err != nil {
		return err
	}
	recorder.Eventf(claim, corev1.EventTypeNormal, "VolumeResizeSuccessful", "resized volume %s from %s to %s", pv.Name, have.String(), want.String())
	return nil
}
