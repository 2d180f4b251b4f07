package forward

import (
	"context"
	"io"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseRule(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Rule
		err  string
	}{
		{in: "tcp:80=172.19.48.1:80", want: Rule{"tcp", 80, "172.19.48.1:80"}},
		{in: "udp:53=10.0.0.1:5353", want: Rule{"udp", 53, "10.0.0.1:5353"}},
		{in: "tcp:80", err: "is not PROTO:PORT=HOST:PORT"},
		{in: "sctp:80=1.2.3.4:80", err: "neither tcp nor udp"},
		{in: "tcp:0=1.2.3.4:80", err: "not 1 to 65535"},
		{in: "tcp:80=1.2.3.4", err: "missing port"},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseRule(tc.in)
			if tc.err != "" {
				require.ErrorContains(t, err, tc.err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
			assert.Equal(t, tc.in, got.String())
		})
	}
}

// freePort finds a port free for both TCP and UDP on loopback.
func freePort(t *testing.T) int {
	for range 20 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		port := l.Addr().(*net.TCPAddr).Port
		u, err := net.ListenPacket("udp", "127.0.0.1:"+strconv.Itoa(port))
		_ = l.Close()
		if err == nil {
			_ = u.Close()
			return port
		}
	}
	t.Fatal("no port free for tcp and udp")
	return 0
}

func TestRunRelaysTCPAndUDP(t *testing.T) {
	// TCP echo and UDP echo targets.
	tl, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer tl.Close()
	go func() {
		for {
			c, err := tl.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); _, _ = io.Copy(c, c) }()
		}
	}()
	ul, err := net.ListenPacket("udp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ul.Close()
	go func() {
		b := make([]byte, 1500)
		for {
			n, from, err := ul.ReadFrom(b)
			if err != nil {
				return
			}
			_, _ = ul.WriteTo(b[:n], from)
		}
	}()

	port := freePort(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, []Rule{
			{"tcp", port, tl.Addr().String()},
			{"udp", port, ul.LocalAddr().String()},
		})
	}()
	addr := "127.0.0.1:" + strconv.Itoa(port)

	var c net.Conn
	require.Eventually(t, func() bool { c, err = net.Dial("tcp", addr); return err == nil }, 5*time.Second, 20*time.Millisecond)
	_, err = c.Write([]byte("hello"))
	require.NoError(t, err)
	require.NoError(t, c.(*net.TCPConn).CloseWrite())
	got, err := io.ReadAll(c)
	require.NoError(t, err)
	assert.Equal(t, "hello", string(got))
	_ = c.Close()

	u, err := net.Dial("udp", addr)
	require.NoError(t, err)
	defer u.Close()
	_, err = u.Write([]byte("ping"))
	require.NoError(t, err)
	require.NoError(t, u.SetReadDeadline(time.Now().Add(5*time.Second)))
	b := make([]byte, 100)
	n, err := u.Read(b)
	require.NoError(t, err)
	assert.Equal(t, "ping", string(b[:n]))

	cancel()
	select {
	case err := <-done:
		assert.NoError(t, err)
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
}
