package engine

import (
	"context"
	"fmt"
	"net/netip"

	cerrdefs "github.com/containerd/errdefs"
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
