// Package forward relays TCP connections and UDP datagrams from local
// ports to a target address: the forwarder container that publishes a
// LoadBalancer Service on the host's 127.0.0.1 runs it (minik-node forward).
package forward

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Rule relays Protocol ("tcp" or "udp") traffic to port Port on every
// local address to Target (host:port).
type Rule struct {
	Protocol string
	Port     int
	Target   string
}

// ParseRule reads "tcp:80=172.19.48.1:80".
func ParseRule(s string) (Rule, error) {
	lhs, target, ok := strings.Cut(s, "=")
	proto, port, ok2 := strings.Cut(lhs, ":")
	if !ok || !ok2 {
		return Rule{}, fmt.Errorf("forward rule %q is not PROTO:PORT=HOST:PORT", s)
	}
	if proto != "tcp" && proto != "udp" {
		return Rule{}, fmt.Errorf("forward rule %q: protocol %q is neither tcp nor udp", s, proto)
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 1 || n > 65535 {
		return Rule{}, fmt.Errorf("forward rule %q: port %q is not 1 to 65535", s, port)
	}
	if _, _, err := net.SplitHostPort(target); err != nil {
		return Rule{}, fmt.Errorf("forward rule %q: %w", s, err)
	}
	return Rule{Protocol: proto, Port: n, Target: target}, nil
}

// String is the rule as ParseRule reads it.
func (r Rule) String() string {
	return r.Protocol + ":" + strconv.Itoa(r.Port) + "=" + r.Target
}

// udpIdle is how long a UDP flow lives without a datagram either way.
const udpIdle = 2 * time.Minute

// Run serves every rule until ctx is done.
func Run(ctx context.Context, rules []Rule) error {
	if len(rules) == 0 {
		return errors.New("no forward rules")
	}
	var lc net.ListenConfig
	var wg sync.WaitGroup
	var closers []io.Closer
	for _, r := range rules {
		addr := ":" + strconv.Itoa(r.Port)
		switch r.Protocol {
		case "tcp":
			l, err := lc.Listen(ctx, "tcp", addr)
			if err != nil {
				closeAll(closers)
				return fmt.Errorf("listen on tcp %s: %w", addr, err)
			}
			closers = append(closers, l)
			wg.Add(1)
			go func() { defer wg.Done(); serveTCP(ctx, l, r.Target) }()
		case "udp":
			pc, err := lc.ListenPacket(ctx, "udp", addr)
			if err != nil {
				closeAll(closers)
				return fmt.Errorf("listen on udp %s: %w", addr, err)
			}
			closers = append(closers, pc)
			wg.Add(1)
			go func() { defer wg.Done(); serveUDP(ctx, pc, r.Target) }()
		}
	}
	<-ctx.Done()
	closeAll(closers)
	wg.Wait()
	return nil
}

func closeAll(cs []io.Closer) {
	for _, c := range cs {
		_ = c.Close()
	}
}

func serveTCP(ctx context.Context, l net.Listener, target string) {
	var d net.Dialer
	for {
		c, err := l.Accept()
		if err != nil {
			return // closed
		}
		go func() {
			defer c.Close()
			up, err := d.DialContext(ctx, "tcp", target)
			if err != nil {
				return // the client sees the connection close, as with no listener
			}
			defer up.Close()
			done := make(chan struct{}, 2)
			relay := func(dst, src net.Conn) {
				_, _ = io.Copy(dst, src)
				// Pass the half-close on, so request/response protocols finish.
				if tc, ok := dst.(*net.TCPConn); ok {
					_ = tc.CloseWrite()
				}
				done <- struct{}{}
			}
			go relay(up, c)
			go relay(c, up)
			select {
			case <-ctx.Done():
			case <-done:
				select {
				case <-ctx.Done():
				case <-done:
				}
			}
		}()
	}
}

// serveUDP gives each client address its own socket to the target, so
// replies find their way back.
func serveUDP(ctx context.Context, pc net.PacketConn, target string) {
	var mu sync.Mutex
	flows := map[string]net.Conn{}
	var d net.Dialer
	buf := make([]byte, 64<<10)
	for {
		n, from, err := pc.ReadFrom(buf)
		if err != nil {
			mu.Lock()
			for _, f := range flows {
				_ = f.Close()
			}
			mu.Unlock()
			return
		}
		key := from.String()
		mu.Lock()
		up, ok := flows[key]
		if !ok {
			up, err = d.DialContext(ctx, "udp", target)
			if err != nil {
				mu.Unlock()
				continue
			}
			flows[key] = up
			go func() {
				defer func() {
					mu.Lock()
					delete(flows, key)
					mu.Unlock()
					_ = up.Close()
				}()
				rb := make([]byte, 64<<10)
				for {
					_ = up.SetReadDeadline(time.Now().Add(udpIdle))
					m, err := up.Read(rb)
					if err != nil {
						return
					}
					_, _ = pc.WriteTo(rb[:m], from)
				}
			}()
		}
		mu.Unlock()
		_ = up.SetReadDeadline(time.Now().Add(udpIdle))
		_, _ = up.Write(buf[:n])
	}
}
