package guest

import (
	"fmt"
	"net"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// ConfigureNetwork brings up lo and the VM's first ethernet interface with
// n's address, routes through n's gateway, and sets the hostname. With
// n.Bridge, the interface joins that bridge and the address is the
// bridge's. It returns the name of the interface with the address.
func ConfigureNetwork(n Network) (string, error) {
	links, err := netlink.LinkList()
	if err != nil {
		return "", fmt.Errorf("configure the network: %w", err)
	}
	var nic netlink.Link
	for _, l := range links {
		if l.Attrs().Flags&net.FlagLoopback != 0 {
			if err := netlink.LinkSetUp(l); err != nil {
				return "", fmt.Errorf("bring up %s: %w", l.Attrs().Name, err)
			}
			continue
		}
		if nic == nil && l.Type() == "device" {
			nic = l
		}
	}
	if nic == nil {
		return "", fmt.Errorf("configure the network: the VM has no network interface")
	}
	if n.Bridge != "" {
		br, err := bridge(n.Bridge, nic)
		if err != nil {
			return "", err
		}
		nic = br
	}
	name := nic.Attrs().Name
	addr := &netlink.Addr{IPNet: &net.IPNet{IP: n.Address.Addr().AsSlice(), Mask: net.CIDRMask(n.Address.Bits(), 32)}}
	if err := netlink.AddrReplace(nic, addr); err != nil {
		return "", fmt.Errorf("address %s on %s: %w", n.Address, name, err)
	}
	if err := netlink.LinkSetUp(nic); err != nil {
		return "", fmt.Errorf("bring up %s: %w", name, err)
	}
	if n.Gateway.IsValid() {
		route := &netlink.Route{LinkIndex: nic.Attrs().Index, Gw: n.Gateway.AsSlice()}
		if err := netlink.RouteReplace(route); err != nil {
			return "", fmt.Errorf("route via %s: %w", n.Gateway, err)
		}
	}
	if n.Hostname != "" {
		if err := unix.Sethostname([]byte(n.Hostname)); err != nil {
			return "", fmt.Errorf("set hostname: %w", err)
		}
	}
	return name, nil
}

// bridge makes the bridge (once) with the NIC's hardware address, so the
// node keeps its MAC on the network, and puts the NIC in it.
func bridge(name string, nic netlink.Link) (netlink.Link, error) {
	br, err := netlink.LinkByName(name)
	if err != nil {
		attrs := netlink.NewLinkAttrs()
		attrs.Name, attrs.MTU = name, nic.Attrs().MTU
		attrs.HardwareAddr = nic.Attrs().HardwareAddr
		if err := netlink.LinkAdd(&netlink.Bridge{LinkAttrs: attrs}); err != nil {
			return nil, fmt.Errorf("add bridge %s: %w", name, err)
		}
		if br, err = netlink.LinkByName(name); err != nil {
			return nil, fmt.Errorf("add bridge %s: %w", name, err)
		}
	}
	if err := netlink.LinkSetMaster(nic, br); err != nil {
		return nil, fmt.Errorf("put %s in bridge %s: %w", nic.Attrs().Name, name, err)
	}
	if err := netlink.LinkSetUp(nic); err != nil {
		return nil, fmt.Errorf("bring up %s: %w", nic.Attrs().Name, err)
	}
	return br, nil
}
