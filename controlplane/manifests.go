package controlplane

import (
	"context"

	"k8s.io/component-base/version"
	"k8s.io/klog/v2"

	"minik.dev/minik/controlplane/manifests"
	"minik.dev/minik/nodeconfig"
)

// runManifests applies the profile's manifests folder until ctx is done.
func runManifests(ctx context.Context, cfg *nodeconfig.Config, dir string) {
	rc, err := adminConfig(cfg)
	if err != nil {
		klog.ErrorS(err, "apply the manifests folder")
		return
	}
	err = manifests.Run(ctx, manifests.Options{Dir: dir, Config: rc, ExtVars: map[string]string{
		"cluster":           cfg.Cluster,
		"kubernetesVersion": version.Get().GitVersion,
	}})
	if err != nil && ctx.Err() == nil {
		klog.ErrorS(err, "apply the manifests folder")
	}
}
