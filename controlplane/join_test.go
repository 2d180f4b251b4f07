package controlplane

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"net"
	"testing"

	"github.com/stretchr/testify/require"
	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func servingCSR(t *testing.T, cn string, orgs, dns []string, ips []net.IP) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		Subject: pkix.Name{CommonName: cn, Organization: orgs}, DNSNames: dns, IPAddresses: ips,
	}, key)
	require.NoError(t, err)
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})
}

func TestCheckServingCSR(t *testing.T) {
	node := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: "far"},
		Status: corev1.NodeStatus{Addresses: []corev1.NodeAddress{
			{Type: corev1.NodeInternalIP, Address: "10.0.0.2"}, {Type: corev1.NodeHostName, Address: "far"},
		}},
	}
	nodeIP := []net.IP{net.ParseIP("10.0.0.2")}
	serving := []certificatesv1.KeyUsage{certificatesv1.UsageDigitalSignature, certificatesv1.UsageServerAuth}
	cases := []struct {
		name   string
		user   string
		groups []string
		usages []certificatesv1.KeyUsage
		req    []byte
		want   string
	}{
		{"the node's own", "system:node:far", []string{"system:nodes"}, serving,
			servingCSR(t, "system:node:far", []string{"system:nodes"}, []string{"far"}, nodeIP), ""},
		{"not a node", "system:node:far", []string{"system:authenticated"}, serving,
			servingCSR(t, "system:node:far", []string{"system:nodes"}, []string{"far"}, nodeIP), "not in group"},
		{"another node's name", "system:node:far", []string{"system:nodes"}, serving,
			servingCSR(t, "system:node:near", []string{"system:nodes"}, []string{"far"}, nodeIP), "is not the requester"},
		{"another address", "system:node:far", []string{"system:nodes"}, serving,
			servingCSR(t, "system:node:far", []string{"system:nodes"}, []string{"far"}, []net.IP{net.ParseIP("10.0.0.9")}), "10.0.0.9 is not one of"},
		{"another DNS name", "system:node:far", []string{"system:nodes"}, serving,
			servingCSR(t, "system:node:far", []string{"system:nodes"}, []string{"kubernetes.default"}, nodeIP), "DNS name \"kubernetes.default\""},
		{"client usage", "system:node:far", []string{"system:nodes"}, []certificatesv1.KeyUsage{certificatesv1.UsageClientAuth},
			servingCSR(t, "system:node:far", []string{"system:nodes"}, []string{"far"}, nodeIP), "not for a kubelet serving certificate"},
		{"no names", "system:node:far", []string{"system:nodes"}, serving,
			servingCSR(t, "system:node:far", []string{"system:nodes"}, nil, nil), "names no DNS name or IP"},
		{"wrong organization", "system:node:far", []string{"system:nodes"}, serving,
			servingCSR(t, "system:node:far", []string{"system:masters"}, []string{"far"}, nodeIP), "organization"},
		{"not PEM", "system:node:far", []string{"system:nodes"}, serving, []byte("nope"), "no PEM"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			csr := &certificatesv1.CertificateSigningRequest{Spec: certificatesv1.CertificateSigningRequestSpec{
				Username: c.user, Groups: c.groups, Usages: c.usages, Request: c.req, SignerName: certificatesv1.KubeletServingSignerName,
			}}
			require.Equal(t, "far", servingCSRNode(csr))
			err := checkServingCSR(csr, node)
			if c.want == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorContains(t, err, c.want)
		})
	}
}

func TestServingCSRNode(t *testing.T) {
	for user, want := range map[string]string{"system:node:far": "far", "system:node:": "", "alice": "", "system:nodes": ""} {
		csr := &certificatesv1.CertificateSigningRequest{Spec: certificatesv1.CertificateSigningRequestSpec{Username: user}}
		require.Equal(t, want, servingCSRNode(csr), user)
	}
}

func TestJoinedIPs(t *testing.T) {
	n := &corev1.Node{Status: corev1.NodeStatus{Addresses: []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "10.0.0.2"}}}}
	require.Empty(t, joinedIPs(n), "a node minik made is not joined")
	n.Labels = map[string]string{"minik.dev/joined": "true"}
	require.Equal(t, []net.IP{net.ParseIP("10.0.0.2")}, joinedIPs(n))
	require.Empty(t, joinedIPs(nil))
}

func TestListenBoth(t *testing.T) {
	l, err := listenBoth("127.0.0.1:0", "127.0.0.2:0")
	require.NoError(t, err)
	defer l.Close()
	d := l.(*dualListener)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			_, _ = c.Write([]byte("hi"))
			c.Close()
		}
	}()
	for _, inner := range d.listeners {
		c, err := net.Dial("tcp", inner.Addr().String())
		require.NoError(t, err)
		got, err := io.ReadAll(c)
		c.Close()
		require.NoError(t, err)
		require.Equal(t, "hi", string(got), "served on %s", inner.Addr())
	}
	require.Equal(t, d.listeners[0].Addr(), l.Addr())
	require.NoError(t, l.Close())
	_, err = l.Accept()
	require.ErrorIs(t, err, net.ErrClosed)

	// A second address that cannot be bound fails the whole listener.
	_, err = listenBoth("127.0.0.1:0", "192.0.2.1:0")
	require.Error(t, err)
}
