package kubelet

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/klog/v2"

	"minik.dev/minik/kubelet/engine"
	"minik.dev/minik/kubelet/podroutes"
	"minik.dev/minik/kubelet/runtime/docker"
	containerimage "minik.dev/minik/node-image/container"
)

// joinedDocker is the docker runtime of a joined machine, whose engine
// minik did not prepare: before the first sync it builds the node image
// (pod sandboxes run it) from this very binary and makes the node's pod
// network on its podCIDR, which the cluster routes to this machine.
type joinedDocker struct {
	*docker.Runtime
	engine  *engine.Engine
	podCIDR func(context.Context) (string, error)
	version string
	// cidr is the podCIDR Prepare made the network on.
	cidr string
}

// Prepare implements runtime.Runtime.
func (r *joinedDocker) Prepare(ctx context.Context, pods []*corev1.Pod, wake func(key string)) error {
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find this binary for the node image: %w", err)
	}
	progress := func(msg string) { klog.InfoS(msg) }
	if _, err := containerimage.Ensure(ctx, r.engine.Client(), exe, r.version, progress); err != nil {
		return err
	}
	cidr, err := r.podCIDR(ctx)
	if err != nil {
		return err
	}
	if err := r.engine.EnsurePodNetwork(ctx, cidr); err != nil {
		return err
	}
	r.cidr = cidr
	if err := allowPodForwarding(ctx, cidr); err != nil {
		// The pods run; only other machines may not reach them.
		klog.ErrorS(err, "other machines may not reach this node's pods: allow forwarding to them by hand, or run minik-node join as root", "podCIDR", cidr)
	}
	return r.Runtime.Prepare(ctx, pods, wake)
}

// leave removes this node's pod containers, their volumes and its pod
// network from the engine, once the cluster deleted the node.
func (r *joinedDocker) leave(ctx context.Context) error {
	list, err := r.engine.List(ctx)
	if err != nil {
		return err
	}
	var errs []error
	removed := map[string]bool{}
	for _, c := range list {
		if !removed[c.PodUID] {
			removed[c.PodUID] = true
			errs = append(errs, r.engine.RemovePod(ctx, c.PodUID))
		}
	}
	errs = append(errs, r.engine.RemovePodNetwork(ctx))
	if r.cidr != "" {
		errs = append(errs, forbidPodForwarding(ctx, r.cidr))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("remove the deleted node's pods: %w", err)
	}
	return nil
}

// engineRouteTable is the host's routing table as a node in a container
// of the engine changes it: through the engine's route helper. Each
// change has its own time: routes are also removed as the node stops.
type engineRouteTable struct{ engine *engine.Engine }

func (t engineRouteTable) Replace(r podroutes.Route) error { return t.change("replace", r) }

func (t engineRouteTable) Delete(r podroutes.Route) error { return t.change("delete", r) }

func (t engineRouteTable) change(op string, r podroutes.Route) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return t.engine.RouteOnHost(ctx, op, r.Dst.String(), r.Gateway.String())
}
