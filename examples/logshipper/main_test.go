package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseName(t *testing.T) {
	tests := []struct {
		name               string
		ns, pod, container string
		ok                 bool
	}{
		{"web-7d9f_default_app-0123abcd.log", "default", "web-7d9f", "app", true},
		{"coredns_kube-system_dns-server-beef.log", "kube-system", "coredns", "dns-server", true},
		{"not-a-container-log.txt", "", "", "", false},
		{"two_parts.log", "", "", "", false},
	}
	for _, tt := range tests {
		ns, pod, c, ok := parseName(tt.name)
		assert.Equal(t, tt.ok, ok, tt.name)
		assert.Equal(t, []string{tt.ns, tt.pod, tt.container}, []string{ns, pod, c}, tt.name)
	}
}

func TestParseCRI(t *testing.T) {
	ts, stream, full, text, ok := parseCRI("2026-12-02T09:00:00.5Z stderr F oh no: it broke")
	require.True(t, ok)
	assert.Equal(t, time.Date(2026, 12, 2, 9, 0, 0, 5e8, time.UTC), ts)
	assert.Equal(t, "stderr", stream)
	assert.True(t, full)
	assert.Equal(t, "oh no: it broke", text)
	_, _, full, text, ok = parseCRI("2026-12-02T09:00:00Z stdout P ")
	assert.True(t, ok)
	assert.False(t, full)
	assert.Empty(t, text)
	_, _, _, _, ok = parseCRI("garbage")
	assert.False(t, ok)
}

// TestShipToCollector runs a shipper over a log folder laid out as a
// node's and a collector, and follows a line from a file to the collector.
func TestShipToCollector(t *testing.T) {
	dir := t.TempDir()
	collector := httptest.NewServer(newCollector())
	defer collector.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = ship(ctx, dir, collector.URL, "node-1") }()

	file := filepath.Join(dir, "pods", "default_web_uid", "app", "0.log")
	require.NoError(t, os.MkdirAll(filepath.Dir(file), 0o755))
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "containers"), 0o755))
	require.NoError(t, os.WriteFile(file, []byte("2026-12-02T09:00:00Z stdout P a long \n2026-12-02T09:00:00Z stdout F line\n"), 0o644))
	require.NoError(t, os.Symlink(file, filepath.Join(dir, "containers", "web_default_app-c0ffee.log")))

	var got []Line
	require.Eventually(t, func() bool {
		resp, err := http.Get(collector.URL + "/lines?pod=web")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		got = nil
		return json.NewDecoder(resp.Body).Decode(&got) == nil && len(got) > 0
	}, 10*time.Second, 50*time.Millisecond)
	assert.Equal(t, []Line{{Node: "node-1", Namespace: "default", Pod: "web", Container: "app", Stream: "stdout",
		Time: time.Date(2026, 12, 2, 9, 0, 0, 0, time.UTC), Text: "a long line"}}, got)
}
