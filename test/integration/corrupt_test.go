package integration

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestCorruptedFiles breaks, one at a time, the files a stopped cluster
// keeps: the profile, the cluster's CA certificate, the user's kubeconfig
// and etcd's database. Each gives a clear error or a repair, never a
// panic, and once the file is back the cluster starts with its objects.
func TestCorruptedFiles(t *testing.T) {
	h := newHarness(t)
	h.ok(2*time.Minute, "start", "-p", "broken", "--driver", "process")
	h.ok(time.Minute, "kubectl", "-p", "broken", "--", "create", "configmap", "kept", "--from-literal", "k=v")
	h.ok(time.Minute, "stop", "-p", "broken")
	profile := filepath.Join(h.home, "profiles", "broken")
	etcdDB := filepath.Join(profile, "nodes", "broken", "data", "etcd", "member", "snap", "db")

	kept := func() {
		t.Helper()
		h.ok(2*time.Minute, "start", "-p", "broken")
		assert.Equal(t, "v", h.ok(time.Minute, "kubectl", "-p", "broken", "--", "get", "configmap", "kept", "-o", "jsonpath={.data.k}"))
		h.ok(time.Minute, "stop", "-p", "broken")
	}
	// breaks overwrites the start of path with garbage and returns a
	// function that puts the file back.
	breaks := func(path string, garbage []byte) func() {
		t.Helper()
		saved, err := os.ReadFile(path)
		require.NoError(t, err)
		broken := append(append([]byte{}, garbage...), saved[min(len(garbage), len(saved)):]...)
		require.NoError(t, os.WriteFile(path, broken, 0o600))
		return func() { require.NoError(t, os.WriteFile(path, saved, 0o600)) }
	}
	for _, tc := range []struct {
		name    string
		path    string
		garbage []byte
		// want is what stderr says; "" means the start repairs the file.
		want string
	}{
		{"profile", filepath.Join(profile, "profile.json"), []byte(`{"name": garbage`), "profile is corrupt"},
		{"CA certificate", filepath.Join(profile, "pki", "ca.crt"), []byte("not a certificate"), ""},
		{"kubeconfig", h.kubeconfig, []byte("garbage: ["), "fix or move the file"},
		{"etcd database", etcdDB, make([]byte, 8192), "etcd's data is corrupt"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			restore := breaks(tc.path, tc.garbage)
			r := h.run(2*time.Minute, "start", "-p", "broken")
			assert.NotContains(t, r.stderr, "panic:")
			assert.NotContains(t, r.stderr, "goroutine ")
			if tc.want == "" {
				assert.Equal(t, 0, r.code, "the start repairs it: %s", r.stderr)
				h.ok(time.Minute, "stop", "-p", "broken")
			} else {
				assert.Equal(t, 1, r.code, r.stderr)
				assert.Contains(t, r.stderr, tc.want)
				broken, err := os.ReadFile(tc.path)
				require.NoError(t, err)
				assert.Equal(t, string(tc.garbage), string(broken[:len(tc.garbage)]), "the broken file is left as it was, for the user")
				restore()
			}
			kept()
		})
	}
	h.ok(time.Minute, "delete", "-p", "broken")
}
