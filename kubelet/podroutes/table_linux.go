package podroutes

import (
	"errors"
	"fmt"
	"syscall"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"
)

// routeProtocol marks minik's routes (`ip route` shows proto 77), so
// they are told apart from the machine's own.
const routeProtocol netlink.RouteProtocol = 77

// hostTable is the routing table of this process's network namespace.
type hostTable struct{}

// NewTable is this machine's main routing table.
func NewTable() Table { return hostTable{} }

func (hostTable) Replace(r Route) error {
	if err := netlink.RouteReplace(&netlink.Route{Dst: r.Dst, Gw: r.Gateway, Protocol: routeProtocol}); err != nil {
		return fmt.Errorf("route %s: %w", r, err)
	}
	return proxyARPOverlapping(r)
}

// proxyARPOverlapping turns proxy ARP on for the links whose own subnet
// holds the route's destination (a docker driver's cluster network holds
// the cluster's pod CIDR, so a joined node's podCIDR is inside it): their
// hosts take those pod IPs for neighbours and ask for them by ARP, which
// the machine then answers, and it forwards along the route. Addresses it
// has no other route to still go unanswered.
func proxyARPOverlapping(r Route) error {
	gwRoutes, err := netlink.RouteGet(r.Gateway)
	if err != nil || len(gwRoutes) == 0 {
		return fmt.Errorf("route %s: find the gateway's link: %w", r, err)
	}
	addrs, err := netlink.AddrList(nil, netlink.FAMILY_V4)
	if err != nil {
		return fmt.Errorf("route %s: list addresses: %w", r, err)
	}
	for _, a := range addrs {
		if a.LinkIndex == gwRoutes[0].LinkIndex || a.IPNet == nil || !a.IPNet.Contains(r.Dst.IP) {
			continue
		}
		if err := setProxyARP(a.LinkIndex); err != nil {
			return fmt.Errorf("route %s: proxy ARP on link %d: %w", r, a.LinkIndex, err)
		}
	}
	return nil
}

// setProxyARP sets the link's IPv4 proxy_arp through rtnetlink (devconf
// in IFLA_AF_SPEC), which works where /proc/sys is read-only, as in a
// container.
func setProxyARP(index int) error {
	const (
		iflaInetConf        = 1 // IFLA_INET_CONF
		ipv4DevconfProxyARP = 3 // IPV4_DEVCONF_PROXY_ARP
	)
	req := nl.NewNetlinkRequest(unix.RTM_SETLINK, unix.NLM_F_ACK)
	msg := nl.NewIfInfomsg(unix.AF_UNSPEC)
	msg.Index = int32(index)
	req.AddData(msg)
	spec := nl.NewRtAttr(unix.IFLA_AF_SPEC, nil)
	spec.AddRtAttr(unix.AF_INET, nil).AddRtAttr(iflaInetConf, nil).AddRtAttr(ipv4DevconfProxyARP, nl.Uint32Attr(1))
	req.AddData(spec)
	_, err := req.Execute(unix.NETLINK_ROUTE, 0)
	return err
}

func (hostTable) Delete(r Route) error {
	err := netlink.RouteDel(&netlink.Route{Dst: r.Dst, Gw: r.Gateway, Protocol: routeProtocol})
	if err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("remove route %s: %w", r, err)
	}
	return nil
}
