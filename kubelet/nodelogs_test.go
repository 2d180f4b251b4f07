package kubelet

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"minik.dev/minik/nodeconfig"
)

func TestNodeLogs(t *testing.T) {
	dir := t.TempDir()
	agentLog := filepath.Join(dir, "minik-node.log")
	require.NoError(t, os.WriteFile(agentLog, []byte(
		"I1202 09:00:00.000000       1 agent.go:1] starting node\n"+
			"E1202 09:30:00.000000       1 worker.go:2] sync failed\n"+
			"goroutine 1 [running]:\n"+
			"I1202 10:00:00.000000       1 agent.go:3] node ready\n"), 0o644))
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "pods", "default_web_uid", "app"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "pods", "default_web_uid", "app", "0.log"), []byte("2026-12-02T09:00:00Z stdout F hi\n"), 0o644))
	s := &server{cfg: &nodeconfig.Config{LogDir: dir, AgentLog: agentLog}, now: func() time.Time { return time.Date(2026, 12, 2, 11, 0, 0, 0, time.UTC) }}

	tests := []struct {
		name, url string
		code      int
		body      string
		contains  []string
	}{
		{name: "listing", url: "/logs/", code: 200, contains: []string{`href="minik-node.log"`, `href="pods/"`}},
		{name: "a file", url: "/logs/pods/default_web_uid/app/0.log", code: 200, body: "2026-12-02T09:00:00Z stdout F hi\n"},
		{name: "the agent's log", url: "/logs/?query=minik-node&tailLines=2", code: 200,
			body: "goroutine 1 [running]:\nI1202 10:00:00.000000       1 agent.go:3] node ready\n"},
		{name: "kubelet is the agent", url: "/logs/?query=kubelet&pattern=ready", code: 200,
			body: "I1202 10:00:00.000000       1 agent.go:3] node ready\n"},
		{name: "since and until, a stack trace goes with its line", url: "/logs/?query=minik-node&sinceTime=2026-12-02T09:15:00Z&untilTime=2026-12-02T09:45:00Z", code: 200,
			body: "E1202 09:30:00.000000       1 worker.go:2] sync failed\ngoroutine 1 [running]:\n"},
		{name: "a file of the log folder", url: "/logs/?query=pods/default_web_uid/app/0.log", code: 200, body: "2026-12-02T09:00:00Z stdout F hi\n"},
		{name: "no such log", url: "/logs/?query=sshd", code: 404, contains: []string{`no log named "sshd"`}},
		{name: "outside the log folder", url: "/logs/?query=../../etc/passwd", code: 404},
		{name: "bad tail", url: "/logs/?query=minik-node&tailLines=-1", code: 400},
		{name: "bad pattern", url: "/logs/?query=minik-node&pattern=(", code: 400},
		{name: "an earlier boot", url: "/logs/?query=minik-node&boot=-1", code: 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			s.nodeLogs(rec, httptest.NewRequest(http.MethodGet, tt.url, nil))
			assert.Equal(t, tt.code, rec.Code, rec.Body.String())
			if tt.body != "" {
				assert.Equal(t, tt.body, rec.Body.String())
			}
			for _, c := range tt.contains {
				assert.Contains(t, rec.Body.String(), c)
			}
		})
	}

	t.Run("a node without a log folder", func(t *testing.T) {
		s := &server{cfg: &nodeconfig.Config{AgentLog: agentLog}, now: time.Now}
		rec := httptest.NewRecorder()
		s.nodeLogs(rec, httptest.NewRequest(http.MethodGet, "/logs/", nil))
		assert.Equal(t, http.StatusNotFound, rec.Code)
		rec = httptest.NewRecorder()
		s.nodeLogs(rec, httptest.NewRequest(http.MethodGet, "/logs/?query=minik-node&tailLines=1", nil))
		assert.Equal(t, http.StatusOK, rec.Code)
		assert.Contains(t, rec.Body.String(), "node ready")
	})
}
