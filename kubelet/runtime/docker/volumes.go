package docker

import (
	"context"
	"crypto/sha256"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"minik.dev/minik/kubelet/runtime"
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

// RemoveClaimVolume implements runtime.ClaimVolumeRemover for engines
// that keep claims' volumes on the node's own disk (runc in a VM).
func (m *Runtime) RemoveClaimVolume(ctx context.Context, name string) error {
	local, ok := m.engine.(interface {
		RemoveClaimVolume(ctx context.Context, name string) error
	})
	if !ok || m.cfg.Runtime != nodeconfig.RuntimeRunc {
		return fmt.Errorf("removing a volume on the node is %w by the %s engine: its volumes are the engine's", runtime.ErrNotSupported, m.Name())
	}
	return local.RemoveClaimVolume(ctx, name)
}
