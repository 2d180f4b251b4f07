package controlplane

import (
	"context"

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
func runStorage(ctx context.Context, cfg *nodeconfig.Config, client kubernetes.Interface) {
	var backend storage.Backend = storage.NodeBackend{Dir: cfg.DataDir}
	if cfg.Runtime == nodeconfig.RuntimeDocker {
		eng, err := engine.New(ctx, cfg.Cluster, cfg.Name, *cfg.Docker)
		if err != nil {
			klog.ErrorS(err, "start the volume provisioner")
			return
		}
		defer eng.Close()
		backend = storage.EngineBackend{Engine: eng, Dir: cfg.DataDir}
	}
	if err := storage.Run(ctx, client, backend); err != nil && ctx.Err() == nil {
		klog.ErrorS(err, "run the volume provisioner")
	}
}
