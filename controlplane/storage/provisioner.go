package storage

import (
	"context"
	"errors"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/sig-storage-lib-external-provisioner/v13/controller"
)

// provisioner makes a PersistentVolume, and its storage, for each claim of
// a class whose provisioner is Driver.
type provisioner struct {
	backend Backend
}

var _ controller.Provisioner = (*provisioner)(nil)

func newProvisionController(ctx context.Context, client kubernetes.Interface, p *provisioner) (*controller.ProvisionController, error) {
	c := controller.NewProvisionController(ctx, client, Driver, p,
		controller.LeaderElection(false),
		// A laptop wants claims bound in moments, and a failure retried soon.
		controller.Threadiness(4),
		controller.RetryIntervalMax(30*time.Second),
		controller.CreateProvisionedPVInterval(100*time.Millisecond),
		controller.ResyncPeriod(5*time.Minute),
	)
	if c == nil {
		return nil, errors.New("create the volume provisioner")
	}
	return c, nil
}

// Provision implements controller.Provisioner.
func (p *provisioner) Provision(ctx context.Context, o controller.ProvisionOptions) (*corev1.PersistentVolume, controller.ProvisioningState, error) {
	claim := o.PVC
	if mode := claim.Spec.VolumeMode; mode != nil && *mode == corev1.PersistentVolumeBlock {
		return nil, controller.ProvisioningFinished, fmt.Errorf("claim %s/%s asks for a block volume: minik's volumes are filesystems (volumeMode: Filesystem)", claim.Namespace, claim.Name)
	}
	if claim.Spec.Selector != nil {
		return nil, controller.ProvisioningFinished, fmt.Errorf("claim %s/%s has a selector: minik provisions volumes for claims without one", claim.Namespace, claim.Name)
	}
	request, ok := claim.Spec.Resources.Requests[corev1.ResourceStorage]
	if !ok {
		return nil, controller.ProvisioningFinished, fmt.Errorf("claim %s/%s requests no storage size", claim.Namespace, claim.Name)
	}
	if err := p.checkFree(ctx, request); err != nil {
		return nil, controller.ProvisioningFinished, err
	}
	if !p.backend.Shared() && o.SelectedNodeName == "" {
		return nil, controller.ProvisioningFinished, fmt.Errorf("claim %s/%s: volumes of class %s are made on the node of their first pod; use volumeBindingMode WaitForFirstConsumer", claim.Namespace, claim.Name, o.StorageClass.Name)
	}
	handle, err := p.backend.Create(ctx, o.PVName, request.Value())
	if err != nil {
		return nil, controller.ProvisioningFinished, fmt.Errorf("create volume %s: %w", o.PVName, err)
	}
	pv := &corev1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{
			Name:   o.PVName,
			Labels: map[string]string{"app.kubernetes.io/managed-by": "minik"},
		},
		Spec: corev1.PersistentVolumeSpec{
			Capacity:                      corev1.ResourceList{corev1.ResourceStorage: request},
			AccessModes:                   claim.Spec.AccessModes,
			PersistentVolumeReclaimPolicy: *o.StorageClass.ReclaimPolicy,
			MountOptions:                  o.StorageClass.MountOptions,
			VolumeMode:                    claim.Spec.VolumeMode,
			PersistentVolumeSource: corev1.PersistentVolumeSource{
				CSI: &corev1.CSIPersistentVolumeSource{Driver: Driver, VolumeHandle: handle},
			},
		},
	}
	if !p.backend.Shared() {
		pv.Spec.NodeAffinity = &corev1.VolumeNodeAffinity{Required: &corev1.NodeSelector{
			NodeSelectorTerms: []corev1.NodeSelectorTerm{{MatchExpressions: []corev1.NodeSelectorRequirement{{
				Key: corev1.LabelHostname, Operator: corev1.NodeSelectorOpIn, Values: []string{o.SelectedNodeName},
			}}}},
		}}
	}
	return pv, controller.ProvisioningFinished, nil
}

// checkFree refuses a size the disk that holds volumes does not have.
func (p *provisioner) checkFree(ctx context.Context, size resource.Quantity) error {
	free, err := p.backend.Free(ctx)
	if err != nil {
		return fmt.Errorf("measure free disk: %w", err)
	}
	if size.Value() > free {
		return fmt.Errorf("not enough disk for %s: the disk that holds minik's volumes has %s free", size.String(), gibibytes(free))
	}
	return nil
}

// volumeNode is the node a volume is pinned to (its node affinity names
// one hostname), or "".
func volumeNode(pv *corev1.PersistentVolume) string {
	if pv.Spec.NodeAffinity == nil || pv.Spec.NodeAffinity.Required == nil {
		return ""
	}
	for _, term := range pv.Spec.NodeAffinity.Required.NodeSelectorTerms {
		for _, e := range term.MatchExpressions {
			if e.Key == corev1.LabelHostname && e.Operator == corev1.NodeSelectorOpIn && len(e.Values) == 1 {
				return e.Values[0]
			}
		}
	}
	return ""
}

// Delete implements controller.Provisioner.
func (p *provisioner) Delete(ctx context.Context, pv *corev1.PersistentVolume) error {
	if pv.Spec.CSI == nil || pv.Spec.CSI.Driver != Driver {
		return &controller.IgnoredError{Reason: "not a volume of " + Driver}
	}
	if err := p.backend.Delete(ctx, pv.Spec.CSI.VolumeHandle, volumeNode(pv)); err != nil {
		return fmt.Errorf("delete volume %s: %w", pv.Spec.CSI.VolumeHandle, err)
	}
	return nil
}
