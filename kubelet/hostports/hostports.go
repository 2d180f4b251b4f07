// Package hostports serves pods' host ports on nodes that run real
// containers, as the CNI portmap plugin does for a kubelet but in user
// space (no iptables): for each container port with a hostPort, a TCP or
// UDP listener on the node at hostIP:hostPort (every address of the node
// when hostIP is empty) relays to the pod's IP and container port.
package hostports

import (
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"

	"minik.dev/minik/kubelet/relay"
)

// dialTimeout bounds a connection to the pod.
const dialTimeout = 5 * time.Second

// Mapping is one host port of a pod.
type Mapping struct {
	Protocol      corev1.Protocol
	HostIP        string
	HostPort      int32
	ContainerPort int32
}

// Mappings are the host ports of a pod's containers, as the kubelet hands
// them to the runtime.
func Mappings(pod *corev1.Pod) []Mapping {
	var out []Mapping
	for _, c := range pod.Spec.Containers {
		for _, p := range c.Ports {
			if p.HostPort <= 0 {
				continue
			}
			proto := p.Protocol
			if proto == "" {
				proto = corev1.ProtocolTCP
			}
			out = append(out, Mapping{Protocol: proto, HostIP: p.HostIP, HostPort: p.HostPort, ContainerPort: p.ContainerPort})
		}
	}
	return out
}

// Forwarder serves the host ports of a node's pods.
type Forwarder struct {
	mu   sync.Mutex
	pods map[string]*served
}

// served is what one pod has open.
type served struct {
	ip      string
	maps    []Mapping
	closers []io.Closer
}

// New returns a Forwarder serving nothing yet.
func New() *Forwarder {
	return &Forwarder{pods: map[string]*served{}}
}

// Set serves pod uid's host ports, relayed to ip; a pod already served
// the same is left as it is. When a port cannot be opened (another
// program has it, say) nothing of the pod's is served.
func (f *Forwarder) Set(uid, ip string, maps []Mapping) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if s, ok := f.pods[uid]; ok {
		if s.ip == ip && slices.Equal(s.maps, maps) {
			return nil
		}
		s.close()
		delete(f.pods, uid)
	}
	if len(maps) == 0 {
		return nil
	}
	s := &served{ip: ip, maps: maps}
	for _, m := range maps {
		c, err := open(m, ip)
		if err != nil {
			s.close()
			return err
		}
		s.closers = append(s.closers, c)
	}
	f.pods[uid] = s
	return nil
}

// Remove stops serving pod uid's host ports.
func (f *Forwarder) Remove(uid string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if s, ok := f.pods[uid]; ok {
		s.close()
		delete(f.pods, uid)
	}
}

// Close stops serving every pod's host ports.
func (f *Forwarder) Close() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for uid, s := range f.pods {
		s.close()
		delete(f.pods, uid)
	}
}

func (s *served) close() {
	for _, c := range s.closers {
		_ = c.Close()
	}
	s.closers = nil
}

// open listens for one mapping and relays what arrives to the pod.
func open(m Mapping, ip string) (io.Closer, error) {
	addr := net.JoinHostPort(m.HostIP, strconv.Itoa(int(m.HostPort)))
	upstream := net.JoinHostPort(ip, strconv.Itoa(int(m.ContainerPort)))
	network := strings.ToLower(string(m.Protocol))
	dial := func(net.Addr) (net.Conn, error) { return net.DialTimeout(network, upstream, dialTimeout) }
	switch m.Protocol {
	case corev1.ProtocolTCP:
		l, err := net.Listen(network, addr)
		if err != nil {
			return nil, fmt.Errorf("open host port %s/%s: %w", addr, m.Protocol, err)
		}
		go relay.TCP(l, dial)
		return l, nil
	case corev1.ProtocolUDP:
		pc, err := net.ListenPacket(network, addr)
		if err != nil {
			return nil, fmt.Errorf("open host port %s/%s: %w", addr, m.Protocol, err)
		}
		go relay.UDP(pc, dial)
		return pc, nil
	default:
		return nil, fmt.Errorf("open host port %s/%s: %w", addr, m.Protocol, errUnsupported)
	}
}

// errUnsupported: the relay is TCP and UDP only.
var errUnsupported = errors.New("only TCP and UDP host ports are served")
