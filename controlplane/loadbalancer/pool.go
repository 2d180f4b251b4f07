// Package loadbalancer gives LoadBalancer Services their addresses: the
// upstream service controller (k8s.io/cloud-provider) runs in the control
// plane with a minik cloud provider whose only capability is a pool of
// addresses. Where the pool is on the cluster's own network (docker), the
// control-plane node answers on those addresses (package
// kubelet/services); on the sim runtime they exist only in the API.
package loadbalancer

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"sync"
)

// ErrPoolExhausted is returned when every address of the pool is taken.
var ErrPoolExhausted = errors.New("no free address")

// Pool hands out the addresses of one IPv4 range, one per Service.
type Pool struct {
	cidr        *net.IPNet
	first, last uint32

	mu        sync.Mutex
	owner     map[uint32]string // address -> "namespace/name"
	byService map[string]uint32
}

// NewPool returns a pool of the usable addresses of cidr (not its
// network and broadcast addresses).
func NewPool(cidr string) (*Pool, error) {
	_, n, err := net.ParseCIDR(cidr)
	if err != nil || n.IP.To4() == nil {
		return nil, fmt.Errorf("load balancer pool %q is not an IPv4 CIDR", cidr)
	}
	ones, bits := n.Mask.Size()
	if bits-ones < 2 {
		return nil, fmt.Errorf("load balancer pool %s is too small", cidr)
	}
	base := binary.BigEndian.Uint32(n.IP.To4())
	size := uint32(1) << (bits - ones)
	return &Pool{cidr: n, first: base + 1, last: base + size - 2, owner: map[uint32]string{}, byService: map[string]uint32{}}, nil
}

// String is the pool's range.
func (p *Pool) String() string { return p.cidr.String() }

// Allocate gives service (namespace/name) an address: the one it has, else
// requested if that is in the pool and free ("" for any), else the first
// free one.
func (p *Pool) Allocate(service, requested string) (string, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if requested != "" {
		ip := net.ParseIP(requested).To4()
		if ip == nil || !p.cidr.Contains(ip) {
			return "", fmt.Errorf("loadBalancerIP %s is outside the pool %s", requested, p.cidr)
		}
		a := binary.BigEndian.Uint32(ip)
		if a < p.first || a > p.last {
			return "", fmt.Errorf("loadBalancerIP %s is not a usable address of the pool %s", requested, p.cidr)
		}
		if o, ok := p.owner[a]; ok && o != service {
			return "", fmt.Errorf("loadBalancerIP %s is taken by service %s", requested, o)
		}
		p.release(service)
		p.take(service, a)
		return requested, nil
	}
	if a, ok := p.byService[service]; ok {
		return format(a), nil
	}
	for a := p.first; a <= p.last; a++ {
		if _, taken := p.owner[a]; !taken {
			p.take(service, a)
			return format(a), nil
		}
	}
	return "", fmt.Errorf("%w in the load balancer pool %s (%d addresses, all taken)", ErrPoolExhausted, p.cidr, p.last-p.first+1)
}

// Release frees service's address, if it has one.
func (p *Pool) Release(service string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.release(service)
}

func (p *Pool) take(service string, a uint32) {
	p.owner[a] = service
	p.byService[service] = a
}

func (p *Pool) release(service string) {
	if a, ok := p.byService[service]; ok {
		delete(p.owner, a)
		delete(p.byService, service)
	}
}

func format(a uint32) string {
	b := make(net.IP, 4)
	binary.BigEndian.PutUint32(b, a)
	return b.String()
}
