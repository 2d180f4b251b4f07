package cluster

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"minik.dev/minik/drivers"
	"minik.dev/minik/drivers/fakedriver"
	"minik.dev/minik/nodeconfig"
	"minik.dev/minik/pki"
)

func TestCreateBootstrapToken(t *testing.T) {
	client := fake.NewClientset()
	now := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	token, expires, err := createBootstrapToken(context.Background(), client, time.Hour, now)
	require.NoError(t, err)
	require.Regexp(t, regexp.MustCompile(`^[a-z0-9]{6}\.[a-z0-9]{16}$`), token)
	require.Equal(t, now.Add(time.Hour), expires)

	s, err := client.CoreV1().Secrets("kube-system").Get(context.Background(), "bootstrap-token-"+token[:6], metav1.GetOptions{})
	require.NoError(t, err)
	require.Equal(t, "bootstrap.kubernetes.io/token", string(s.Type))
	require.Equal(t, map[string]string{
		"token-id": token[:6], "token-secret": token[7:], "expiration": "2026-12-02T13:00:00Z",
		"usage-bootstrap-authentication": "true", "usage-bootstrap-signing": "true",
		"auth-extra-groups": "system:bootstrappers:minik:default-node-token", "description": "minik node join-command",
	}, s.StringData)
}

func TestCACertHash(t *testing.T) {
	paths, err := pki.Ensure(pki.Spec{Dir: t.TempDir()})
	require.NoError(t, err)
	hash, err := caCertHash(paths.CACert)
	require.NoError(t, err)
	data, err := os.ReadFile(paths.CACert)
	require.NoError(t, err)
	block, _ := pem.Decode(data)
	cert, err := x509.ParseCertificate(block.Bytes)
	require.NoError(t, err)
	sum := sha256.Sum256(cert.RawSubjectPublicKeyInfo)
	require.Equal(t, "sha256:"+hex.EncodeToString(sum[:]), hash)

	_, err = caCertHash(filepath.Join(t.TempDir(), "missing.crt"))
	require.ErrorContains(t, err, "read cluster CA")
}

func TestNewJoinCommandNeedsListenAddress(t *testing.T) {
	d := &fakedriver.Driver{}
	m := New(Options{Home: t.TempDir(), Drivers: drivers.NewRegistry(d)})
	_, err := m.NewJoinCommand(context.Background(), "dev", time.Second)
	var invalid *InvalidOptionError
	require.ErrorAs(t, err, &invalid)
	require.Equal(t, "TTL", invalid.Field)

	p := fullProfile()
	require.NoError(t, m.store.Save(p))
	_, err = m.NewJoinCommand(context.Background(), "dev", time.Hour)
	require.ErrorContains(t, err, "--listen-address")
}

func TestListenAddressInConfigs(t *testing.T) {
	d := &fakedriver.Driver{}
	m := New(Options{Home: t.TempDir(), Drivers: drivers.NewRegistry(d)})
	p := fullProfile()
	p.ListenAddress = "10.1.2.3"
	require.NoError(t, m.store.Save(p))
	require.NoError(t, m.writeConfigs(d, p))

	cfg, err := nodeconfig.Load(filepath.Join(m.store.NodeDir("dev", "dev"), "config.json"))
	require.NoError(t, err)
	require.Equal(t, "10.1.2.3", cfg.ControlPlane.ListenAddress)
	require.Equal(t, fmt.Sprintf("https://10.1.2.3:%d", p.APIServerPort), cfg.ControlPlane.JoinServer)
	data, err := os.ReadFile(pki.Layout(m.store.PKIDir("dev")).APIServerCert)
	require.NoError(t, err)
	block, _ := pem.Decode(data)
	cert, err := x509.ParseCertificate(block.Bytes)
	require.NoError(t, err)
	require.True(t, slices.ContainsFunc(cert.IPAddresses, net.ParseIP("10.1.2.3").Equal), "the apiserver certificate names the listen address")
	require.Equal(t, "10.1.2.3", m.driverNode(p, p.Nodes[0]).ListenAddress)
}

func TestVMOptionsNeedAVMDriver(t *testing.T) {
	d := &fakedriver.Driver{}
	home := t.TempDir()
	m := New(Options{Home: home, Drivers: drivers.NewRegistry(d)})
	_, err := m.Start(context.Background(), StartOptions{Profile: "dev", Driver: d.Info().Name, VMAccel: drivers.AccelTCG})
	var invalid *InvalidOptionError
	require.ErrorAs(t, err, &invalid)
	require.Equal(t, "VMAccel", invalid.Field)
	require.ErrorContains(t, err, "makes no VMs")
	require.NoDirExists(t, m.store.ProfileDir("dev"), "nothing is made")
}
