package cli

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"minik.dev/minik/drivers"
)

func TestLogs(t *testing.T) {
	h := newHarness(t)
	h.seed()
	h.driver.Logs = map[string]string{
		"dev":     "cp 1\ncp 2\ncp 3\n",
		"dev-m02": "worker 1\nworker 2\n",
	}
	cases := []struct {
		name           string
		args           []string
		code           int
		stdout, stderr string
	}{
		{"control plane by default", []string{"logs", "-p", "dev"}, 0, "cp 1\ncp 2\ncp 3\n", ""},
		{"tail", []string{"logs", "-p", "dev", "--tail", "2"}, 0, "cp 2\ncp 3\n", ""},
		{"worker", []string{"logs", "-p", "dev", "--node", "dev-m02"}, 0, "worker 1\nworker 2\n", ""},
		{"worker tail", []string{"logs", "-p", "dev", "--node", "dev-m02", "--tail", "1"}, 0, "worker 2\n", ""},
		{"unknown node lists the nodes", []string{"logs", "-p", "dev", "--node", "ghost"}, ExitBadInput, "",
			"Error: logs of dev: node \"ghost\" not found in profile dev; its nodes are: dev, dev-m02\n"},
		{"bad tail", []string{"logs", "-p", "dev", "--tail", "-2"}, ExitBadInput, "", "Error: invalid --tail -2: use a number of lines, or -1 for all\n"},
		{"stray argument", []string{"logs", "-p", "dev", "dev-m02"}, ExitBadInput, "", "Error: minik logs takes no arguments, got [\"dev-m02\"]; see `minik logs --help`\n"},
		{"missing profile", []string{"logs", "-p", "nope"}, ExitError, "", "Error: logs of nope: profile not found: nope\n"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := h.run(tc.args...)
			assert.Equal(t, tc.code, r.code, r.stderr)
			assert.Equal(t, tc.stdout, r.stdout)
			assert.Equal(t, tc.stderr, r.stderr)
		})
	}
	assert.Empty(t, h.driver.Calls(), "reading logs starts and stops nothing")
}

func TestLogsFollowStopsWithTheContext(t *testing.T) {
	h := newHarness(t)
	h.seed()
	h.driver.Logs = map[string]string{"dev": "line\n"}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	var stdout, stderr syncedBuffer
	vars := map[string]string{"MINIK_HOME": h.home, "HOME": filepath.Dir(h.home), "KUBECONFIG": h.kc}
	env := Env{Stdout: &stdout, Stderr: &stderr, Getenv: func(k string) string { return vars[k] }, Drivers: drivers.NewRegistry(h.driver)}
	code := Run(ctx, env, []string{"logs", "-p", "dev", "-f"})
	assert.Equal(t, 0, code, stderr.String())
	assert.Equal(t, "line\n", stdout.String())
}

// syncedBuffer is an io.Writer whose text can be read at the end.
type syncedBuffer struct{ b []byte }

func (s *syncedBuffer) Write(p []byte) (int, error) { s.b = append(s.b, p...); return len(p), nil }
func (s *syncedBuffer) String() string              { return string(s.b) }

func TestExportLogsOfAStoppedCluster(t *testing.T) {
	h := newHarness(t)
	h.seed()
	h.driver.Logs = map[string]string{"dev": "control plane log\n"}
	h.driver.Diagnostics = map[string]string{"fake/engine.json": "{}\n"}
	dir := filepath.Join(t.TempDir(), "out")

	r := h.run("export", "logs", dir, "-p", "dev")
	require.Equal(t, 0, r.code, "an export that collects something succeeds: %s", r.stderr)
	assert.Equal(t, fmt.Sprintf("exported logs of \"dev\" to %s (", dir), r.stdout[:len(fmt.Sprintf("exported logs of \"dev\" to %s (", dir))])
	assert.Contains(t, r.stderr, "Warning: ")
	assert.Contains(t, r.stderr, "summary.txt says what and why")

	got, err := os.ReadFile(filepath.Join(dir, "nodes", "dev", "minik-node.log"))
	require.NoError(t, err)
	assert.Equal(t, "control plane log\n", string(got))
	assert.FileExists(t, filepath.Join(dir, "fake", "engine.json"))
	assert.FileExists(t, filepath.Join(dir, "minik", "version.txt"))
	assert.FileExists(t, filepath.Join(dir, "minik", "profile.json"))
	assert.NoFileExists(t, filepath.Join(dir, "nodes", "dev-m02", "minik-node.log"), "a log that could not be read leaves no empty file")

	summary, err := os.ReadFile(filepath.Join(dir, "summary.txt"))
	require.NoError(t, err)
	for _, want := range []string{
		"minik export logs of profile dev (driver fake, 2 node(s))",
		"  nodes/dev/minik-node.log\n",
		"  - nodes/dev-m02/minik-node.log: node dev-m02 has no log\n",
		"  - files of node dev: node dev is stopped\n",
		"  - everything from the apiserver (objects, events, node conditions, pod logs): load admin kubeconfig: ",
	} {
		assert.Contains(t, string(summary), want)
	}

	// The folder is not empty now: a second export refuses it, unless forced.
	r = h.run("export", "logs", dir, "-p", "dev")
	assert.Equal(t, ExitBadInput, r.code)
	assert.Equal(t, "Error: export logs: cannot write to "+dir+": the folder is not empty; use --force to write into it\n", r.stderr)
	r = h.run("export", "logs", dir, "-p", "dev", "--force")
	assert.Equal(t, 0, r.code, r.stderr)
	assert.Empty(t, h.driver.Calls(), "an export starts and stops nothing")
}

func TestExportLogsArchive(t *testing.T) {
	h := newHarness(t)
	h.seed()
	h.driver.Logs = map[string]string{"dev": "cp\n", "dev-m02": "worker\n"}
	parent := t.TempDir()
	for _, tc := range []struct {
		name string
		args []string
		file string
	}{
		{"--tar", []string{"--tar", filepath.Join(parent, "a")}, "a.tar.gz"},
		{"a .tar.gz name", []string{filepath.Join(parent, "b.tar.gz")}, "b.tar.gz"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := h.run(append([]string{"export", "logs", "-p", "dev"}, tc.args...)...)
			require.Equal(t, 0, r.code, r.stderr)
			names := tarNames(t, filepath.Join(parent, tc.file))
			root := tc.file[:len(tc.file)-len(".tar.gz")]
			assert.Contains(t, names, root+"/summary.txt")
			assert.Contains(t, names, root+"/nodes/dev-m02/minik-node.log")
			r = h.run(append([]string{"export", "logs", "-p", "dev"}, tc.args...)...)
			assert.Equal(t, ExitBadInput, r.code, "an archive is not replaced without --force")
			assert.Contains(t, r.stderr, "the file exists; use --force to replace it")
		})
	}
	entries, err := os.ReadDir(parent)
	require.NoError(t, err)
	assert.Len(t, entries, 2, "only the archives are left: no staging folder")
}

func tarNames(t *testing.T, path string) []string {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	gz, err := gzip.NewReader(f)
	require.NoError(t, err)
	tr := tar.NewReader(gz)
	var names []string
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return names
		}
		require.NoError(t, err)
		names = append(names, h.Name)
	}
}
