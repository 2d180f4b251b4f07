package sim

import (
	"errors"
	"fmt"
	"math/big"
	"net"
	"sync"
)

// ipam hands out pod IPs from the node's podCIDR.
type ipam struct {
	mu    sync.Mutex
	cidr  *net.IPNet
	size  int
	used  map[int]string // offset -> owner (pod UID)
	owner map[string]int
	next  int
}

func newIPAM(cidr string) (*ipam, error) {
	_, n, err := net.ParseCIDR(cidr)
	if err != nil {
		return nil, fmt.Errorf("parse pod CIDR: %w", err)
	}
	ones, bits := n.Mask.Size()
	size := 1 << min(bits-ones, 16)
	if size < 4 {
		return nil, fmt.Errorf("pod CIDR %s is too small", cidr)
	}
	return &ipam{cidr: n, size: size, used: map[int]string{}, owner: map[string]int{}, next: 2}, nil
}

// offset 0 is the network, 1 the node's bridge by convention, last the broadcast.
func (a *ipam) ip(off int) string {
	base := new(big.Int).SetBytes(a.cidr.IP.To16())
	ip := base.Add(base, big.NewInt(int64(off))).Bytes()
	out := make(net.IP, 16)
	copy(out[16-len(ip):], ip)
	if v4 := a.cidr.IP.To4(); v4 != nil {
		return out.To4().String()
	}
	return out.String()
}

// Allocate returns owner's IP, giving it a free one if it has none.
func (a *ipam) Allocate(owner string) (string, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if off, ok := a.owner[owner]; ok {
		return a.ip(off), nil
	}
	for i := 0; i < a.size-3; i++ {
		off := 2 + (a.next-2+i)%(a.size-3)
		if _, taken := a.used[off]; !taken {
			a.used[off] = owner
			a.owner[owner] = off
			a.next = off + 1
			return a.ip(off), nil
		}
	}
	return "", errors.New("allocate pod IP: the node's pod CIDR is exhausted")
}

// Reserve records an IP already given to owner (after an agent restart).
func (a *ipam) Reserve(owner, ip string) {
	parsed := net.ParseIP(ip)
	if parsed == nil || !a.cidr.Contains(parsed) {
		return
	}
	off := int(new(big.Int).Sub(new(big.Int).SetBytes(parsed.To16()), new(big.Int).SetBytes(a.cidr.IP.To16())).Int64())
	a.mu.Lock()
	defer a.mu.Unlock()
	if _, taken := a.used[off]; taken {
		return
	}
	a.used[off] = owner
	a.owner[owner] = off
}

// Release frees owner's IP.
func (a *ipam) Release(owner string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if off, ok := a.owner[owner]; ok {
		delete(a.used, off)
		delete(a.owner, owner)
	}
}
