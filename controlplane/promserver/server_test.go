package promserver

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// queryResult is the part of /api/v1/query's answer the tests read.
type queryResult struct {
	Status string `json:"status"`
	Data   struct {
		Result []struct {
			Metric map[string]string `json:"metric"`
			Value  []any             `json:"value"`
		} `json:"result"`
	} `json:"data"`
}

func query(t *testing.T, base, q string, at ...time.Time) queryResult {
	t.Helper()
	u := base + "/api/v1/query?query=" + url.QueryEscape(q)
	if len(at) > 0 {
		u += "&time=" + strconv.FormatFloat(float64(at[0].UnixMilli())/1000, 'f', 3, 64)
	}
	resp, err := http.Get(u)
	require.NoError(t, err)
	defer resp.Body.Close()
	var r queryResult
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&r))
	return r
}

// The server scrapes itself, stores the samples and answers PromQL over
// its HTTP API; its data outlives a restart.
func TestRunScrapesAndAnswers(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a Prometheus server for seconds")
	}
	dir := t.TempDir()
	kubeconfig := filepath.Join(dir, "kubeconfig")
	// Discovery has no apiserver to reach: the Kubernetes jobs find no target.
	require.NoError(t, os.WriteFile(kubeconfig, []byte("apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: \"https://127.0.0.1:1\"}}]\ncontexts: [{name: c, context: {cluster: c, user: u}}]\ncurrent-context: c\nusers: [{name: u, user: {}}]\n"), 0o600))

	rulesDir := filepath.Join(dir, "manifests")
	require.NoError(t, os.MkdirAll(filepath.Join(rulesDir, "monitoring"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(rulesDir, "alerts.rules.yaml"), []byte(`groups:
- name: test
  rules:
  - alert: AlwaysFiring
    expr: vector(1)
    labels: {severity: warning}
`), 0o644))
	// A PrometheusRule object, as the Prometheus Operator takes it.
	require.NoError(t, os.WriteFile(filepath.Join(rulesDir, "monitoring", "recording.rules.yml"), []byte(`apiVersion: monitoring.coreos.com/v1
kind: PrometheusRule
metadata: {name: recording}
spec:
  groups:
  - name: recording
    rules:
    - record: job:up:sum
      expr: sum by (job) (up)
`), 0o644))
	// Not a rule file: left to the manifests folder.
	require.NoError(t, os.WriteFile(filepath.Join(rulesDir, "app.yaml"), []byte("groups: [{name: no}]\n"), 0o644))

	run := func(t *testing.T, check func(base string)) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		base := "http://" + l.Addr().String()
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() {
			done <- Run(ctx, Options{
				Targets: Targets{
					Cluster: "test", Self: l.Addr().String(), APIServer: "https://127.0.0.1:1", Kubeconfig: kubeconfig,
					CAFile: "/nonexistent/ca.crt", CertFile: "/nonexistent/c.crt", KeyFile: "/nonexistent/c.key",
					Interval: time.Second,
				},
				DataDir: filepath.Join(dir, "tsdb"), Listener: l, ExternalURL: base, RulesDir: rulesDir,
				Retention: time.Hour, RetentionBytes: 64 << 20,
				Allowed: func(ip net.IP) bool { return ip.IsLoopback() },
			})
		}()
		defer func() {
			cancel()
			select {
			case err := <-done:
				assert.NoError(t, err)
			case <-time.After(30 * time.Second):
				t.Error("Run did not return after its context ended")
			}
		}()
		check(base)
	}

	// Rule files of the manifests folder are evaluated: an alert fires, a
	// recording rule records.
	run(t, func(base string) {
		require.EventuallyWithT(t, func(c *assert.CollectT) {
			body, err := get(base + "/api/v1/alerts")
			assert.NoError(c, err)
			assert.Contains(c, body, `"alertname":"AlwaysFiring"`)
			assert.Contains(c, body, `"state":"firing"`)
		}, 30*time.Second, 200*time.Millisecond)
		require.EventuallyWithT(t, func(c *assert.CollectT) {
			r := query(t, base, `job:up:sum{job="prometheus"}`)
			assert.Len(c, r.Data.Result, 1)
		}, 30*time.Second, 200*time.Millisecond)
	})
	// The UI's pages say there is no UI, and link the API.
	run(t, func(base string) {
		for _, page := range []string{"/", "/query", "/targets"} {
			body, err := get(base + page)
			require.NoError(t, err)
			assert.Contains(t, body, "has no web UI", page)
			assert.Contains(t, body, "/api/v1/query?query=up", page)
		}
		require.EventuallyWithT(t, func(c *assert.CollectT) {
			body, err := get(base + "/-/ready")
			assert.NoError(c, err)
			assert.Contains(c, body, "Ready")
		}, 30*time.Second, 100*time.Millisecond)
	})
	// Stopping marks the series stale: look before that.
	var firstRun time.Time
	run(t, func(base string) {
		require.EventuallyWithT(t, func(c *assert.CollectT) {
			r := query(t, base, `up{job="prometheus"}`)
			if assert.Len(c, r.Data.Result, 1) {
				assert.Equal(c, "1", r.Data.Result[0].Value[1])
				assert.Equal(c, "prometheus", r.Data.Result[0].Metric["job"])
			}
		}, 30*time.Second, 200*time.Millisecond)
		firstRun = time.Now()
	})
	// A second run reads the first one's samples back: at a time before
	// it started, only those answer.
	run(t, func(base string) {
		require.EventuallyWithT(t, func(c *assert.CollectT) {
			r := query(t, base, `up{job="prometheus"}`, firstRun)
			if assert.Len(c, r.Data.Result, 1) {
				assert.Equal(c, "1", r.Data.Result[0].Value[1])
			}
		}, 30*time.Second, 200*time.Millisecond)
	})
}

func get(u string) (string, error) {
	resp, err := http.Get(u)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

// Scrapes never dial what Allowed refuses.
func TestAllowedDialer(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	dial := allowedDialer(func(ip net.IP) bool { return !ip.Equal(net.IPv4(127, 0, 0, 1)) })
	_, err = dial(context.Background(), "tcp", l.Addr().String())
	require.ErrorContains(t, err, "is not an address minik may dial")

	dial = allowedDialer(func(net.IP) bool { return true })
	conn, err := dial(context.Background(), "tcp", l.Addr().String())
	require.NoError(t, err)
	conn.Close()
}
