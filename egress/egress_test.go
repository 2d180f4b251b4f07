package egress

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func startProxy(t *testing.T, allow ...string) string {
	sock, _ := startProxyWith(t, nil, allow...)
	return sock
}

// startProxyWith starts a proxy; a non-nil dial replaces the real dialer.
func startProxyWith(t *testing.T, dial func(context.Context, string, string) (net.Conn, error), allow ...string) (string, *Proxy) {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "e.sock")
	p, err := Listen(sock, allow)
	require.NoError(t, err)
	if dial != nil {
		p.dial = dial
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { p.Serve(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return sock, p
}

// connect speaks to the proxy the way the apiserver's egress dialer does.
func connect(t *testing.T, sock, addr string) (net.Conn, *http.Response) {
	t.Helper()
	conn, err := net.Dial("unix", sock)
	require.NoError(t, err)
	fmt.Fprintf(conn, "CONNECT %s HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", addr)
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	require.NoError(t, err)
	return conn, resp
}

func TestTunnelsToLoopback(t *testing.T) {
	echo, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer echo.Close()
	go func() {
		c, err := echo.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		_, _ = io.Copy(c, c)
	}()
	sock := startProxy(t)
	conn, resp := connect(t, sock, echo.Addr().String())
	defer conn.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	_, err = conn.Write([]byte("ping"))
	require.NoError(t, err)
	buf := make([]byte, 4)
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err = io.ReadFull(conn, buf)
	require.NoError(t, err)
	assert.Equal(t, "ping", string(buf))
}

func TestRefusesAddressesNotOnThisMachine(t *testing.T) {
	// The dialer is a fake that only records: even a broken proxy could not
	// send a packet off this machine from this test.
	var dialled []string
	sock, _ := startProxyWith(t, func(_ context.Context, _, addr string) (net.Conn, error) {
		dialled = append(dialled, addr)
		return nil, fmt.Errorf("test dialer: refusing %s", addr)
	}, "172.30.0.0/16")
	defer func() { assert.Empty(t, dialled, "refused addresses are never dialled") }()
	for _, addr := range []string{"10.244.0.5:443", "10.96.0.1:443", "172.31.0.1:53", "[fd00::1]:443"} {
		t.Run(addr, func(t *testing.T) {
			began := time.Now()
			conn, resp := connect(t, sock, addr)
			defer conn.Close()
			assert.Equal(t, http.StatusForbidden, resp.StatusCode)
			assert.Contains(t, resp.Status, "not an address on this machine")
			assert.Less(t, time.Since(began), time.Second, "refused locally, not after a dial timeout")
		})
	}
}

func TestAllowed(t *testing.T) {
	p := &Proxy{}
	_, n, _ := net.ParseCIDR("172.30.0.0/16")
	p.allowed = append(p.allowed, n)
	for ip, want := range map[string]bool{
		"127.0.0.1": true, "127.0.3.1": true, "::1": true, "172.30.1.2": true,
		"10.244.0.5": false, "172.31.0.1": false, "192.168.1.1": false,
	} {
		assert.Equal(t, want, p.Allowed(net.ParseIP(ip)), ip)
	}
}

func TestRejectsNonConnect(t *testing.T) {
	sock := startProxy(t)
	conn, err := net.Dial("unix", sock)
	require.NoError(t, err)
	defer conn.Close()
	fmt.Fprintf(conn, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	require.NoError(t, err)
	assert.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode)
}

func TestBadCIDR(t *testing.T) {
	_, err := Listen(filepath.Join(t.TempDir(), "x.sock"), []string{"nope"})
	require.Error(t, err)
}

func TestAllowHost(t *testing.T) {
	p, err := Listen(filepath.Join(t.TempDir(), "egress.sock"), []string{"172.30.0.0/16"})
	require.NoError(t, err)
	joined := net.ParseIP("10.77.0.2")
	require.False(t, p.Allowed(joined))
	p.AllowHost(joined)
	require.True(t, p.Allowed(net.ParseIP("10.77.0.2").To16()), "the same address in either form")
	require.False(t, p.Allowed(net.ParseIP("10.77.0.3")))
	p.ForgetHost(joined)
	require.False(t, p.Allowed(joined))
	require.True(t, p.Allowed(net.ParseIP("172.30.1.1")))
}
