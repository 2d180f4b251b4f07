package guest

import (
	"fmt"
	"net/netip"
	"strings"
)

// Network is a node's address on its cluster network, from the kernel
// command line: the Debian cloud kernel configures no address itself (it
// is built without CONFIG_IP_PNP), and a node takes no DHCP lease.
type Network struct {
	// Address is the node's IP and the network's prefix length.
	Address netip.Prefix
	// Gateway is the host's address on the network.
	Gateway  netip.Addr
	Hostname string
	// Bridge, when set, is a bridge that takes the node's interface and
	// its address, so that pods plugged into it are on the cluster
	// network too.
	Bridge string
}

// ParseCmdline reads minik.ip=ADDR/BITS, minik.gateway=IP,
// minik.hostname=NAME and minik.bridge=NAME; ok is false when no minik.ip
// is given.
func ParseCmdline(cmdline string) (n Network, ok bool, err error) {
	for _, field := range strings.Fields(cmdline) {
		k, v, _ := strings.Cut(field, "=")
		switch k {
		case "minik.ip":
			if n.Address, err = netip.ParsePrefix(v); err != nil || !n.Address.Addr().Is4() {
				return n, false, fmt.Errorf("minik.ip=%s: want an IPv4 address with its prefix length", v)
			}
			ok = true
		case "minik.gateway":
			if n.Gateway, err = netip.ParseAddr(v); err != nil {
				return n, false, fmt.Errorf("minik.gateway=%s: %w", v, err)
			}
		case "minik.hostname":
			n.Hostname = v
		case "minik.bridge":
			if v == "" || len(v) > 15 || strings.ContainsAny(v, "/ ") {
				return n, false, fmt.Errorf("minik.bridge=%s: not an interface name", v)
			}
			n.Bridge = v
		}
	}
	if ok && n.Gateway.IsValid() && !n.Address.Contains(n.Gateway) {
		return n, false, fmt.Errorf("minik.gateway=%s is not on the node's network %s", n.Gateway, n.Address.Masked())
	}
	return n, ok, nil
}

// Cmdline is the kernel command line that gives a node n.
func (n Network) Cmdline() string {
	s := "minik.ip=" + n.Address.String()
	if n.Gateway.IsValid() {
		s += " minik.gateway=" + n.Gateway.String()
	}
	if n.Hostname != "" {
		s += " minik.hostname=" + n.Hostname
	}
	if n.Bridge != "" {
		s += " minik.bridge=" + n.Bridge
	}
	return s
}

// CmdlineValue returns the value of key=VALUE on the kernel command line,
// or "" when the key is not there.
func CmdlineValue(cmdline, key string) string {
	for _, field := range strings.Fields(cmdline) {
		if k, v, ok := strings.Cut(field, "="); ok && k == key {
			return v
		}
	}
	return ""
}
