package engine

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/moby/moby/client"
	"github.com/stretchr/testify/require"

	"minik.dev/minik/nodeconfig"
)

// testPodNetwork: a joined node's own pod network follows its podCIDR,
// holds its pods, and is removed only when it is the node's.
func (v *testEnv) testPodNetwork(t *testing.T) {
	ctx := testCtx(t)
	cluster := v.cluster(t)
	name := "minik-engine-test-pods-" + randHex(4)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		_, _ = v.cli.NetworkRemove(ctx, name, client.NetworkRemoveOptions{})
	})
	taken := hostPrefixes(ctx, t, v.cli)
	var free []netip.Prefix
	for _, c := range []string{"10.215.1.0/24", "10.215.2.0/24", "10.216.1.0/24", "10.216.2.0/24", "192.168.216.0/24"} {
		if p := netip.MustParsePrefix(c); !overlapsAny(p, taken) {
			free = append(free, p)
		}
	}
	require.GreaterOrEqual(t, len(free), 2, "two free /24s for the test")
	e, err := New(ctx, cluster, "far", nodeconfig.DockerRuntime{
		Network: name, SandboxImage: v.image, SandboxCommand: []string{"/probe", "pause"}, HostIsNode: true,
	})
	require.NoError(t, err)
	t.Cleanup(func() { _ = e.Close() })

	inspect := func() (string, netip.Prefix, netip.Addr) {
		res, err := v.cli.NetworkInspect(ctx, name, client.NetworkInspectOptions{})
		require.NoError(t, err)
		require.Equal(t, "far", res.Network.Labels[nodeconfig.LabelNode])
		require.Len(t, res.Network.IPAM.Config, 1)
		return res.Network.ID, res.Network.IPAM.Config[0].Subnet, res.Network.IPAM.Config[0].Gateway
	}
	require.NoError(t, e.EnsurePodNetwork(ctx, free[0].String()))
	id, subnet, gw := inspect()
	require.Equal(t, free[0], subnet)
	require.Equal(t, free[0].Addr().Next(), gw, "the gateway is the podCIDR's first address")
	require.NoError(t, e.EnsurePodNetwork(ctx, free[0].String()), "again: nothing to do")
	again, _, _ := inspect()
	require.Equal(t, id, again)

	// Another podCIDR: the network is made anew, and pods get its addresses.
	require.NoError(t, e.EnsurePodNetwork(ctx, free[1].String()))
	_, subnet, _ = inspect()
	require.Equal(t, free[1], subnet)
	spec, ip := pod(t, e)
	require.True(t, free[1].Contains(netip.MustParseAddr(ip)), "pod IP %s in %s", ip, free[1])

	require.NoError(t, e.RemovePod(ctx, spec.PodUID))
	require.NoError(t, e.RemovePodNetwork(ctx))
	_, err = v.cli.NetworkInspect(ctx, name, client.NetworkInspectOptions{})
	require.Error(t, err, "the network is gone")
	require.NoError(t, e.RemovePodNetwork(ctx), "removing it again is no error")

	require.ErrorContains(t, e.EnsurePodNetwork(ctx, "fd00::/64"), "is not an IPv4 prefix")

	// A network of that name that is not the node's is never touched.
	_, err = v.cli.NetworkCreate(ctx, name, client.NetworkCreateOptions{Driver: "bridge"})
	require.NoError(t, err)
	require.ErrorContains(t, e.EnsurePodNetwork(ctx, free[0].String()), "is not node far's")
	require.NoError(t, e.RemovePodNetwork(ctx))
	_, err = v.cli.NetworkInspect(ctx, name, client.NetworkInspectOptions{})
	require.NoError(t, err, "someone else's network stays")
}
