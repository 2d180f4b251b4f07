//go:build linux

package runc

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"runtime"
	"sync"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// bindNamespace makes a new namespace of one kind (CLONE_NEWNET with
// "net", CLONE_NEWIPC with "ipc") and keeps it alive with a bind mount at
// path, as `ip netns add` does, so that containers can join it by path.
func bindNamespace(path string, flag int, kind string) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_RDONLY, 0o600)
	if err != nil {
		return fmt.Errorf("create %s namespace: %w", kind, err)
	}
	_ = f.Close()
	errc := make(chan error, 1)
	go func() {
		// The thread is not unlocked: it leaves with the goroutine, so the
		// namespace never leaks into the rest of the process.
		runtime.LockOSThread()
		if err := unix.Unshare(flag); err != nil {
			errc <- err
			return
		}
		src := fmt.Sprintf("/proc/self/task/%d/ns/%s", unix.Gettid(), kind)
		errc <- unix.Mount(src, path, "", unix.MS_BIND, "")
	}()
	if err := <-errc; err != nil {
		_ = os.Remove(path)
		return fmt.Errorf("create %s namespace: %w", kind, err)
	}
	return nil
}

// releaseNamespace unmounts and removes a namespace made by bindNamespace;
// one that is gone is no error.
func releaseNamespace(path string) error {
	if err := unix.Unmount(path, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("release namespace %s: %w", path, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("release namespace %s: %w", path, err)
	}
	return nil
}

// hostVethName is the node's end of a pod's veth pair: a name derived from
// the pod, within the kernel's 15 characters.
func hostVethName(podUID string) string {
	sum := sha256.Sum256([]byte(podUID))
	return "mk" + hex.EncodeToString(sum[:])[:11]
}

// podNetwork is a pod's interface as the engine sets it up.
type podNetwork struct {
	Bridge    string
	IP        net.IP
	PrefixLen int
	Gateway   net.IP
}

// attachPod gives the network namespace at nsPath an eth0 with the pod's
// address, plugged into the node's bridge by a veth pair, and loopback.
// The address has the cluster network's prefix, so every node, pod and
// Service address of the cluster is on-link, as on the docker driver's
// network. A leftover pair of the pod is replaced.
func attachPod(nsPath, hostVeth string, n podNetwork) error {
	br, err := netlink.LinkByName(n.Bridge)
	if err != nil {
		return fmt.Errorf("pod network: bridge %s: %w", n.Bridge, err)
	}
	if old, err := netlink.LinkByName(hostVeth); err == nil {
		_ = netlink.LinkDel(old)
	}
	ns, err := netns.GetFromPath(nsPath)
	if err != nil {
		return fmt.Errorf("pod network: open %s: %w", nsPath, err)
	}
	defer ns.Close()
	veth := &netlink.Veth{
		LinkAttrs:     netlink.LinkAttrs{Name: hostVeth, MasterIndex: br.Attrs().Index, MTU: br.Attrs().MTU},
		PeerName:      "eth0",
		PeerNamespace: netlink.NsFd(int(ns)),
	}
	if err := netlink.LinkAdd(veth); err != nil {
		return fmt.Errorf("pod network: add veth %s: %w", hostVeth, err)
	}
	host, err := netlink.LinkByName(hostVeth)
	if err == nil {
		err = netlink.LinkSetUp(host)
	}
	if err != nil {
		_ = netlink.LinkDel(veth)
		return fmt.Errorf("pod network: %s up: %w", hostVeth, err)
	}
	h, err := netlink.NewHandleAt(ns, unix.NETLINK_ROUTE)
	if err != nil {
		_ = netlink.LinkDel(veth)
		return fmt.Errorf("pod network: enter namespace: %w", err)
	}
	defer h.Close()
	if err := configurePod(h, n); err != nil {
		_ = netlink.LinkDel(veth)
		return fmt.Errorf("pod network: %w", err)
	}
	return nil
}

func configurePod(h *netlink.Handle, n podNetwork) error {
	lo, err := h.LinkByName("lo")
	if err != nil {
		return err
	}
	if err := h.LinkSetUp(lo); err != nil {
		return fmt.Errorf("loopback up: %w", err)
	}
	eth, err := h.LinkByName("eth0")
	if err != nil {
		return err
	}
	addr := &netlink.Addr{IPNet: &net.IPNet{IP: n.IP, Mask: net.CIDRMask(n.PrefixLen, 32)}}
	if err := h.AddrAdd(eth, addr); err != nil {
		return fmt.Errorf("address %s: %w", addr, err)
	}
	if err := h.LinkSetUp(eth); err != nil {
		return fmt.Errorf("eth0 up: %w", err)
	}
	if n.Gateway != nil {
		if err := h.RouteAdd(&netlink.Route{LinkIndex: eth.Attrs().Index, Gw: n.Gateway}); err != nil {
			return fmt.Errorf("default route via %s: %w", n.Gateway, err)
		}
	}
	return nil
}

// detachPod removes the pod's veth pair (its peer goes with it).
func detachPod(hostVeth string) error {
	l, err := netlink.LinkByName(hostVeth)
	var nf netlink.LinkNotFoundError
	if errors.As(err, &nf) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("pod network: %s: %w", hostVeth, err)
	}
	if err := netlink.LinkDel(l); err != nil {
		return fmt.Errorf("pod network: delete %s: %w", hostVeth, err)
	}
	return nil
}

// vethCounters reads a pod's traffic from the node's end of its veth pair,
// turned round: what the node's end receives, the pod sent.
func vethCounters(hostVeth string) (rx, tx [4]uint64, err error) {
	l, err := netlink.LinkByName(hostVeth)
	if err != nil {
		return rx, tx, err
	}
	s := l.Attrs().Statistics
	if s == nil {
		return rx, tx, errors.New("no statistics")
	}
	rx = [4]uint64{s.TxBytes, s.TxPackets, s.TxErrors, s.TxDropped}
	tx = [4]uint64{s.RxBytes, s.RxPackets, s.RxErrors, s.RxDropped}
	return rx, tx, nil
}

// addressPool hands out pod addresses from the node's pod range, skipping
// its first two and its last (network, the range's conventional gateway,
// broadcast), so they never clash with a node or another node's pods.
type addressPool struct {
	podCIDR func(ctx context.Context) (string, error)

	mu    sync.Mutex
	cidr  *net.IPNet
	taken map[string]string // address -> pod UID
}

func (p *addressPool) allocate(ctx context.Context, podUID string) (net.IP, error) {
	p.mu.Lock()
	cidr := p.cidr
	p.mu.Unlock()
	if cidr == nil {
		s, err := p.podCIDR(ctx)
		if err != nil {
			return nil, fmt.Errorf("pod address: %w", err)
		}
		_, c, err := net.ParseCIDR(s)
		if err != nil || c.IP.To4() == nil {
			return nil, fmt.Errorf("pod address: node pod range %q is not IPv4", s)
		}
		cidr = c
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cidr = cidr
	for ip, uid := range p.taken {
		if uid == podUID {
			return net.ParseIP(ip).To4(), nil
		}
	}
	ones, bits := cidr.Mask.Size()
	size := uint32(1) << (bits - ones)
	base := binary.BigEndian.Uint32(cidr.IP.To4())
	for i := uint32(2); i+1 < size; i++ {
		ip := make(net.IP, 4)
		binary.BigEndian.PutUint32(ip, base+i)
		if _, used := p.taken[ip.String()]; !used {
			p.taken[ip.String()] = podUID
			return ip, nil
		}
	}
	return nil, fmt.Errorf("pod address: the node's pod range %s is full", cidr)
}

func (p *addressPool) release(podUID string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for ip, uid := range p.taken {
		if uid == podUID {
			delete(p.taken, ip)
		}
	}
}
