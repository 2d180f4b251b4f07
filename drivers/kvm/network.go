package kvm

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"

	"github.com/digitalocean/go-libvirt"
	"libvirt.org/go/libvirtxml"

	"minik.dev/minik/drivers"
)

// ChooseSubnet implements drivers.ClusterNetworks: the first candidate /16
// that overlaps none of libvirt's networks, the host's and taken.
func (d *Driver) ChooseSubnet(ctx context.Context, taken []string) (string, error) {
	used, err := drivers.TakenPrefixes(taken)
	if err != nil {
		return "", fmt.Errorf("choose subnet: %w", err)
	}
	host, err := drivers.HostPrefixes()
	if err != nil {
		return "", fmt.Errorf("choose subnet: %w", err)
	}
	l, err := d.connect(ctx)
	if err != nil {
		return "", fmt.Errorf("choose subnet: %w", err)
	}
	defer l.Disconnect()
	nets, _, err := l.ConnectListAllNetworks(1, 0)
	if err != nil {
		return "", fmt.Errorf("choose subnet: list libvirt networks: %w", err)
	}
	for _, nw := range nets {
		xml, err := l.NetworkGetXMLDesc(nw, 0)
		if err != nil {
			continue // gone meanwhile
		}
		used = append(used, networkPrefixes(xml)...)
	}
	if p, ok := drivers.FreeSubnet(append(used, host...)); ok {
		return p.String(), nil
	}
	return "", errors.New("choose subnet: every candidate /16 (172.20-31.0.0, 10.200-254.0.0) overlaps a network in use; remove unused libvirt networks (virsh net-list --all)")
}

// networkPrefixes are the IPv4 ranges of a libvirt network.
func networkPrefixes(xml string) []netip.Prefix {
	var n libvirtxml.Network
	if err := n.Unmarshal(xml); err != nil {
		return nil
	}
	var out []netip.Prefix
	for _, ip := range n.IPs {
		a, err := netip.ParseAddr(ip.Address)
		if err != nil || !a.Is4() {
			continue
		}
		bits := int(ip.Prefix)
		if bits == 0 && ip.Netmask != "" {
			if m, err := netip.ParseAddr(ip.Netmask); err == nil {
				b := m.As4()
				for _, x := range b {
					for ; x != 0; x <<= 1 {
						bits++
					}
				}
			}
		}
		out = append(out, netip.PrefixFrom(a, bits).Masked())
	}
	return out
}

// ReserveSubnet implements drivers.SubnetReserver: the cluster's network
// is made at once, so that libvirt, which refuses a network overlapping
// an active one, settles a race between minik processes.
func (d *Driver) ReserveSubnet(ctx context.Context, c drivers.Cluster, subnet string) error {
	l, err := d.connect(ctx)
	if err != nil {
		return err
	}
	defer l.Disconnect()
	return d.ensureNetwork(l, c, subnet)
}

// ensureNetwork defines and starts the cluster's network unless it is
// there and active; one of that name that is not this cluster's, or is
// another minik home's, is an error.
func (d *Driver) ensureNetwork(l *libvirt.Libvirt, c drivers.Cluster, subnet string) error {
	cluster := c.Name
	name := NetworkName(cluster)
	want, err := netip.ParsePrefix(subnet)
	if err != nil {
		return fmt.Errorf("network %s: subnet %q: %w", name, subnet, err)
	}
	nw, err := l.NetworkLookupByName(name)
	switch {
	case isNoNetwork(err):
		xml, err := NetworkXML(NetworkSpec{Cluster: cluster, Profile: c.ProfileDir, Name: name, Subnet: want})
		if err != nil {
			return err
		}
		if nw, err = l.NetworkDefineXML(xml); err != nil {
			return fmt.Errorf("define network %s: %w", name, err)
		}
	case err != nil:
		return fmt.Errorf("look up network %s: %w", name, err)
	default:
		xml, err := l.NetworkGetXMLDesc(nw, 0)
		if err != nil {
			return fmt.Errorf("read network %s: %w", name, err)
		}
		if lb, ok := NetworkLabels(xml); !ok || lb.Cluster != cluster {
			return fmt.Errorf("a libvirt network named %s exists and is not minik's for cluster %s: remove it (virsh net-undefine %s) or choose another profile name", name, cluster, name)
		} else if otherProfile(lb.Profile, c.ProfileDir) {
			return takenError(cluster, "its network "+name, lb.Profile)
		}
		if got := networkPrefixes(xml); len(got) == 0 || got[0] != want.Masked() {
			return fmt.Errorf("network %s exists with subnet %v, not %s: delete the cluster (minik delete) and start it again", name, got, want)
		}
	}
	if active, err := l.NetworkIsActive(nw); err == nil && active == 1 {
		return nil
	}
	if err := l.NetworkCreate(nw); err != nil {
		if active, aerr := l.NetworkIsActive(nw); aerr == nil && active == 1 {
			return nil // started meanwhile
		}
		if strings.Contains(err.Error(), "in use") {
			_ = l.NetworkUndefine(nw)
			return fmt.Errorf("%w: start network %s (%s): %w", drivers.ErrSubnetTaken, name, subnet, err)
		}
		return fmt.Errorf("start network %s (%s): %w", name, subnet, err)
	}
	return nil
}

// DeleteCluster implements drivers.ClusterDeleter: every domain and
// network labelled with the cluster, whatever state it is in, except
// another minik home's. A network made before the profile label is kept
// while another home's domains of the cluster remain.
func (d *Driver) DeleteCluster(ctx context.Context, c drivers.Cluster) error {
	cluster := c.Name
	l, err := d.connect(ctx)
	if err != nil {
		return fmt.Errorf("delete cluster %s: %w", cluster, err)
	}
	defer l.Disconnect()
	var errs []error
	othersRemain := false
	doms, _, err := l.ConnectListAllDomains(1, 0)
	if err != nil {
		return fmt.Errorf("delete cluster %s: list domains: %w", cluster, err)
	}
	for _, dom := range doms {
		xml, err := l.DomainGetXMLDesc(dom, 0)
		if err != nil {
			continue
		}
		if lb, ok := DomainLabels(xml); ok && lb.Cluster == cluster {
			if otherProfile(DomainProfile(xml), c.ProfileDir) {
				othersRemain = true
				continue
			}
			if err := removeDomain(l, dom); err != nil {
				errs = append(errs, fmt.Errorf("remove domain %s: %w", dom.Name, err))
			}
		}
	}
	nets, _, err := l.ConnectListAllNetworks(1, 0)
	if err != nil {
		return fmt.Errorf("delete cluster %s: list networks: %w", cluster, err)
	}
	for _, nw := range nets {
		xml, err := l.NetworkGetXMLDesc(nw, 0)
		if err != nil {
			continue
		}
		if lb, ok := NetworkLabels(xml); ok && lb.Cluster == cluster {
			if otherProfile(lb.Profile, c.ProfileDir) || (lb.Profile == "" && othersRemain) {
				continue
			}
			if active, err := l.NetworkIsActive(nw); err == nil && active == 1 {
				if err := l.NetworkDestroy(nw); err != nil && !isNoNetwork(err) {
					errs = append(errs, fmt.Errorf("stop network %s: %w", nw.Name, err))
					continue
				}
			}
			if err := l.NetworkUndefine(nw); err != nil && !isNoNetwork(err) {
				errs = append(errs, fmt.Errorf("remove network %s: %w", nw.Name, err))
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("delete cluster %s: %w", cluster, err)
	}
	return nil
}
