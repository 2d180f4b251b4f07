package hostports

import (
	"bufio"
	"io"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
)

func TestMappings(t *testing.T) {
	pod := &corev1.Pod{Spec: corev1.PodSpec{
		InitContainers: []corev1.Container{{Name: "init", Ports: []corev1.ContainerPort{{ContainerPort: 1, HostPort: 1}}}},
		Containers: []corev1.Container{
			{Name: "web", Ports: []corev1.ContainerPort{{ContainerPort: 8080, HostPort: 80}, {ContainerPort: 9090}}},
			{Name: "dns", Ports: []corev1.ContainerPort{{ContainerPort: 53, HostPort: 5353, HostIP: "127.0.0.1", Protocol: corev1.ProtocolUDP}}},
		}}}
	assert.Equal(t, []Mapping{
		{Protocol: corev1.ProtocolTCP, HostPort: 80, ContainerPort: 8080},
		{Protocol: corev1.ProtocolUDP, HostIP: "127.0.0.1", HostPort: 5353, ContainerPort: 53},
	}, Mappings(pod))
}

// echoPod serves, on loopback, what a pod's container would: a TCP and a
// UDP echo, each answering with its name first.
func echoPod(t *testing.T) (tcpPort, udpPort int32) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_, _ = io.WriteString(c, "tcp:")
				_, _ = io.Copy(c, c)
			}()
		}
	}()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { pc.Close() })
	go func() {
		buf := make([]byte, 1500)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			_, _ = pc.WriteTo(append([]byte("udp:"), buf[:n]...), from)
		}
	}()
	return int32(l.Addr().(*net.TCPAddr).Port), int32(pc.LocalAddr().(*net.UDPAddr).Port)
}

// freePort is a port nothing listens on, TCP and UDP, on loopback.
func freePort(t *testing.T) int32 {
	for range 20 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		if pc, err := net.ListenPacket("udp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port))); err == nil {
			pc.Close()
			return int32(port)
		}
	}
	t.Fatal("no free port")
	return 0
}

func hostAddr(port int32) string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(int(port))) }

func TestForwarder(t *testing.T) {
	tcpPort, udpPort := echoPod(t)
	f := New()
	t.Cleanup(f.Close)
	hostPort := freePort(t)
	// One host port, TCP and UDP, to the two echoes: no conflict, as the
	// scheduler and the kubelet's admission see it.
	maps := []Mapping{
		{Protocol: corev1.ProtocolTCP, HostIP: "127.0.0.1", HostPort: hostPort, ContainerPort: tcpPort},
		{Protocol: corev1.ProtocolUDP, HostIP: "127.0.0.1", HostPort: hostPort, ContainerPort: udpPort},
	}
	require.NoError(t, f.Set("pod-a", "127.0.0.1", maps))
	require.NoError(t, f.Set("pod-a", "127.0.0.1", maps), "the same again is kept")

	c, err := net.DialTimeout("tcp", hostAddr(hostPort), 5*time.Second)
	require.NoError(t, err)
	_, err = io.WriteString(c, "hello\n")
	require.NoError(t, err)
	line, err := bufio.NewReader(c).ReadString('\n')
	require.NoError(t, err)
	assert.Equal(t, "tcp:hello\n", line)
	c.Close()

	u, err := net.Dial("udp", hostAddr(hostPort))
	require.NoError(t, err)
	defer u.Close()
	_, err = u.Write([]byte("ping"))
	require.NoError(t, err)
	require.NoError(t, u.SetReadDeadline(time.Now().Add(5*time.Second)))
	buf := make([]byte, 64)
	n, err := u.Read(buf)
	require.NoError(t, err)
	assert.Equal(t, "udp:ping", string(buf[:n]))

	// A second pod on a port in use fails whole: its other port is not
	// left open.
	other := freePort(t)
	err = f.Set("pod-b", "127.0.0.1", []Mapping{
		{Protocol: corev1.ProtocolTCP, HostIP: "127.0.0.1", HostPort: other, ContainerPort: tcpPort},
		{Protocol: corev1.ProtocolTCP, HostIP: "127.0.0.1", HostPort: hostPort, ContainerPort: tcpPort},
	})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "open host port 127.0.0.1:"+strconv.Itoa(int(hostPort))+"/TCP")
	l, err := net.Listen("tcp", hostAddr(other))
	require.NoError(t, err, "the failed pod's first port was closed again")
	l.Close()

	f.Remove("pod-a")
	_, err = net.DialTimeout("tcp", hostAddr(hostPort), time.Second)
	assert.Error(t, err, "a removed pod's host port is closed")
}

func TestForwarderSCTP(t *testing.T) {
	f := New()
	t.Cleanup(f.Close)
	err := f.Set("pod", "127.0.0.1", []Mapping{{Protocol: corev1.ProtocolSCTP, HostPort: freePort(t), ContainerPort: 1}})
	require.ErrorIs(t, err, errUnsupported)
}
