package drivers

import (
	"fmt"
	"net"
	"net/netip"
)

// CandidateSubnets are the private /16s ClusterNetworks drivers choose
// from: ranges that engines, VM managers and VPNs rarely use by default
// (docker takes 172.17-19 and 192.168 first, libvirt 192.168.122).
func CandidateSubnets() []netip.Prefix {
	var out []netip.Prefix
	for b := 20; b <= 31; b++ {
		out = append(out, netip.PrefixFrom(netip.AddrFrom4([4]byte{172, byte(b), 0, 0}), 16))
	}
	for b := 200; b <= 254; b++ {
		out = append(out, netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(b), 0, 0}), 16))
	}
	return out
}

// FreeSubnet is the first candidate that overlaps none of used.
func FreeSubnet(used []netip.Prefix) (netip.Prefix, bool) {
	for _, c := range CandidateSubnets() {
		free := true
		for _, u := range used {
			if c.Overlaps(u) {
				free = false
				break
			}
		}
		if free {
			return c, true
		}
	}
	return netip.Prefix{}, false
}

// TakenPrefixes parses subnets other clusters hold ("172.20.0.0/16").
func TakenPrefixes(taken []string) ([]netip.Prefix, error) {
	out := make([]netip.Prefix, 0, len(taken))
	for _, s := range taken {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return nil, fmt.Errorf("parse taken subnet %q: %w", s, err)
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

// HostPrefixes lists this machine's own IPv4 networks: a cluster network
// on one of them would shadow it.
func HostPrefixes() ([]netip.Prefix, error) {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return nil, fmt.Errorf("list host addresses: %w", err)
	}
	var out []netip.Prefix
	for _, a := range addrs {
		ipn, ok := a.(*net.IPNet)
		if !ok || ipn.IP.To4() == nil {
			continue
		}
		ip, _ := netip.AddrFromSlice(ipn.IP.To4())
		ones, bits := ipn.Mask.Size()
		if bits == 128 {
			ones -= 96 // an IPv4 address with an IPv6-sized mask
		}
		out = append(out, netip.PrefixFrom(ip, ones).Masked())
	}
	return out, nil
}
