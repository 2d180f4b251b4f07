package drivers

import (
	"net"
	"time"
)

// PortSettle is how long a port is tried before it counts as taken: a
// port held by a node that was just killed frees once the last of its
// threads has exited, a moment after it stops showing as a process.
const PortSettle = 2 * time.Second

// Listenable says whether this machine can listen on addr (host:port),
// trying for up to wait.
func Listenable(addr string, wait time.Duration) bool {
	deadline := time.Now().Add(wait)
	for {
		l, err := net.Listen("tcp", addr)
		if err == nil {
			l.Close()
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(50 * time.Millisecond)
	}
}
