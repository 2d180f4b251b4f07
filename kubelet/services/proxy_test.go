package services

import (
	"fmt"
	"net"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/net/dns/dnsmessage"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	discoverylisters "k8s.io/client-go/listers/discovery/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/utils/ptr"
)

func newTestProxy(t *testing.T, objs ...any) *Proxy {
	t.Helper()
	idx := func() cache.Indexer {
		return cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc})
	}
	svcs, slices := idx(), idx()
	for _, o := range objs {
		switch o.(type) {
		case *corev1.Service:
			require.NoError(t, svcs.Add(o))
		case *discoveryv1.EndpointSlice:
			require.NoError(t, slices.Add(o))
		}
	}
	return &Proxy{
		o:        Options{DNSIP: "10.96.0.10", Domain: "cluster.local"},
		services: corelisters.NewServiceLister(svcs),
		slices:   discoverylisters.NewEndpointSliceLister(slices),
		affinity: map[string]affinityEntry{},
	}
}

func service(name, clusterIP string) *corev1.Service {
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
		Spec:       corev1.ServiceSpec{ClusterIP: clusterIP, Ports: []corev1.ServicePort{{Name: "http", Port: 80}}},
	}
}

func slice(service string, port int32, ready map[string]bool) *discoveryv1.EndpointSlice {
	s := &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Name: service + "-x", Namespace: "default", Labels: map[string]string{discoveryv1.LabelServiceName: service}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Name: ptr.To("http"), Port: ptr.To(port)}},
	}
	for ip, ok := range ready {
		s.Endpoints = append(s.Endpoints, discoveryv1.Endpoint{Addresses: []string{ip}, Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(ok)}})
	}
	return s
}

func TestEndpointsAreReadyAddressesOfThePort(t *testing.T) {
	p := newTestProxy(t, service("web", "10.96.0.20"), slice("web", 8080, map[string]bool{"172.20.128.1": true, "172.20.128.2": false}))
	assert.Equal(t, []string{"172.20.128.1:8080"}, p.endpoints("default", "web", "http"))
	assert.Empty(t, p.endpoints("default", "web", "metrics"), "no endpoint serves a port the slice does not name")
	assert.Empty(t, p.endpoints("default", "db", "http"))
}

func query(t *testing.T, name string, typ dnsmessage.Type) []byte {
	t.Helper()
	m := dnsmessage.Message{
		Header:    dnsmessage.Header{ID: 7, RecursionDesired: true},
		Questions: []dnsmessage.Question{{Name: dnsmessage.MustNewName(name), Type: typ, Class: dnsmessage.ClassINET}},
	}
	b, err := m.Pack()
	require.NoError(t, err)
	return b
}

func TestDNSAnswers(t *testing.T) {
	p := newTestProxy(t,
		service("web", "10.96.0.20"),
		service("db", corev1.ClusterIPNone), slice("db", 5432, map[string]bool{"172.20.128.5": true, "172.20.128.6": false}),
	)
	d := &dnsServer{proxy: p}
	tests := []struct {
		name  string
		qname string
		typ   dnsmessage.Type
		rcode dnsmessage.RCode
		ips   []string
	}{
		{"service", "web.default.svc.cluster.local.", dnsmessage.TypeA, dnsmessage.RCodeSuccess, []string{"10.96.0.20"}},
		{"case does not matter", "WEB.Default.svc.cluster.local.", dnsmessage.TypeA, dnsmessage.RCodeSuccess, []string{"10.96.0.20"}},
		{"headless: ready endpoints", "db.default.svc.cluster.local.", dnsmessage.TypeA, dnsmessage.RCodeSuccess, []string{"172.20.128.5"}},
		{"no IPv6", "web.default.svc.cluster.local.", dnsmessage.TypeAAAA, dnsmessage.RCodeSuccess, nil},
		{"unknown service", "cache.default.svc.cluster.local.", dnsmessage.TypeA, dnsmessage.RCodeNameError, nil},
		{"unknown namespace", "web.other.svc.cluster.local.", dnsmessage.TypeA, dnsmessage.RCodeNameError, nil},
		{"search path miss", "web.default.svc.cluster.local.default.svc.cluster.local.", dnsmessage.TypeA, dnsmessage.RCodeNameError, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := d.answer(query(t, tt.qname, tt.typ), "udp")
			require.NotNil(t, resp)
			var m dnsmessage.Message
			require.NoError(t, m.Unpack(resp))
			assert.Equal(t, uint16(7), m.Header.ID)
			assert.True(t, m.Header.Response)
			assert.Equal(t, tt.rcode, m.Header.RCode)
			var ips []string
			for _, a := range m.Answers {
				ips = append(ips, net.IP(a.Body.(*dnsmessage.AResource).A[:]).String())
			}
			assert.Equal(t, tt.ips, ips)
		})
	}
	assert.Nil(t, d.answer(query(t, "example.org.", dnsmessage.TypeA), "udp"), "names outside the cluster go upstream; with none, no answer")
	assert.Nil(t, d.answer(query(t, "1.0.0.127.in-addr.arpa.", dnsmessage.TypePTR), "udp"), "addresses outside the cluster go upstream too")
	assert.Nil(t, d.answer([]byte{1, 2, 3}, "udp"), "garbage is dropped")
}

func TestDNSRecordsOfTheSpec(t *testing.T) {
	headless := slice("db", 5432, nil)
	headless.Endpoints = []discoveryv1.Endpoint{
		{Addresses: []string{"172.20.128.7"}, Hostname: ptr.To("db-0"), Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)}},
		{Addresses: []string{"172.20.128.8"}, Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)}},
	}
	ext := service("docs", "")
	ext.Spec = corev1.ServiceSpec{Type: corev1.ServiceTypeExternalName, ExternalName: "web.default.svc.cluster.local"}
	p := newTestProxy(t, service("web", "10.96.0.20"), service("db", corev1.ClusterIPNone), headless, ext)
	d := &dnsServer{proxy: p}
	tests := []struct {
		name  string
		qname string
		typ   dnsmessage.Type
		rcode dnsmessage.RCode
		want  []string
	}{
		{"a StatefulSet pod by hostname", "db-0.db.default.svc.cluster.local.", dnsmessage.TypeA, dnsmessage.RCodeSuccess, []string{"A 172.20.128.7"}},
		{"an unknown hostname", "db-9.db.default.svc.cluster.local.", dnsmessage.TypeA, dnsmessage.RCodeNameError, nil},
		{"SRV of a named port", "_http._tcp.web.default.svc.cluster.local.", dnsmessage.TypeSRV, dnsmessage.RCodeSuccess,
			[]string{"SRV 80 web.default.svc.cluster.local."}},
		{"SRV of a headless Service: each endpoint", "_http._tcp.db.default.svc.cluster.local.", dnsmessage.TypeSRV, dnsmessage.RCodeSuccess,
			[]string{"SRV 5432 db-0.db.default.svc.cluster.local.", "SRV 5432 172-20-128-8.db.default.svc.cluster.local."}},
		{"SRV of a port it does not have", "_grpc._tcp.web.default.svc.cluster.local.", dnsmessage.TypeSRV, dnsmessage.RCodeNameError, nil},
		{"SRV of the Service name", "web.default.svc.cluster.local.", dnsmessage.TypeSRV, dnsmessage.RCodeSuccess,
			[]string{"SRV 80 web.default.svc.cluster.local."}},
		{"ExternalName: a CNAME, and its target's address", "docs.default.svc.cluster.local.", dnsmessage.TypeA, dnsmessage.RCodeSuccess,
			[]string{"CNAME web.default.svc.cluster.local.", "A 10.96.0.20"}},
		{"PTR of a ClusterIP: the Service", "20.0.96.10.in-addr.arpa.", dnsmessage.TypePTR, dnsmessage.RCodeSuccess,
			[]string{"PTR web.default.svc.cluster.local."}},
		{"PTR of a headless endpoint with a hostname", "7.128.20.172.in-addr.arpa.", dnsmessage.TypePTR, dnsmessage.RCodeSuccess,
			[]string{"PTR db-0.db.default.svc.cluster.local."}},
		{"A of a ClusterIP's reverse name: no data", "20.0.96.10.in-addr.arpa.", dnsmessage.TypeA, dnsmessage.RCodeSuccess, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := d.answer(query(t, tt.qname, tt.typ), "udp")
			require.NotNil(t, resp)
			var m dnsmessage.Message
			require.NoError(t, m.Unpack(resp))
			assert.Equal(t, tt.rcode, m.Header.RCode)
			var got []string
			for _, a := range m.Answers {
				switch b := a.Body.(type) {
				case *dnsmessage.AResource:
					got = append(got, "A "+net.IP(b.A[:]).String())
				case *dnsmessage.SRVResource:
					got = append(got, fmt.Sprintf("SRV %d %s", b.Port, b.Target))
				case *dnsmessage.CNAMEResource:
					got = append(got, "CNAME "+b.CNAME.String())
				case *dnsmessage.PTRResource:
					got = append(got, "PTR "+b.PTR.String())
				}
			}
			assert.ElementsMatch(t, tt.want, got)
		})
	}
}

func TestSessionAffinity(t *testing.T) {
	sticky := service("sticky", "10.96.0.21")
	sticky.Spec.SessionAffinity = corev1.ServiceAffinityClientIP
	eps := []string{"172.20.128.1:80", "172.20.128.2:80", "172.20.128.3:80"}
	p := newTestProxy(t, sticky, service("web", "10.96.0.20"))
	a := &net.TCPAddr{IP: net.ParseIP("172.20.0.1"), Port: 40000}
	b := &net.TCPAddr{IP: net.ParseIP("172.20.0.9"), Port: 40000}

	l := &listener{namespace: "default", service: "sticky", portName: "http"}
	first := p.order(l, a, eps)[0]
	p.remember(l, a, first)
	for range 5 {
		again := &net.TCPAddr{IP: a.IP, Port: 50000} // another connection, same client
		assert.Equal(t, first, p.order(l, again, eps)[0], "the client keeps its endpoint")
	}
	assert.Len(t, p.order(l, b, eps), 3, "every endpoint stays a fallback")
	assert.Equal(t, first, p.order(l, a, []string{first})[0])
	assert.NotContains(t, p.order(l, a, eps[:0]), first)

	plain := &listener{namespace: "default", service: "web", portName: "http"}
	seen := map[string]bool{}
	for range 6 {
		ep := p.order(plain, a, eps)[0]
		p.remember(plain, a, ep)
		seen[ep] = true
	}
	assert.Len(t, seen, 3, "without affinity, round-robin")
}
