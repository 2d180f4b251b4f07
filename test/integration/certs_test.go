package integration

import (
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/client-go/tools/clientcmd"
)

// TestCertificateRenewal makes the admin's and the apiserver's
// certificates of a stopped cluster expire in 10 days, as a cluster kept
// for most of a year would have them: `minik start` renews both, the
// user's kubeconfig gets the new client certificate, and the apiserver
// serves the new one.
func TestCertificateRenewal(t *testing.T) {
	h := newHarness(t)
	h.ok(2*time.Minute, "start", "-p", "aging", "--driver", "process")
	h.ok(time.Minute, "stop", "-p", "aging")
	dir := filepath.Join(h.home, "profiles", "aging", "pki")

	expiring := time.Now().Add(10 * 24 * time.Hour)
	for _, name := range []string{"admin", "apiserver"} {
		reissue(t, dir, name, expiring)
		require.WithinDuration(t, expiring, readCertFile(t, filepath.Join(dir, name+".crt")).NotAfter, time.Minute)
	}

	st := h.status("aging")
	require.NotNil(t, st.Certificates)
	assert.True(t, st.Certificates.RenewedAtStart, "status says the next start renews them")
	assert.WithinDuration(t, expiring, st.Certificates.NotAfter, time.Minute)
	assert.Contains(t, h.ok(time.Minute, "status", "-p", "aging"), "renewed at the next start")

	h.ok(2*time.Minute, "start", "-p", "aging")
	st = h.status("aging")
	require.NotNil(t, st.Certificates)
	assert.False(t, st.Certificates.RenewedAtStart)
	assert.Greater(t, time.Until(st.Certificates.NotAfter), 300*24*time.Hour)
	admin := readCertFile(t, filepath.Join(dir, "admin.crt"))
	assert.Greater(t, time.Until(admin.NotAfter), 300*24*time.Hour, "the admin's certificate is renewed")
	assert.Greater(t, time.Until(readCertFile(t, filepath.Join(dir, "apiserver.crt")).NotAfter), 300*24*time.Hour, "and the apiserver's")

	cfg, err := clientcmd.LoadFromFile(h.kubeconfig)
	require.NoError(t, err)
	kctx := cfg.Contexts[cfg.CurrentContext]
	require.NotNil(t, kctx)
	block, _ := pem.Decode(cfg.AuthInfos[kctx.AuthInfo].ClientCertificateData)
	require.NotNil(t, block, "the kubeconfig holds the client certificate")
	assert.Equal(t, admin.Raw, block.Bytes, "the kubeconfig holds the renewed certificate")

	// The apiserver serves the renewed certificate, and the admin's works.
	server, err := url.Parse(cfg.Clusters[kctx.Cluster].Server)
	require.NoError(t, err)
	conn, err := tls.Dial("tcp", server.Host, &tls.Config{InsecureSkipVerify: true}) //nolint:gosec // reads the served certificate only
	require.NoError(t, err)
	served := conn.ConnectionState().PeerCertificates[0]
	_ = conn.Close()
	assert.Greater(t, time.Until(served.NotAfter), 300*24*time.Hour, "the apiserver serves the renewed certificate")
	h.ok(time.Minute, "kubectl", "-p", "aging", "--", "get", "nodes")
}

// reissue replaces DIR/NAME.crt with a certificate of the same subject,
// names and key, signed by the cluster's CA, that expires at notAfter.
func reissue(t *testing.T, dir, name string, notAfter time.Time) {
	t.Helper()
	ca := readCertFile(t, filepath.Join(dir, "ca.crt"))
	caKey := readKeyFile(t, filepath.Join(dir, "ca.key"))
	old := readCertFile(t, filepath.Join(dir, name+".crt"))
	tmpl := *old
	tmpl.NotBefore = time.Now().Add(-time.Hour)
	tmpl.NotAfter = notAfter
	der, err := x509.CreateCertificate(nil, &tmpl, ca, old.PublicKey, caKey)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, name+".crt"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644))
}

func readCertFile(t *testing.T, path string) *x509.Certificate {
	t.Helper()
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	block, _ := pem.Decode(data)
	require.NotNil(t, block, path)
	cert, err := x509.ParseCertificate(block.Bytes)
	require.NoError(t, err)
	return cert
}

func readKeyFile(t *testing.T, path string) crypto.Signer {
	t.Helper()
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	block, _ := pem.Decode(data)
	require.NotNil(t, block, path)
	key, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	require.NoError(t, err)
	signer, ok := key.(crypto.Signer)
	require.True(t, ok)
	return signer
}
