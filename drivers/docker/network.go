package docker

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"

	"minik.dev/minik/drivers"
	"minik.dev/minik/nodeconfig"
)

// ChooseSubnet implements drivers.ClusterNetworks: the first candidate /16
// that overlaps none of the engine's networks, the host's addresses and taken.
func (d *Driver) ChooseSubnet(ctx context.Context, taken []string) (string, error) {
	used, err := drivers.TakenPrefixes(taken)
	if err != nil {
		return "", fmt.Errorf("choose subnet: %w", err)
	}
	host, err := drivers.HostPrefixes()
	if err != nil {
		return "", fmt.Errorf("choose subnet: %w", err)
	}
	engine, err := d.enginePrefixes(ctx)
	if err != nil {
		return "", fmt.Errorf("choose subnet: %w", err)
	}
	if p, ok := drivers.FreeSubnet(append(append(used, host...), engine...)); ok {
		return p.String(), nil
	}
	return "", errors.New("choose subnet: every candidate /16 (172.20-31.0.0, 10.200-254.0.0) overlaps a network in use; delete unused docker networks")
}

// enginePrefixes lists the subnets of all the engine's networks.
func (d *Driver) enginePrefixes(ctx context.Context) ([]netip.Prefix, error) {
	api, err := d.client()
	if err != nil {
		return nil, err
	}
	list, err := api.NetworkList(ctx, client.NetworkListOptions{})
	if err != nil {
		return nil, fmt.Errorf("list docker networks: %w", err)
	}
	var out []netip.Prefix
	for _, n := range list.Items {
		cfg := n.IPAM.Config
		if len(cfg) == 0 {
			// Some engines list networks without their IPAM details.
			res, err := api.NetworkInspect(ctx, n.ID, client.NetworkInspectOptions{})
			if cerrdefs.IsNotFound(err) {
				continue
			}
			if err != nil {
				return nil, fmt.Errorf("inspect docker network %s: %w", n.Name, err)
			}
			cfg = res.Network.IPAM.Config
		}
		for _, c := range cfg {
			if c.Subnet.IsValid() {
				out = append(out, c.Subnet.Masked())
			}
		}
	}
	return out, nil
}

// clusterNetwork is the cluster's network as the engine has it.
type clusterNetwork struct{ name, id string }

// ReserveSubnet implements drivers.SubnetReserver: it creates the
// cluster's network on subnet now, so that the engine, which refuses
// overlapping networks, settles a race between minik processes choosing
// at the same time (parallel CI jobs, each with its own MINIK_HOME).
func (d *Driver) ReserveSubnet(ctx context.Context, c drivers.Cluster, subnet string) error {
	api, err := d.client()
	if err != nil {
		return err
	}
	_, err = d.ensureNetwork(ctx, api, drivers.Node{Cluster: c.Name, Subnet: subnet, ProfileDir: c.ProfileDir})
	return err
}

// ensureNetwork creates the cluster's network unless it exists as it should.
// A subnet another network took meanwhile is drivers.ErrSubnetTaken.
func (d *Driver) ensureNetwork(ctx context.Context, api *client.Client, n drivers.Node) (clusterNetwork, error) {
	nw := clusterNetwork{name: NetworkName(n.Cluster)}
	layout, err := nodeconfig.SplitSubnet(n.Subnet)
	if err != nil {
		return nw, err
	}
	want, err := netip.ParsePrefix(layout.Subnet.String())
	if err != nil {
		return nw, err
	}
	d.netMu.Lock()
	defer d.netMu.Unlock()
	if nw.id, err = checkNetwork(ctx, api, nw.name, n, want); err != nil || nw.id != "" {
		return nw, err
	}
	gw, _ := netip.AddrFromSlice(layout.Gateway.To4())
	pods, err := netip.ParsePrefix(layout.Pods.String())
	if err != nil {
		return nw, err
	}
	res, err := api.NetworkCreate(ctx, nw.name, client.NetworkCreateOptions{
		Driver: "bridge",
		IPAM: &network.IPAM{Config: []network.IPAMConfig{{
			Subnet: want,
			// The engine allocates pod sandbox IPs from here only; node
			// IPs are static, outside it.
			IPRange: pods,
			Gateway: gw,
		}}},
		Labels: map[string]string{nodeconfig.LabelCluster: n.Cluster, nodeconfig.LabelKind: nodeconfig.KindNetwork, nodeconfig.LabelProfile: n.ProfileDir},
	})
	if err == nil && len(res.Warning) > 0 && strings.Contains(strings.Join(res.Warning, " "), "already exists") {
		// Old engines create a second network of the same name (another
		// minik made one meanwhile); keep the first.
		_, _ = api.NetworkRemove(ctx, res.ID, client.NetworkRemoveOptions{})
		err = errors.New(strings.Join(res.Warning, " "))
	}
	if err != nil {
		// Another process may have created it meanwhile: fine if it is ours.
		id, checkErr := checkNetwork(ctx, api, nw.name, n, want)
		if checkErr == nil && id != "" {
			nw.id = id
			return nw, nil
		}
		if taken := (*drivers.TakenError)(nil); errors.As(checkErr, &taken) {
			return nw, checkErr
		}
		if strings.Contains(err.Error(), "Pool overlaps") {
			err = fmt.Errorf("%w: %w", drivers.ErrSubnetTaken, err)
		}
		return nw, fmt.Errorf("create network %s (%s): %w", nw.name, n.Subnet, err)
	}
	nw.id = res.ID
	return nw, nil
}

// checkNetwork returns the named network's ID, "" if there is none; one
// that exists but is not this cluster's (n's), or has another subnet, is
// an error.
func checkNetwork(ctx context.Context, api *client.Client, name string, n drivers.Node, want netip.Prefix) (string, error) {
	cluster := n.Cluster
	res, err := api.NetworkInspect(ctx, name, client.NetworkInspectOptions{})
	if cerrdefs.IsNotFound(err) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("inspect network %s: %w", name, err)
	}
	nw := res.Network
	if nw.Labels[nodeconfig.LabelCluster] != cluster {
		return "", fmt.Errorf("a docker network named %s exists and is not minik's for cluster %s: remove it (docker network rm %s) or choose another profile name", name, cluster, name)
	}
	if other := otherProfile(nw.Labels, n.ProfileDir); other != "" {
		return "", takenError(cluster, "its network "+name, other)
	}
	for _, c := range nw.IPAM.Config {
		if c.Subnet.Masked() == want {
			return nw.ID, nil
		}
	}
	return "", fmt.Errorf("network %s exists with subnet %v, not %s: delete the cluster (minik delete) and start it again, or, if another minik home's cluster of this name made it, choose another profile name with -p", name, subnets(nw.IPAM.Config), want)
}

func subnets(cfg []network.IPAMConfig) []string {
	out := make([]string, 0, len(cfg))
	for _, c := range cfg {
		out = append(out, c.Subnet.String())
	}
	return out
}
