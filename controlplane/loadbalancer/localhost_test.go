package loadbalancer

import (
	"errors"
	"net/netip"
	"testing"

	"github.com/moby/moby/api/types/network"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"

	"minik.dev/minik/forward"
	"minik.dev/minik/nodeconfig"
)

func TestForwardRules(t *testing.T) {
	for _, tc := range []struct {
		name  string
		ports []corev1.ServicePort
		want  []forward.Rule
	}{
		{"none", nil, nil},
		{"TCP by default, UDP, SCTP left out, sorted", []corev1.ServicePort{
			{Port: 80}, {Port: 53, Protocol: corev1.ProtocolUDP}, {Port: 9, Protocol: corev1.ProtocolSCTP}, {Port: 443, Protocol: corev1.ProtocolTCP},
		}, []forward.Rule{
			{Protocol: "tcp", Port: 443, Target: "172.19.48.1:443"},
			{Protocol: "tcp", Port: 80, Target: "172.19.48.1:80"},
			{Protocol: "udp", Port: 53, Target: "172.19.48.1:53"},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := &corev1.Service{Spec: corev1.ServiceSpec{Ports: tc.ports}}
			assert.Equal(t, tc.want, forwardRules(s, "172.19.48.1"))
		})
	}
}

func TestRulesHash(t *testing.T) {
	a := []forward.Rule{{Protocol: "tcp", Port: 80, Target: "172.19.48.1:80"}}
	b := []forward.Rule{{Protocol: "tcp", Port: 80, Target: "172.19.48.2:80"}}
	assert.Equal(t, rulesHash(a), rulesHash(a))
	assert.NotEqual(t, rulesHash(a), rulesHash(b), "another address is another forwarder")
	assert.NotEqual(t, rulesHash(a), rulesHash(append(a, b...)), "another port is another forwarder")
}

func TestPublishedPorts(t *testing.T) {
	lo := netip.MustParseAddr("127.0.0.1")
	pm := network.PortMap{
		network.MustParsePort("80/tcp"):   {{HostIP: lo, HostPort: "80"}},
		network.MustParsePort("9000/udp"): {{HostIP: lo, HostPort: "32771"}},
		// Not published (yet), or not on loopback: left out.
		network.MustParsePort("443/tcp"):  {},
		network.MustParsePort("8080/tcp"): {{HostIP: netip.MustParseAddr("0.0.0.0"), HostPort: "8080"}},
	}
	got := publishedPorts(pm)
	assert.ElementsMatch(t, []nodeconfig.LocalhostPort{
		{Protocol: "tcp", Port: 80, HostPort: 80},
		{Protocol: "udp", Port: 9000, HostPort: 32771},
	}, got)
	assert.Equal(t, "80:80,9000/udp:32771", nodeconfig.FormatLocalhostPorts(got))
}

func TestStatusAddsLoopback(t *testing.T) {
	off := &loadBalancers{}
	require.Len(t, off.status("172.19.48.1").Ingress, 1)
	on := &loadBalancers{localhost: &Localhost{}}
	in := on.status("172.19.48.1").Ingress
	require.Len(t, in, 2)
	assert.Equal(t, "172.19.48.1", in[0].IP, "the pool's address first: the Ingress status takes it")
	assert.Equal(t, Loopback, in[1].IP)
}

func TestTakenPort(t *testing.T) {
	rules := []forward.Rule{
		{Protocol: "tcp", Port: 80, Target: "172.19.48.1:80"},
		{Protocol: "udp", Port: 80, Target: "172.19.48.1:80"},
		{Protocol: "tcp", Port: 443, Target: "172.19.48.1:443"},
	}
	for _, tc := range []struct {
		name    string
		err     string
		anyPort map[string]bool
		want    string
	}{
		{name: "the engine's message", err: "Error response from daemon: failed to set up container networking: driver failed programming external connectivity on endpoint x: Bind for 127.0.0.1:443 failed: port is already allocated",
			want: "tcp:443=172.19.48.1:443"},
		{name: "the kernel's message", err: "listen tcp4 127.0.0.1:80: bind: address already in use", want: "tcp:80=172.19.48.1:80"},
		{name: "a port already on any host port: the next rule of that port", err: "Bind for 127.0.0.1:80 failed: port is already allocated",
			anyPort: map[string]bool{"tcp:80=172.19.48.1:80": true}, want: "udp:80=172.19.48.1:80"},
		{name: "no port named", err: "no such image"},
		{name: "a port of no rule", err: "Bind for 127.0.0.1:8080 failed: port is already allocated"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			anyPort := tc.anyPort
			if anyPort == nil {
				anyPort = map[string]bool{}
			}
			got, ok := takenPort(errors.New(tc.err), rules, anyPort)
			assert.Equal(t, tc.want != "", ok)
			assert.Equal(t, tc.want, got)
		})
	}
}
