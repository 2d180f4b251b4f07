package kubelet

import (
	"context"

	"minik.dev/minik/kubelet/engine/runc"
	"minik.dev/minik/kubelet/runtime/docker"
	"minik.dev/minik/nodeconfig"
)

// newRuncEngine is the runc engine of a node whose config asks for it.
func newRuncEngine(ctx context.Context, cfg *nodeconfig.Config, podCIDR func(context.Context) (string, error)) (docker.Engine, error) {
	r := cfg.Runc
	return runc.New(ctx, runc.Options{
		Node: cfg.Name, NodeIP: cfg.IP, Binary: r.Binary,
		StateDir: r.StateDir, RunDir: r.RunDir,
		Bridge: r.Bridge, Gateway: r.Gateway, PrefixLen: r.PrefixLen,
		PodCIDR: podCIDR, ImageServer: r.ImageServer,
	})
}
