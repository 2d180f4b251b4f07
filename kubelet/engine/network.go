package engine

import (
	"bytes"
	"context"
	"fmt"
	"net/netip"
	"strings"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"

	"minik.dev/minik/nodeconfig"
)

// EnsurePodNetwork makes the node's own pod network: a bridge network of
// the engine on subnet (the node's podCIDR), whose first address is the
// gateway on the machine. A joined machine's pods live there, so their
// addresses are the node's podCIDR, which the cluster routes to the
// node. A network of that name from an earlier podCIDR is made anew; one
// that is not this node's is an error.
func (e *Engine) EnsurePodNetwork(ctx context.Context, subnet string) error {
	want, err := netip.ParsePrefix(subnet)
	if err != nil || !want.Addr().Is4() {
		return fmt.Errorf("pod network of node %s: podCIDR %q is not an IPv4 prefix", e.node, subnet)
	}
	want = want.Masked()
	name := e.cfg.Network
	res, err := e.cli.NetworkInspect(ctx, name, client.NetworkInspectOptions{})
	switch {
	case cerrdefs.IsNotFound(err):
	case err != nil:
		return fmt.Errorf("inspect network %s: %w", name, err)
	case res.Network.Labels[nodeconfig.LabelCluster] != e.cluster || res.Network.Labels[nodeconfig.LabelNode] != e.node:
		return fmt.Errorf("a docker network named %s exists and is not node %s's: remove it (docker network rm %s) or join with another --name", name, e.node, name)
	default:
		for _, c := range res.Network.IPAM.Config {
			if c.Subnet.Masked() == want {
				return nil
			}
		}
		// The node was given another podCIDR (it joined again): no pod
		// of the old one survives the agent's start anyway.
		if _, err := e.cli.NetworkRemove(ctx, res.Network.ID, client.NetworkRemoveOptions{}); err != nil {
			return fmt.Errorf("remove network %s of an earlier podCIDR: %w", name, err)
		}
	}
	_, err = e.cli.NetworkCreate(ctx, name, client.NetworkCreateOptions{
		Driver: "bridge",
		IPAM: &network.IPAM{Config: []network.IPAMConfig{{
			Subnet:  want,
			Gateway: want.Addr().Next(),
		}}},
		Labels: map[string]string{
			nodeconfig.LabelCluster: e.cluster,
			nodeconfig.LabelNode:    e.node,
			nodeconfig.LabelKind:    nodeconfig.KindNetwork,
		},
	})
	if err != nil {
		return fmt.Errorf("create network %s on %s for the pods of node %s: %w", name, want, e.node, err)
	}
	return nil
}

// RemovePodNetwork removes the network EnsurePodNetwork made, if it is
// this node's; its pods must be gone.
func (e *Engine) RemovePodNetwork(ctx context.Context) error {
	res, err := e.cli.NetworkInspect(ctx, e.cfg.Network, client.NetworkInspectOptions{})
	if cerrdefs.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("inspect network %s: %w", e.cfg.Network, err)
	}
	if res.Network.Labels[nodeconfig.LabelCluster] != e.cluster || res.Network.Labels[nodeconfig.LabelNode] != e.node {
		return nil
	}
	if _, err := e.cli.NetworkRemove(ctx, res.Network.ID, client.NetworkRemoveOptions{}); err != nil && !cerrdefs.IsNotFound(err) {
		return fmt.Errorf("remove network %s: %w", e.cfg.Network, err)
	}
	return nil
}

// routeHelperCommand is what the route helper runs, after the node
// binary: it parks, and removes the routes it made when it is stopped.
var routeHelperCommand = []string{"route", "hold"}

// EnsureRouteHelper returns the cluster's route helper, a container of
// the node image in the host's network namespace with NET_ADMIN, made
// and started if needed: routes changed by running the node binary's
// `route` command in it are the host's.
func (e *Engine) EnsureRouteHelper(ctx context.Context) (string, error) {
	name := "minik-routes-" + e.cluster
	res, err := e.cli.ContainerInspect(ctx, name, client.ContainerInspectOptions{})
	switch {
	case cerrdefs.IsNotFound(err):
	case err != nil:
		return "", fmt.Errorf("inspect route helper %s: %w", name, err)
	case res.Container.Config.Labels[nodeconfig.LabelCluster] != e.cluster || res.Container.Config.Labels[nodeconfig.LabelKind] != nodeconfig.KindRouter:
		return "", fmt.Errorf("a container named %s exists and is not minik's: remove it (docker rm -f %s)", name, name)
	case res.Container.State != nil && res.Container.State.Running:
		return res.Container.ID, nil
	default:
		if err := e.Start(ctx, res.Container.ID); err != nil {
			return "", err
		}
		return res.Container.ID, nil
	}
	created, err := e.cli.ContainerCreate(ctx, client.ContainerCreateOptions{
		Name: name,
		Config: &container.Config{
			Image:      e.cfg.SandboxImage,
			Entrypoint: append([]string{e.nodeBinary()}, routeHelperCommand...),
			Cmd:        []string{},
			Labels: map[string]string{
				nodeconfig.LabelCluster: e.cluster,
				nodeconfig.LabelNode:    e.node,
				nodeconfig.LabelKind:    nodeconfig.KindRouter,
			},
		},
		HostConfig: &container.HostConfig{
			NetworkMode: container.NetworkMode(network.NetworkHost),
			CapAdd:      []string{"NET_ADMIN"},
		},
	})
	if err != nil {
		return "", fmt.Errorf("create route helper %s: %w", name, err)
	}
	if err := e.Start(ctx, created.ID); err != nil {
		_ = e.Remove(ctx, created.ID)
		return "", err
	}
	return created.ID, nil
}

// RouteOnHost replaces ("replace") or deletes ("delete") the host's
// route to dst through gw, through the route helper.
func (e *Engine) RouteOnHost(ctx context.Context, op, dst, gw string) error {
	id, err := e.EnsureRouteHelper(ctx)
	if err != nil {
		return err
	}
	var out bytes.Buffer
	code, err := e.Exec(ctx, id, []string{e.nodeBinary(), "route", op, dst, gw}, nil, &out, &out, false, nil)
	if err != nil {
		return err
	}
	if code != 0 {
		return fmt.Errorf("route %s %s via %s on the host: %s", op, dst, gw, strings.TrimSpace(out.String()))
	}
	return nil
}

// nodeBinary is minik-node's path in the node image.
func (e *Engine) nodeBinary() string {
	if len(e.cfg.SandboxCommand) > 0 {
		return e.cfg.SandboxCommand[0]
	}
	return "/minik-node"
}
