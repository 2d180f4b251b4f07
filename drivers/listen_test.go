package drivers

import (
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestListenable(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	assert.False(t, Listenable(addr, 100*time.Millisecond), "a port another listener holds")

	// Freed while it is tried: a node killed a moment ago.
	go func() {
		time.Sleep(200 * time.Millisecond)
		l.Close()
	}()
	assert.True(t, Listenable(addr, 5*time.Second))
}
