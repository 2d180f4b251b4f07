package pki

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"encoding/pem"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func testSpec(dir string) Spec {
	return Spec{
		Dir:          dir,
		APIServerIPs: []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("10.96.0.1")},
		APIServerDNS: []string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc",
			"kubernetes.default.svc.cluster.local", "minik"},
		Nodes: []NodeSpec{
			{Name: "minik", IP: net.ParseIP("127.0.0.1")},
			{Name: "minik-m02", IP: net.ParseIP("127.0.2.1")},
		},
	}
}

// snapshot returns the content of every file in dir by name.
func snapshot(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	files := map[string][]byte{}
	for _, e := range entries {
		data, err := os.ReadFile(filepath.Join(dir, e.Name()))
		require.NoError(t, err)
		files[e.Name()] = data
	}
	return files
}

// changed lists the files that differ between two snapshots.
func changed(before, after map[string][]byte) []string {
	var names []string
	for name, data := range after {
		if old, ok := before[name]; !ok || !bytes.Equal(old, data) {
			names = append(names, name)
		}
	}
	for name := range before {
		if _, ok := after[name]; !ok {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	return names
}

func readCert(t *testing.T, path string) *x509.Certificate {
	t.Helper()
	cert, err := loadCert(path)
	require.NoError(t, err)
	require.NotNil(t, cert, "certificate %s", path)
	return cert
}

func pool(t *testing.T, path string) *x509.CertPool {
	t.Helper()
	p := x509.NewCertPool()
	p.AddCert(readCert(t, path))
	return p
}

func requireMode(t *testing.T, path string, want fs.FileMode) {
	t.Helper()
	st, err := os.Stat(path)
	require.NoError(t, err)
	assert.Equal(t, want, st.Mode().Perm(), path)
}

func TestEnsureCreatesPKI(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "pki")
	p, err := Ensure(testSpec(dir))
	require.NoError(t, err)
	assert.Equal(t, Layout(dir), p)
	requireMode(t, dir, 0o700)

	clusterCA, frontCA := pool(t, p.CACert), pool(t, p.FrontProxyCACert)
	for _, ca := range []struct{ cert, key, cn string }{
		{p.CACert, p.CAKey, "minik-ca"},
		{p.FrontProxyCACert, p.FrontProxyCAKey, "minik-front-proxy-ca"},
	} {
		cert := readCert(t, ca.cert)
		assert.True(t, cert.IsCA)
		assert.Equal(t, ca.cn, cert.Subject.CommonName)
		assert.WithinDuration(t, time.Now().AddDate(10, 0, 0), cert.NotAfter, time.Hour)
		requireMode(t, ca.cert, 0o644)
		requireMode(t, ca.key, 0o600)
	}

	tests := []struct {
		name      string
		cert, key string
		roots     *x509.CertPool
		usage     x509.ExtKeyUsage
		cn        string
		orgs      []string
		dns       []string
		ips       []string
	}{
		{"front-proxy-client", p.FrontProxyClientCert, p.FrontProxyClientKey, frontCA, x509.ExtKeyUsageClientAuth,
			"front-proxy-client", nil, nil, nil},
		{"apiserver", p.APIServerCert, p.APIServerKey, clusterCA, x509.ExtKeyUsageServerAuth,
			"kube-apiserver", nil,
			[]string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc",
				"kubernetes.default.svc.cluster.local", "minik"},
			[]string{"127.0.0.1", "10.96.0.1"}},
		{"apiserver-kubelet-client", p.APIServerKubeletClientCert, p.APIServerKubeletClientKey, clusterCA,
			x509.ExtKeyUsageClientAuth, "kube-apiserver-kubelet-client", []string{"system:masters"}, nil, nil},
		{"admin", p.AdminCert, p.AdminKey, clusterCA, x509.ExtKeyUsageClientAuth,
			"minik-admin", []string{"system:masters"}, nil, nil},
		{"controller-manager", p.ControllerManagerCert, p.ControllerManagerKey, clusterCA, x509.ExtKeyUsageClientAuth,
			"system:kube-controller-manager", nil, nil, nil},
		{"scheduler", p.SchedulerCert, p.SchedulerKey, clusterCA, x509.ExtKeyUsageClientAuth,
			"system:kube-scheduler", nil, nil, nil},
		{"kubelet minik client", p.KubeletClientCert("minik"), p.KubeletClientKey("minik"), clusterCA,
			x509.ExtKeyUsageClientAuth, "system:node:minik", []string{"system:nodes"}, nil, nil},
		{"kubelet minik serving", p.KubeletServingCert("minik"), p.KubeletServingKey("minik"), clusterCA,
			x509.ExtKeyUsageServerAuth, "minik", nil, []string{"minik", "localhost"}, []string{"127.0.0.1"}},
		{"kubelet minik-m02 client", p.KubeletClientCert("minik-m02"), p.KubeletClientKey("minik-m02"), clusterCA,
			x509.ExtKeyUsageClientAuth, "system:node:minik-m02", []string{"system:nodes"}, nil, nil},
		{"kubelet minik-m02 serving", p.KubeletServingCert("minik-m02"), p.KubeletServingKey("minik-m02"), clusterCA,
			x509.ExtKeyUsageServerAuth, "minik-m02", nil, []string{"minik-m02", "localhost"}, []string{"127.0.2.1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			requireMode(t, tt.cert, 0o644)
			requireMode(t, tt.key, 0o600)

			cert := readCert(t, tt.cert)
			assert.Equal(t, tt.cn, cert.Subject.CommonName)
			assert.ElementsMatch(t, tt.orgs, cert.Subject.Organization)
			assert.ElementsMatch(t, tt.dns, cert.DNSNames)
			assert.ElementsMatch(t, tt.ips, ipStrings(cert.IPAddresses))
			assert.False(t, cert.IsCA)
			assert.WithinDuration(t, time.Now().AddDate(1, 0, 0), cert.NotAfter, time.Hour)

			_, err := cert.Verify(x509.VerifyOptions{Roots: tt.roots, KeyUsages: []x509.ExtKeyUsage{tt.usage}})
			require.NoError(t, err)
			other := x509.ExtKeyUsageServerAuth
			if tt.usage == x509.ExtKeyUsageServerAuth {
				other = x509.ExtKeyUsageClientAuth
			}
			_, err = cert.Verify(x509.VerifyOptions{Roots: tt.roots, KeyUsages: []x509.ExtKeyUsage{other}})
			assert.Error(t, err, "certificate must not be usable for the other purpose")
			for _, name := range append(tt.dns, tt.ips...) {
				assert.NoError(t, cert.VerifyHostname(name))
			}

			key, err := loadKey(tt.key)
			require.NoError(t, err)
			require.NotNil(t, key)
			ec, ok := key.(*ecdsa.PrivateKey)
			require.True(t, ok, "key must be ECDSA")
			assert.Equal(t, elliptic.P256(), ec.Curve)
			assert.True(t, matchesKey(cert, key))
		})
	}

	t.Run("service account", func(t *testing.T) {
		requireMode(t, p.SAKey, 0o600)
		keyPEM, err := os.ReadFile(p.SAKey)
		require.NoError(t, err)
		block, _ := pem.Decode(keyPEM)
		require.NotNil(t, block)
		assert.Equal(t, "PRIVATE KEY", block.Type)
		key, err := x509.ParsePKCS8PrivateKey(block.Bytes)
		require.NoError(t, err)
		ec, ok := key.(*ecdsa.PrivateKey)
		require.True(t, ok)
		assert.Equal(t, elliptic.P256(), ec.Curve)

		pubPEM, err := os.ReadFile(p.SAPub)
		require.NoError(t, err)
		block, _ = pem.Decode(pubPEM)
		require.NotNil(t, block)
		assert.Equal(t, "PUBLIC KEY", block.Type)
		pub, err := x509.ParsePKIXPublicKey(block.Bytes)
		require.NoError(t, err)
		assert.True(t, ec.PublicKey.Equal(pub))
	})
}

func TestEnsureIsIdempotent(t *testing.T) {
	dir := t.TempDir()
	_, err := Ensure(testSpec(dir))
	require.NoError(t, err)
	before := snapshot(t, dir)
	var names []string
	for name := range before {
		names = append(names, name)
	}
	// Exactly the PKI files: no temp files left behind.
	assert.ElementsMatch(t, []string{
		"ca.crt", "ca.key", "front-proxy-ca.crt", "front-proxy-ca.key",
		"front-proxy-client.crt", "front-proxy-client.key", "sa.key", "sa.pub",
		"apiserver.crt", "apiserver.key", "apiserver-kubelet-client.crt", "apiserver-kubelet-client.key",
		"admin.crt", "admin.key", "controller-manager.crt", "controller-manager.key",
		"scheduler.crt", "scheduler.key",
		"kubelet-minik-client.crt", "kubelet-minik-client.key",
		"kubelet-minik-serving.crt", "kubelet-minik-serving.key",
		"kubelet-minik-m02-client.crt", "kubelet-minik-m02-client.key",
		"kubelet-minik-m02-serving.crt", "kubelet-minik-m02-serving.key",
	}, names)

	_, err = Ensure(testSpec(dir))
	require.NoError(t, err)
	assert.Empty(t, changed(before, snapshot(t, dir)))
}

func TestEnsureNodeIPChangeReissuesOnlyServingCert(t *testing.T) {
	dir := t.TempDir()
	spec := testSpec(dir)
	p, err := Ensure(spec)
	require.NoError(t, err)
	before := snapshot(t, dir)

	spec.Nodes[1].IP = net.ParseIP("127.0.3.1")
	_, err = Ensure(spec)
	require.NoError(t, err)

	assert.Equal(t, []string{"kubelet-minik-m02-serving.crt"}, changed(before, snapshot(t, dir)))
	cert := readCert(t, p.KubeletServingCert("minik-m02"))
	assert.Equal(t, []string{"127.0.3.1"}, ipStrings(cert.IPAddresses))
}

func TestEnsureAPIServerSANChangeReissuesOnlyAPIServerCert(t *testing.T) {
	dir := t.TempDir()
	spec := testSpec(dir)
	_, err := Ensure(spec)
	require.NoError(t, err)
	before := snapshot(t, dir)

	spec.APIServerDNS = append(spec.APIServerDNS, "minik.example")
	_, err = Ensure(spec)
	require.NoError(t, err)
	assert.Equal(t, []string{"apiserver.crt"}, changed(before, snapshot(t, dir)))
}

func TestEnsureRegeneratesBrokenLeaf(t *testing.T) {
	// A leaf signed by some other cluster's CA.
	otherDir := t.TempDir()
	other, err := Ensure(testSpec(otherDir))
	require.NoError(t, err)

	tests := []struct {
		name        string
		breakIt     func(t *testing.T, p *Paths)
		wantChanged []string
	}{
		{
			name: "garbage cert",
			breakIt: func(t *testing.T, p *Paths) {
				require.NoError(t, os.WriteFile(p.AdminCert, []byte("garbage"), 0o644))
			},
			wantChanged: []string{"admin.crt"},
		},
		{
			name: "garbage inside PEM",
			breakIt: func(t *testing.T, p *Paths) {
				data := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte("garbage")})
				require.NoError(t, os.WriteFile(p.AdminCert, data, 0o644))
			},
			wantChanged: []string{"admin.crt"},
		},
		{
			name: "empty cert",
			breakIt: func(t *testing.T, p *Paths) {
				require.NoError(t, os.WriteFile(p.AdminCert, nil, 0o644))
			},
			wantChanged: []string{"admin.crt"},
		},
		{
			name: "missing cert",
			breakIt: func(t *testing.T, p *Paths) {
				require.NoError(t, os.Remove(p.AdminCert))
			},
			wantChanged: []string{"admin.crt"},
		},
		{
			name: "garbage key",
			breakIt: func(t *testing.T, p *Paths) {
				require.NoError(t, os.WriteFile(p.AdminKey, []byte("garbage"), 0o600))
			},
			wantChanged: []string{"admin.crt", "admin.key"},
		},
		{
			name: "key of another certificate",
			breakIt: func(t *testing.T, p *Paths) {
				data, err := os.ReadFile(p.SchedulerKey)
				require.NoError(t, err)
				require.NoError(t, os.WriteFile(p.AdminKey, data, 0o600))
			},
			wantChanged: []string{"admin.crt", "admin.key"},
		},
		{
			name: "signed by another CA",
			breakIt: func(t *testing.T, p *Paths) {
				for src, dst := range map[string]string{other.AdminCert: p.AdminCert, other.AdminKey: p.AdminKey} {
					data, err := os.ReadFile(src)
					require.NoError(t, err)
					require.NoError(t, os.WriteFile(dst, data, 0o600))
				}
			},
			wantChanged: []string{"admin.crt", "admin.key"},
		},
		{
			name: "missing service-account public key",
			breakIt: func(t *testing.T, p *Paths) {
				require.NoError(t, os.Remove(p.SAPub))
			},
			wantChanged: nil,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			p, err := Ensure(testSpec(dir))
			require.NoError(t, err)
			before := snapshot(t, dir)

			tt.breakIt(t, p)
			_, err = Ensure(testSpec(dir))
			require.NoError(t, err)
			assert.Equal(t, tt.wantChanged, changed(before, snapshot(t, dir)))

			cert := readCert(t, p.AdminCert)
			_, err = cert.Verify(x509.VerifyOptions{
				Roots: pool(t, p.CACert), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
			assert.NoError(t, err)
			key, err := loadKey(p.AdminKey)
			require.NoError(t, err)
			require.NotNil(t, key)
			assert.True(t, matchesKey(cert, key))
		})
	}
}

func TestEnsureRegeneratesCAAndEverythingItSigned(t *testing.T) {
	signedByCluster := []string{
		"apiserver.crt", "apiserver-kubelet-client.crt", "admin.crt", "controller-manager.crt", "scheduler.crt",
		"kubelet-minik-client.crt", "kubelet-minik-serving.crt",
		"kubelet-minik-m02-client.crt", "kubelet-minik-m02-serving.crt",
	}
	tests := []struct {
		name   string
		remove func(p *Paths) []string
		want   []string
	}{
		{"cert and key", func(p *Paths) []string { return []string{p.CACert, p.CAKey} },
			append([]string{"ca.crt", "ca.key"}, signedByCluster...)},
		{"cert only", func(p *Paths) []string { return []string{p.CACert} },
			append([]string{"ca.crt", "ca.key"}, signedByCluster...)},
		{"key only", func(p *Paths) []string { return []string{p.CAKey} },
			append([]string{"ca.crt", "ca.key"}, signedByCluster...)},
		{"front-proxy CA", func(p *Paths) []string { return []string{p.FrontProxyCACert, p.FrontProxyCAKey} },
			[]string{"front-proxy-ca.crt", "front-proxy-ca.key", "front-proxy-client.crt"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			p, err := Ensure(testSpec(dir))
			require.NoError(t, err)
			before := snapshot(t, dir)

			for _, f := range tt.remove(p) {
				require.NoError(t, os.Remove(f))
			}
			_, err = Ensure(testSpec(dir))
			require.NoError(t, err)

			want := append([]string(nil), tt.want...)
			sort.Strings(want)
			assert.Equal(t, want, changed(before, snapshot(t, dir)))

			roots := pool(t, p.CACert)
			for _, name := range signedByCluster {
				_, err := readCert(t, filepath.Join(dir, name)).Verify(x509.VerifyOptions{
					Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}})
				assert.NoError(t, err, name)
			}
			_, err = readCert(t, p.FrontProxyClientCert).Verify(x509.VerifyOptions{
				Roots: pool(t, p.FrontProxyCACert), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
			assert.NoError(t, err)
		})
	}
}

func TestEnsureRenewsExpiringCertificates(t *testing.T) {
	t.Run("leaf", func(t *testing.T) {
		dir := t.TempDir()
		spec := testSpec(dir)
		p, err := Ensure(spec)
		require.NoError(t, err)
		before := snapshot(t, dir)

		ca := loadAuthority(t, p.CACert, p.CAKey)
		key, err := loadKey(p.AdminKey)
		require.NoError(t, err)
		var admin leaf
		for _, l := range leaves(spec, p) {
			if l.cert == p.AdminCert {
				admin = l
			}
		}
		now := time.Now()
		require.NoError(t, issueLeaf(ca, admin, key, now.Add(-time.Hour), now.Add(10*24*time.Hour)))
		require.Equal(t, []string{"admin.crt"}, changed(before, snapshot(t, dir)))

		_, err = Ensure(spec)
		require.NoError(t, err)
		assert.Equal(t, []string{"admin.crt"}, changed(before, snapshot(t, dir)))
		assert.WithinDuration(t, time.Now().AddDate(1, 0, 0), readCert(t, p.AdminCert).NotAfter, time.Hour)
	})

	t.Run("CA", func(t *testing.T) {
		dir := t.TempDir()
		spec := testSpec(dir)
		p, err := Ensure(spec)
		require.NoError(t, err)

		now := time.Now()
		ca, err := newCA(caCN, now.Add(-time.Hour), now.Add(10*24*time.Hour))
		require.NoError(t, err)
		require.NoError(t, writeKey(p.CAKey, ca.key))
		require.NoError(t, writeCert(p.CACert, ca.cert.Raw))
		expiring := snapshot(t, dir)

		_, err = Ensure(spec)
		require.NoError(t, err)
		got := changed(expiring, snapshot(t, dir))
		assert.Contains(t, got, "ca.crt")
		assert.Contains(t, got, "apiserver.crt")
		assert.NotContains(t, got, "front-proxy-client.crt")
		assert.WithinDuration(t, time.Now().AddDate(10, 0, 0), readCert(t, p.CACert).NotAfter, time.Hour)
	})
}

func TestEnsureRestoresModes(t *testing.T) {
	dir := t.TempDir()
	p, err := Ensure(testSpec(dir))
	require.NoError(t, err)
	require.NoError(t, os.Chmod(p.AdminKey, 0o644))
	require.NoError(t, os.Chmod(dir, 0o755))
	before := snapshot(t, dir)

	_, err = Ensure(testSpec(dir))
	require.NoError(t, err)
	requireMode(t, p.AdminKey, 0o600)
	requireMode(t, dir, 0o700)
	assert.Empty(t, changed(before, snapshot(t, dir)))
}

func TestEnsureRejectsBadSpec(t *testing.T) {
	tests := []struct {
		name   string
		modify func(s *Spec)
	}{
		{"no dir", func(s *Spec) { s.Dir = "" }},
		{"node without name", func(s *Spec) { s.Nodes[0].Name = "" }},
		{"node name with slash", func(s *Spec) { s.Nodes[0].Name = "../x" }},
		{"node name upper case", func(s *Spec) { s.Nodes[0].Name = "Minik" }},
		{"duplicate node", func(s *Spec) { s.Nodes[1].Name = s.Nodes[0].Name }},
		{"node without IP", func(s *Spec) { s.Nodes[0].IP = nil }},
		{"nil apiserver IP", func(s *Spec) { s.APIServerIPs = append(s.APIServerIPs, nil) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			spec := testSpec(filepath.Join(t.TempDir(), "pki"))
			tt.modify(&spec)
			_, err := Ensure(spec)
			require.Error(t, err)
			if spec.Dir != "" {
				assert.NoDirExists(t, spec.Dir)
			}
		})
	}
}

func loadAuthority(t *testing.T, certPath, keyPath string) *authority {
	t.Helper()
	key, err := loadKey(keyPath)
	require.NoError(t, err)
	require.NotNil(t, key)
	return &authority{cert: readCert(t, certPath), key: key}
}

func BenchmarkEnsureUnchanged(b *testing.B) {
	dir := b.TempDir()
	_, err := Ensure(testSpec(dir))
	require.NoError(b, err)
	for b.Loop() {
		if _, err := Ensure(testSpec(dir)); err != nil {
			b.Fatal(err)
		}
	}
}

func TestFirstExpiry(t *testing.T) {
	dir := t.TempDir()
	first, at, err := FirstExpiry(dir)
	require.NoError(t, err)
	assert.Empty(t, first, "no certificates")
	assert.True(t, at.IsZero())

	p, err := Ensure(testSpec(dir))
	require.NoError(t, err)
	first, at, err = FirstExpiry(dir)
	require.NoError(t, err)
	assert.NotEqual(t, "ca.crt", first, "a leaf expires before the CA")
	assert.WithinDuration(t, time.Now().AddDate(1, 0, 0), at, time.Hour)

	ca := loadAuthority(t, p.CACert, p.CAKey)
	key, err := loadKey(p.AdminKey)
	require.NoError(t, err)
	for _, l := range leaves(testSpec(dir), p) {
		if l.cert == p.AdminCert {
			require.NoError(t, issueLeaf(ca, l, key, time.Now().Add(-time.Hour), time.Now().Add(24*time.Hour)))
		}
	}
	first, at, err = FirstExpiry(dir)
	require.NoError(t, err)
	assert.Equal(t, "admin.crt", first)
	assert.WithinDuration(t, time.Now().Add(24*time.Hour), at, time.Minute)

	require.NoError(t, os.WriteFile(filepath.Join(dir, "broken.crt"), []byte("not a certificate"), 0o644))
	_, _, err = FirstExpiry(dir)
	assert.Error(t, err)
}
