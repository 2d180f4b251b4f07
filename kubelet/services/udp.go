package services

import (
	"net"
	"sync"
	"time"

	"k8s.io/klog/v2"
)

// udpIdle is how long a UDP flow lives without a reply (conntrack keeps
// UDP flows for tens of seconds too).
const udpIdle = 30 * time.Second

// relayUDP proxies the datagrams of one Service port: each client gets its
// own socket to one ready endpoint, chosen at its first datagram, and the
// endpoint's replies go back to the client from the Service's address.
func (p *Proxy) relayUDP(pc net.PacketConn, l *listener) {
	var mu sync.Mutex
	flows := map[string]net.Conn{}
	defer func() {
		mu.Lock()
		for _, c := range flows {
			c.Close()
		}
		mu.Unlock()
	}()
	buf := make([]byte, 64<<10)
	for {
		n, client, err := pc.ReadFrom(buf)
		if err != nil {
			return
		}
		mu.Lock()
		up, ok := flows[client.String()]
		mu.Unlock()
		if !ok {
			if up = p.dialUDP(l, client); up == nil {
				continue // no ready endpoint: dropped, as with a REJECT
			}
			mu.Lock()
			flows[client.String()] = up
			mu.Unlock()
			go func(key string, up net.Conn) {
				defer func() {
					mu.Lock()
					delete(flows, key)
					mu.Unlock()
					up.Close()
				}()
				reply := make([]byte, 64<<10)
				for {
					_ = up.SetReadDeadline(time.Now().Add(udpIdle))
					n, err := up.Read(reply)
					if err != nil {
						return
					}
					if _, err := pc.WriteTo(reply[:n], client); err != nil {
						return
					}
				}
			}(client.String(), up)
		}
		if _, err := up.Write(buf[:n]); err != nil {
			klog.V(2).InfoS("relay UDP", "service", l.namespace+"/"+l.service, "err", err)
		}
	}
}

// dialUDP opens a socket to a ready endpoint of the Service port.
func (p *Proxy) dialUDP(l *listener, client net.Addr) net.Conn {
	for _, ep := range p.order(l, client, p.endpoints(l.namespace, l.service, l.portName)) {
		if c, err := net.Dial("udp", ep); err == nil {
			p.remember(l, client, ep)
			return c
		}
	}
	return nil
}
