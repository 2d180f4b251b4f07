package controlplane

import (
	"context"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"k8s.io/client-go/kubernetes"
	"k8s.io/klog/v2"

	"minik.dev/minik/controlplane/storage"
	"minik.dev/minik/kubelet/engine"
	"minik.dev/minik/nodeconfig"
)

// runStorage runs the cluster's volumes (see package storage) until ctx is
// done: engine volumes where nodes are containers of an engine, volumes
// kept by their node elsewhere (a folder on a VM's disk, or no bytes where
// pods are simulated).
func runStorage(ctx context.Context, cfg *nodeconfig.Config, client kubernetes.Interface, controllers *storage.Controllers) {
	var backend storage.Backend = storage.NodeBackend{Dir: cfg.DataDir}
	if cfg.Runtime == nodeconfig.RuntimeRunc {
		backend = storage.NodeBackend{Dir: cfg.DataDir, RemoveOnNode: func(ctx context.Context, node, handle string) error {
			return removeVolumeOnNode(ctx, client, node, handle)
		}}
	}
	if cfg.Runtime == nodeconfig.RuntimeDocker {
		eng, err := engine.New(ctx, cfg.Cluster, cfg.Name, *cfg.Docker)
		if err != nil {
			klog.ErrorS(err, "start the volume provisioner")
			return
		}
		defer eng.Close()
		backend = storage.EngineBackend{Engine: eng, Dir: cfg.DataDir}
	}
	if err := controllers.Run(ctx, backend); err != nil && ctx.Err() == nil {
		klog.ErrorS(err, "run the volume provisioner")
	}
}

// removeVolumeOnNode asks node's kubelet, through the apiserver's node
// proxy, to delete a claim's folder from its disk. A node that is gone
// took its disk with it.
func removeVolumeOnNode(ctx context.Context, client kubernetes.Interface, node, handle string) error {
	err := client.CoreV1().RESTClient().Delete().AbsPath("/api/v1/nodes", node, "proxy", "volumes", handle).Do(ctx).Error()
	if apierrors.IsNotFound(err) {
		if _, gerr := client.CoreV1().Nodes().Get(ctx, node, metav1.GetOptions{}); apierrors.IsNotFound(gerr) {
			return nil
		}
	}
	if err != nil {
		return fmt.Errorf("remove volume %s on node %s: %w", handle, node, err)
	}
	return nil
}
