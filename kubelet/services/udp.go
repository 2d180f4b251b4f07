package services

import (
	"errors"
	"net"
)

// errNoEndpoint: the Service port has no ready endpoint to send a client to.
var errNoEndpoint = errors.New("no ready endpoint")

// dialUDP opens a socket to a ready endpoint of the Service port.
func (p *Proxy) dialUDP(l *listener, client net.Addr) (net.Conn, error) {
	err := errNoEndpoint
	for _, ep := range p.order(l, client, p.endpoints(l.namespace, l.service, l.portName)) {
		var c net.Conn
		if c, err = net.Dial("udp", ep); err == nil {
			p.remember(l, client, ep)
			return c, nil
		}
	}
	return nil, err
}
