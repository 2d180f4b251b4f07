package integration

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// listeningSockets returns the addresses pid listens on (TCP, v4 and v6),
// from its sockets' inodes and the kernel's socket tables.
func listeningSockets(t *testing.T, pid int) []string {
	t.Helper()
	inodes := map[string]bool{}
	fds, err := os.ReadDir(filepath.Join("/proc", strconv.Itoa(pid), "fd"))
	require.NoError(t, err)
	for _, fd := range fds {
		link, err := os.Readlink(filepath.Join("/proc", strconv.Itoa(pid), "fd", fd.Name()))
		if err == nil && strings.HasPrefix(link, "socket:[") {
			inodes[strings.TrimSuffix(strings.TrimPrefix(link, "socket:["), "]")] = true
		}
	}
	var out []string
	for _, table := range []string{"tcp", "tcp6"} {
		f, err := os.Open(filepath.Join("/proc", strconv.Itoa(pid), "net", table))
		require.NoError(t, err)
		sc := bufio.NewScanner(f)
		sc.Scan() // header
		for sc.Scan() {
			fields := strings.Fields(sc.Text())
			// local_address is hex IP:port; st 0A is LISTEN; field 9 the inode.
			if len(fields) < 10 || fields[3] != "0A" || !inodes[fields[9]] {
				continue
			}
			out = append(out, decodeProcAddr(t, fields[1]))
		}
		f.Close()
	}
	return out
}

// decodeProcAddr reads /proc/net/tcp's "0100007F:1F90" (little-endian
// words) as 127.0.0.1:8080.
func decodeProcAddr(t *testing.T, s string) string {
	host, port, _ := strings.Cut(s, ":")
	b, err := hex.DecodeString(host)
	require.NoError(t, err)
	ip := make(net.IP, len(b))
	for i := 0; i < len(b); i += 4 {
		ip[i], ip[i+1], ip[i+2], ip[i+3] = b[i+3], b[i+2], b[i+1], b[i]
	}
	p, err := strconv.ParseUint(port, 16, 16)
	require.NoError(t, err)
	return net.JoinHostPort(ip.String(), strconv.FormatUint(p, 10))
}

// TestExposure checks what a running cluster exposes: listeners only on
// loopback, no anonymous access to the apiserver or a kubelet, RBAC on,
// private files private, certificates of sound keys and lifetimes.
func TestExposure(t *testing.T) {
	h := newHarness(t)
	const profile = "exposed"
	_, st := h.startJSON("-p", profile, "--nodes", "2")

	t.Run("listeners only on loopback", func(t *testing.T) {
		pids := h.nodePIDs()
		require.NotEmpty(t, pids)
		for _, pid := range pids {
			addrs := listeningSockets(t, pid)
			require.NotEmpty(t, addrs, "pid %d listens on nothing", pid)
			t.Logf("pid %d listens on %v", pid, addrs)
			for _, a := range addrs {
				host, _, err := net.SplitHostPort(a)
				require.NoError(t, err)
				assert.True(t, net.ParseIP(host).IsLoopback(), "pid %d listens on %s, beyond loopback", pid, a)
			}
		}
	})

	insecure := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} //nolint:gosec // anonymous on purpose
	anonymous := func(url string) int {
		resp, err := insecure.Get(url)
		require.NoError(t, err, url)
		resp.Body.Close()
		return resp.StatusCode
	}
	t.Run("no anonymous access", func(t *testing.T) {
		for _, path := range []string{"/api/v1/secrets", "/api/v1/nodes", "/apis/apps/v1/deployments", "/metrics"} {
			code := anonymous(st.APIServer + path)
			assert.Contains(t, []int{http.StatusUnauthorized, http.StatusForbidden}, code, "apiserver %s", path)
		}
		for _, n := range st.Nodes {
			for _, path := range []string{"/pods", "/metrics", "/stats/summary", "/logs/", "/volumes/x"} {
				code := anonymous(fmt.Sprintf("https://%s%s", net.JoinHostPort(n.IP, "10250"), path))
				assert.Equal(t, http.StatusUnauthorized, code, "kubelet of %s %s", n.Name, path)
			}
		}
	})

	t.Run("RBAC", func(t *testing.T) {
		can := func(args ...string) string {
			r := h.run(time.Minute, append([]string{"kubectl", "-p", profile, "--", "auth", "can-i"}, args...)...)
			return strings.TrimSpace(r.stdout)
		}
		assert.Equal(t, "no", can("list", "secrets", "--as", "system:serviceaccount:default:default"), "a pod's default identity reads no Secrets")
		assert.Equal(t, "no", can("create", "pods", "--as", "someone"), "an unknown user may do nothing")
		assert.Equal(t, "yes", can("list", "secrets"), "the admin may")
	})

	t.Run("private files and sound certificates", func(t *testing.T) {
		profileDir := filepath.Join(h.home, "profiles", profile)
		var certs int
		require.NoError(t, filepath.WalkDir(profileDir, func(p string, d fs.DirEntry, err error) error {
			require.NoError(t, err)
			if d.IsDir() {
				return nil
			}
			info, err := d.Info()
			require.NoError(t, err)
			name := d.Name()
			if strings.HasSuffix(name, ".key") || strings.Contains(name, "kubeconfig") {
				assert.Equal(t, os.FileMode(0o600), info.Mode().Perm(), "%s holds a secret", p)
			}
			if !strings.HasSuffix(name, ".crt") {
				return nil
			}
			data, err := os.ReadFile(p)
			require.NoError(t, err)
			block, _ := pem.Decode(data)
			require.NotNil(t, block, p)
			cert, err := x509.ParseCertificate(block.Bytes)
			require.NoError(t, err, p)
			certs++
			switch k := cert.PublicKey.(type) {
			case *ecdsa.PublicKey:
				assert.Equal(t, elliptic.P256(), k.Curve, "%s: ECDSA on P-256", p)
			case *rsa.PublicKey:
				assert.GreaterOrEqual(t, k.N.BitLen(), 2048, "%s: RSA of 2048 bits or more", p)
			default:
				t.Errorf("%s: a %T key", p, k)
			}
			life := cert.NotAfter.Sub(cert.NotBefore)
			limit := 366 * 24 * time.Hour
			if cert.IsCA {
				limit = 10*366*24*time.Hour + 24*time.Hour
			}
			assert.LessOrEqual(t, life, limit, "%s lives %s", p, life)
			assert.True(t, cert.NotAfter.After(time.Now().Add(30*24*time.Hour)), "%s expires within 30 days", p)
			return nil
		}))
		assert.Positive(t, certs)
		// Nothing in minik's home is readable by others.
		require.NoError(t, filepath.WalkDir(h.home, func(p string, d fs.DirEntry, err error) error {
			require.NoError(t, err)
			info, err := d.Info()
			require.NoError(t, err)
			if strings.HasSuffix(p, ".key") {
				assert.Zero(t, info.Mode().Perm()&0o077, "%s", p)
			}
			return nil
		}))
	})
}
