// Package storage gives every minik cluster volumes that keep data: the
// default StorageClass "standard", and the controllers behind its driver
// (volumes.minik.dev): a provisioner on the maintained library
// (sig-storage-lib-external-provisioner), an attacher that confirms the
// attach-detach controller's VolumeAttachments (so ReadWriteOnce is
// enforced upstream, by the attach-detach controller), and a resizer. Where the
// bytes live is a Backend's business: engine volumes on docker, a folder
// on the node's own disk on runc (VM nodes), none on the sim runtime.
package storage

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/klog/v2"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/sig-storage-lib-external-provisioner/v13/controller"

	"minik.dev/minik/nodeconfig"
)

// Names of minik's storage in the API.
const (
	// Driver is the CSI driver name of minik's volumes, and the
	// provisioner name of its StorageClass.
	Driver = nodeconfig.VolumeDriver
	// DefaultClass is the StorageClass a claim without one gets.
	DefaultClass = "standard"
	// annotationDefaultClass marks the default StorageClass.
	annotationDefaultClass = "storageclass.kubernetes.io/is-default-class"
)

// Backend keeps the bytes of volumes.
type Backend interface {
	// Create makes the storage of the volume of PersistentVolume pv, of
	// size bytes, and returns its handle; repeating it is no error.
	Create(ctx context.Context, pv string, size int64) (handle string, err error)
	// Delete removes a volume's storage and its data; a volume that is
	// gone already is no error. node is the node the volume belongs to,
	// "" for a shared volume.
	Delete(ctx context.Context, handle, node string) error
	// Shared says whether every node reaches every volume (then volumes
	// have no node affinity, and ReadWriteMany works across nodes); if not,
	// a volume belongs to the node the scheduler chose for its first pod.
	Shared() bool
	// Free is how many bytes are free where volumes keep their data.
	Free(ctx context.Context) (int64, error)
}

// Controllers are the volume driver's provisioner, attacher and resizer,
// made but not yet running.
type Controllers struct {
	client      kubernetes.Interface
	provisioner *provisioner
	provision   *controller.ProvisionController
}

// New makes the controllers. The provisioner library adds core/v1 to
// client-go's process-wide scheme each time it makes a controller: call New
// before any other goroutine of the process can read that scheme, or a map
// read meets the write (a control plane crashed so, in the
// controller-manager, which walks the scheme as it starts).
func New(ctx context.Context, client kubernetes.Interface) (*Controllers, error) {
	p := &provisioner{}
	c, err := newProvisionController(ctx, client, p)
	if err != nil {
		return nil, err
	}
	return &Controllers{client: client, provisioner: p, provision: c}, nil
}

// Run installs the default StorageClass and the driver's CSIDriver object
// and runs the provisioner, attacher and resizer, with the volumes' bytes
// in backend, until ctx is done.
func (c *Controllers) Run(ctx context.Context, backend Backend) error {
	if err := ensureObjects(ctx, c.client); err != nil {
		return err
	}
	// Set before the provisioner's goroutines start, and never after.
	c.provisioner.backend = backend
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Add(3)
	go func() {
		defer wg.Done()
		c.provision.Run(ctx)
	}()
	go func() {
		defer wg.Done()
		runAttacher(ctx, c.client)
	}()
	go func() {
		defer wg.Done()
		runResizer(ctx, c.client, backend)
	}()
	return nil
}

// ensureObjects creates the default StorageClass and the CSIDriver object
// unless they exist: a user's edits to either are kept.
func ensureObjects(ctx context.Context, client kubernetes.Interface) error {
	class := &storagev1.StorageClass{
		ObjectMeta: metav1.ObjectMeta{
			Name:        DefaultClass,
			Annotations: map[string]string{annotationDefaultClass: "true"},
			Labels:      map[string]string{"app.kubernetes.io/managed-by": "minik"},
		},
		Provisioner:          Driver,
		ReclaimPolicy:        ptr.To(corev1.PersistentVolumeReclaimDelete),
		VolumeBindingMode:    ptr.To(storagev1.VolumeBindingWaitForFirstConsumer),
		AllowVolumeExpansion: ptr.To(true),
	}
	// The attach-detach controller enforces ReadWriteOnce only for
	// volumes that attach; minik's attacher confirms each attachment.
	driver := &storagev1.CSIDriver{
		ObjectMeta: metav1.ObjectMeta{
			Name:   Driver,
			Labels: map[string]string{"app.kubernetes.io/managed-by": "minik"},
		},
		Spec: storagev1.CSIDriverSpec{
			AttachRequired:       ptr.To(true),
			PodInfoOnMount:       ptr.To(false),
			FSGroupPolicy:        ptr.To(storagev1.FileFSGroupPolicy),
			VolumeLifecycleModes: []storagev1.VolumeLifecycleMode{storagev1.VolumeLifecyclePersistent},
		},
	}
	return retryUntilCreated(ctx, func() error {
		if _, err := client.StorageV1().StorageClasses().Create(ctx, class, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("create StorageClass %s: %w", DefaultClass, err)
		}
		if _, err := client.StorageV1().CSIDrivers().Create(ctx, driver, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("create CSIDriver %s: %w", Driver, err)
		}
		return nil
	})
}

// retryUntilCreated retries fn while the apiserver finishes its own
// start-up (RBAC and admission may refuse the first requests).
func retryUntilCreated(ctx context.Context, fn func() error) error {
	var err error
	for range 100 {
		if err = fn(); err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return errors.Join(err, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
	klog.ErrorS(err, "install storage objects")
	return err
}
