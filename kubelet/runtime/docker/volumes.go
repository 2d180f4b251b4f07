package docker

import (
	"context"
	"crypto/sha256"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/klog/v2"

	"minik.dev/minik/nodeconfig"
)

// claimVolume resolves a pod's claim to the engine volume of its
// PersistentVolume.
func (m *Runtime) claimVolume(ctx context.Context, pod *corev1.Pod, src *corev1.PersistentVolumeClaimVolumeSource) (string, error) {
	pv, err := m.boundVolume(ctx, pod.Namespace, src.ClaimName)
	if err != nil {
		return "", err
	}
	return pv.Spec.CSI.VolumeHandle, nil
}

// boundVolume returns the PersistentVolume a claim is bound to, if it is
// one of minik's.
func (m *Runtime) boundVolume(ctx context.Context, namespace, claim string) (*corev1.PersistentVolume, error) {
	pvc, err := m.client.CoreV1().PersistentVolumeClaims(namespace).Get(ctx, claim, metav1.GetOptions{})
	if err != nil {
		return nil, fmt.Errorf("get claim %s: %w", claim, err)
	}
	if pvc.Status.Phase != corev1.ClaimBound || pvc.Spec.VolumeName == "" {
		return nil, fmt.Errorf("claim %s is not bound to a volume yet", claim)
	}
	pv, err := m.client.CoreV1().PersistentVolumes().Get(ctx, pvc.Spec.VolumeName, metav1.GetOptions{})
	if err != nil {
		return nil, fmt.Errorf("get volume %s of claim %s: %w", pvc.Spec.VolumeName, claim, err)
	}
	if pv.Spec.CSI == nil || pv.Spec.CSI.Driver != nodeconfig.VolumeDriver {
		return nil, fmt.Errorf("volume %s of claim %s is not one of minik's (driver %s): minik's docker runtime mounts those only", pv.Name, claim, nodeconfig.VolumeDriver)
	}
	return pv, nil
}

// volumesAttached says whether every claim of the pod has its volume
// attached to this node by the attach-detach controller, as the kubelet
// waits for before it makes the pod's sandbox. A ReadWriteOnce volume in
// use on another node stays unattached (the controller reports a
// FailedAttachVolume event on the pod); the reason says what is waited for.
func (m *Runtime) volumesAttached(ctx context.Context, pod *corev1.Pod) (bool, string, error) {
	for _, v := range pod.Spec.Volumes {
		src := v.PersistentVolumeClaim
		if src == nil {
			continue
		}
		pv, err := m.boundVolume(ctx, pod.Namespace, src.ClaimName)
		if err != nil {
			return false, "", err
		}
		va, err := m.client.StorageV1().VolumeAttachments().Get(ctx, attachmentName(pv.Spec.CSI.VolumeHandle, m.cfg.Name), metav1.GetOptions{})
		if apierrors.IsNotFound(err) || (err == nil && !va.Status.Attached) {
			return false, fmt.Sprintf("volume %q (claim %s) is not attached to node %s yet", v.Name, src.ClaimName, m.cfg.Name), nil
		}
		if err != nil {
			return false, "", fmt.Errorf("get attachment of volume %s: %w", pv.Name, err)
		}
	}
	return true, "", nil
}

// attachmentName is the VolumeAttachment the attach-detach controller
// makes for a CSI volume on a node (the CSI attacher's naming).
func attachmentName(handle, node string) string {
	return fmt.Sprintf("csi-%x", sha256.Sum256([]byte(handle+nodeconfig.VolumeDriver+node)))
}

// localClaimVolumes is an engine that keeps claim volumes on its own
// node's disk (runc in a VM): the control plane cannot reach them there,
// so the node removes those whose PersistentVolume is gone.
type localClaimVolumes interface {
	ClaimVolumes(ctx context.Context) ([]string, error)
	RemoveClaimVolume(ctx context.Context, name string) error
}

// sweepClaimVolumes removes, every claimVolumeSweep, the node's claim
// volumes that no PersistentVolume names any more: the provisioner has
// deleted their volume (reclaim policy Delete).
func (m *Runtime) sweepClaimVolumes(ctx context.Context, local localClaimVolumes) {
	t := time.NewTicker(claimVolumeSweep)
	defer t.Stop()
	for {
		if err := m.removeReleasedClaimVolumes(ctx, local); err != nil && ctx.Err() == nil {
			klog.ErrorS(err, "remove claim volumes of deleted PersistentVolumes")
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (m *Runtime) removeReleasedClaimVolumes(ctx context.Context, local localClaimVolumes) error {
	// Folders are listed before volumes: a folder is made only for a
	// volume that exists, so one missing from the later list is deleted.
	names, err := local.ClaimVolumes(ctx)
	if err != nil || len(names) == 0 {
		return err
	}
	pvs, err := m.client.CoreV1().PersistentVolumes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return fmt.Errorf("list volumes: %w", err)
	}
	live := map[string]bool{}
	for _, pv := range pvs.Items {
		if pv.Spec.CSI != nil && pv.Spec.CSI.Driver == nodeconfig.VolumeDriver {
			live[pv.Spec.CSI.VolumeHandle] = true
		}
	}
	for _, name := range names {
		if live[name] {
			continue
		}
		if err := local.RemoveClaimVolume(ctx, name); err != nil {
			return err
		}
		klog.InfoS("removed the claim volume of a deleted PersistentVolume", "volume", name)
	}
	return nil
}
