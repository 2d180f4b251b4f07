// Package relay joins clients to upstreams in user space, for the node
// agent's Service proxy and host ports: each accepted TCP connection, and
// each UDP client's flow of datagrams, to an upstream the caller dials.
package relay

import (
	"io"
	"net"
	"sync"
	"time"
)

// UDPIdle is how long a UDP flow lives without a reply (conntrack keeps
// UDP flows for tens of seconds too).
const UDPIdle = 30 * time.Second

// Dialer opens the upstream for a client; with none (nil, or an error)
// the client is dropped, as with a REJECT.
type Dialer func(client net.Addr) (net.Conn, error)

// TCP joins every connection l accepts to its upstream, until l is
// closed.
func TCP(l net.Listener, dial Dialer) {
	for {
		conn, err := l.Accept()
		if err != nil {
			return
		}
		go func() {
			defer conn.Close()
			up, err := dial(conn.RemoteAddr())
			if err != nil || up == nil {
				return
			}
			defer up.Close()
			Join(conn, up)
		}()
	}
}

// Join copies both ways between two connections, passing a half-close
// on, until both directions are done.
func Join(a, b net.Conn) {
	done := make(chan struct{}, 2)
	pipe := func(dst, src net.Conn) {
		_, _ = io.Copy(dst, src)
		if tc, ok := dst.(*net.TCPConn); ok {
			_ = tc.CloseWrite()
		}
		done <- struct{}{}
	}
	go pipe(a, b)
	go pipe(b, a)
	<-done
	<-done
}

// UDP relays the datagrams pc receives until it is closed: each client
// gets its own socket to its upstream, dialled at its first datagram, and
// the upstream's replies go back to the client from pc's address. A flow
// ends after UDPIdle without a reply.
func UDP(pc net.PacketConn, dial Dialer) {
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
		key := client.String()
		mu.Lock()
		up, ok := flows[key]
		mu.Unlock()
		if !ok {
			if up, err = dial(client); err != nil || up == nil {
				continue
			}
			mu.Lock()
			flows[key] = up
			mu.Unlock()
			go func() {
				defer func() {
					mu.Lock()
					delete(flows, key)
					mu.Unlock()
					up.Close()
				}()
				reply := make([]byte, 64<<10)
				for {
					_ = up.SetReadDeadline(time.Now().Add(UDPIdle))
					n, err := up.Read(reply)
					if err != nil {
						return
					}
					if _, err := pc.WriteTo(reply[:n], client); err != nil {
						return
					}
				}
			}()
		}
		// A lost datagram is UDP's to lose.
		_, _ = up.Write(buf[:n])
	}
}
