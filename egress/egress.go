// Package egress is the apiserver's door to the cluster network: an HTTP
// CONNECT proxy on a unix socket, named in the apiserver's egress selector
// config for "cluster" traffic (webhooks, aggregated APIs, pod and service
// proxies, kubelets). It dials only addresses that exist on this machine and
// refuses simulated pod and Service IPs at once, so no packet for an address
// that exists only in the API ever leaves the host.
package egress

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Proxy is a running egress proxy.
type Proxy struct {
	allowed []*net.IPNet
	// hosts are single addresses allowed besides the networks: the real
	// addresses of nodes that joined from other machines.
	hosts    sync.Map
	listener net.Listener
	dial     func(ctx context.Context, network, addr string) (net.Conn, error)
	wg       sync.WaitGroup
}

// Listen starts a proxy on the unix socket at path that allows loopback
// addresses plus the given CIDRs (a real cluster network, e.g. docker's).
func Listen(path string, allowCIDRs []string) (*Proxy, error) {
	d := &net.Dialer{Timeout: 10 * time.Second}
	p := &Proxy{dial: d.DialContext}
	for _, c := range allowCIDRs {
		_, n, err := net.ParseCIDR(c)
		if err != nil {
			return nil, fmt.Errorf("parse allowed egress CIDR: %w", err)
		}
		p.allowed = append(p.allowed, n)
	}
	l, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("listen for egress on %s: %w", path, err)
	}
	p.listener = l
	return p, nil
}

// Serve handles connections until ctx is done.
func (p *Proxy) Serve(ctx context.Context) {
	go func() {
		<-ctx.Done()
		p.listener.Close()
	}()
	for {
		conn, err := p.listener.Accept()
		if err != nil {
			break
		}
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			p.handle(ctx, conn)
		}()
	}
	p.wg.Wait()
}

// Allowed reports whether ip may be dialled.
func (p *Proxy) Allowed(ip net.IP) bool {
	if ip.IsLoopback() {
		return true
	}
	for _, n := range p.allowed {
		if n.Contains(ip) {
			return true
		}
	}
	_, ok := p.hosts.Load(ip.String())
	return ok
}

// AllowHost lets the proxy dial ip (a joined node's address) until
// ForgetHost.
func (p *Proxy) AllowHost(ip net.IP) { p.hosts.Store(ip.String(), struct{}{}) }

// ForgetHost undoes AllowHost.
func (p *Proxy) ForgetHost(ip net.IP) { p.hosts.Delete(ip.String()) }

func (p *Proxy) handle(ctx context.Context, conn net.Conn) {
	defer conn.Close()
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	req, err := http.ReadRequest(bufio.NewReader(conn))
	if err != nil {
		return
	}
	_ = conn.SetReadDeadline(time.Time{})
	if req.Method != http.MethodConnect {
		reply(conn, http.StatusMethodNotAllowed, "minik egress accepts only CONNECT")
		return
	}
	target, err := p.resolve(ctx, req.Host)
	if err != nil {
		reply(conn, http.StatusForbidden, err.Error())
		return
	}
	upstream, err := p.dial(ctx, "tcp", target)
	if err != nil {
		reply(conn, http.StatusBadGateway, "minik egress: dial "+target+": "+err.Error())
		return
	}
	defer upstream.Close()
	if _, err := io.WriteString(conn, "HTTP/1.1 200 Connection established\r\n\r\n"); err != nil {
		return
	}
	done := make(chan struct{}, 2)
	go func() { _, _ = io.Copy(upstream, conn); closeWrite(upstream); done <- struct{}{} }()
	go func() { _, _ = io.Copy(conn, upstream); closeWrite(conn); done <- struct{}{} }()
	select {
	case <-done:
		<-done
	case <-ctx.Done():
	}
}

// resolve checks host:port against the allowed networks; a name must
// resolve only to allowed addresses.
func (p *Proxy) resolve(ctx context.Context, hostport string) (string, error) {
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		return "", fmt.Errorf("minik egress: bad address %q", hostport)
	}
	var ips []net.IP
	if ip := net.ParseIP(host); ip != nil {
		ips = []net.IP{ip}
	} else {
		addrs, err := net.DefaultResolver.LookupIP(ctx, "ip", host)
		if err != nil {
			return "", fmt.Errorf("minik egress: resolve %s: %v", host, err)
		}
		ips = addrs
	}
	for _, ip := range ips {
		if !p.Allowed(ip) {
			return "", fmt.Errorf("minik egress refuses %s: it is not an address on this machine (pod and Service IPs of simulated pods exist only in the API)", net.JoinHostPort(ip.String(), port))
		}
	}
	if len(ips) == 0 {
		return "", errors.New("minik egress: " + host + " has no address")
	}
	return net.JoinHostPort(ips[0].String(), port), nil
}

// reply writes an error status; the apiserver shows its reason phrase.
func reply(conn net.Conn, code int, reason string) {
	reason = strings.NewReplacer("\r", " ", "\n", " ").Replace(reason)
	_, _ = fmt.Fprintf(conn, "HTTP/1.1 %d %s\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", code, reason)
}

func closeWrite(c net.Conn) {
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
	}
}
