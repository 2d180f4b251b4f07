package integration

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// runCIExample runs hack/ci-example/run.sh as a CI job would, with the
// built binary and the harness's MINIK_HOME, keeping the cluster.
func runCIExample(t *testing.T, h *harness, profile, artifacts string, test ...string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	// Tests run in their package's folder.
	cmd := exec.CommandContext(ctx, filepath.Join("..", "..", "hack", "ci-example", "run.sh"), test...)
	cmd.Env = append(h.env, "MINIK="+h.minik, "MINIK_SKIP_BUILD=1", "MINIK_PROFILE="+profile,
		"MINIK_NODES=2", "MINIK_KEEP=1", "MINIK_WAIT=4m", "ARTIFACTS_DIR="+artifacts)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if err == nil {
		return 0, out.String()
	}
	var exit *exec.ExitError
	require.ErrorAs(t, err, &exit, "run.sh: %s", out.String())
	return exit.ExitCode(), out.String()
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	return string(data)
}

// TestCIExampleLogsAndExport runs the CI example script against a docker
// cluster (failing tests, then passing ones), then minik logs and minik
// export logs on it, running and stopped.
func TestCIExampleLogsAndExport(t *testing.T) {
	requireEngine(t)
	keepNodeImages(t)
	h := newHarness(t)
	for i, e := range h.env {
		if strings.HasPrefix(e, "MINIK_DRIVER=") {
			h.env[i] = "MINIK_DRIVER=docker"
		}
	}
	const profile = "ci"
	const worker = profile + "-m02"
	removeCluster(t, h, profile)
	image := buildApp(t)
	dir := t.TempDir()

	// Failing tests: the job exits with their code and leaves the export.
	artifacts := filepath.Join(dir, "failed")
	code, out := runCIExample(t, h, profile, artifacts, "sh", "-c", "echo the tests fail; exit 7")
	require.Equal(t, 7, code, out)
	assert.Contains(t, out, "--- failed (exit code 7): exporting logs")
	exported := filepath.Join(artifacts, "minik-logs")
	assert.FileExists(t, filepath.Join(exported, "summary.txt"))
	assert.FileExists(t, filepath.Join(exported, "nodes", profile, "minik-node.log"))
	assert.FileExists(t, filepath.Join(exported, "kubernetes", "nodes.yaml"))

	// Passing tests: a Deployment of a locally built image rolls out.
	artifacts = filepath.Join(dir, "passed")
	kubectl := `"$MINIK" kubectl -p "$PROFILE" -- `
	code, out = runCIExample(t, h, profile, artifacts, "sh", "-c",
		kubectl+"create deployment web --image="+image+" && "+kubectl+"rollout status deployment/web --timeout=2m")
	require.Equal(t, 0, code, out)
	assert.Contains(t, out, "--- passed")
	assert.NoDirExists(t, artifacts, "a job that passes exports nothing")

	// minik logs: the control plane's by default, a worker's by name.
	tail := h.ok(time.Minute, "logs", "-p", profile, "--tail", "5")
	lines := strings.Split(strings.TrimRight(tail, "\n"), "\n")
	assert.Len(t, lines, 5, tail)
	assert.NotEmpty(t, strings.TrimSpace(h.ok(time.Minute, "logs", "-p", profile, "--node", worker, "--tail", "5")))
	r := h.run(time.Minute, "logs", "-p", profile, "--node", "ghost")
	assert.Equal(t, 2, r.code)
	assert.Contains(t, r.stderr, `node "ghost" not found in profile ci; its nodes are: ci, ci-m02`)

	// The node's /var/log: what the node agent writes there is its own
	// business; a file and a link put there by hand show the copy works.
	fakeLog := filepath.Join(dir, "var-log")
	podLog := filepath.Join("pods", "default_fake_uid", "c", "0.log")
	require.NoError(t, os.MkdirAll(filepath.Join(fakeLog, filepath.Dir(podLog)), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(fakeLog, podLog), []byte("a pod's line\n"), 0o644))
	require.NoError(t, os.MkdirAll(filepath.Join(fakeLog, "containers"), 0o755))
	require.NoError(t, os.Symlink("/var/log/"+podLog, filepath.Join(fakeLog, "containers", "fake_default_c-1.log")))
	docker(t, "cp", fakeLog+"/.", worker+":/var/log")

	// minik export logs of the running cluster.
	running := filepath.Join(dir, "running")
	h.ok(3*time.Minute, "export", "logs", running, "-p", profile)
	for _, f := range []string{
		"summary.txt", "minik/version.txt", "minik/profile.json", "nodes/states.txt",
		"nodes/" + profile + "/minik-node.log", "nodes/" + worker + "/minik-node.log",
		"kubernetes/pods.yaml", "kubernetes/events.yaml", "kubernetes/deployments.yaml", "kubernetes/node-conditions.txt",
		"docker/containers/" + profile + ".json", "docker/networks/minik-" + profile + ".json",
	} {
		assert.FileExists(t, filepath.Join(running, f))
	}
	assert.Contains(t, readFile(t, filepath.Join(running, "kubernetes", "pods.yaml")), "name: web-")
	// kubectl create deployment names the container after the image.
	webLogs, _ := filepath.Glob(filepath.Join(running, "pods", "default", "web-*", "minik-test-app.log"))
	assert.NotEmpty(t, webLogs, "the web pod's container log is exported")
	summary := readFile(t, filepath.Join(running, "summary.txt"))
	workerLogs := filepath.Join("nodes", worker, "var-log")
	assert.Equal(t, "a pod's line\n", readFile(t, filepath.Join(running, workerLogs, podLog)))
	assert.Contains(t, readFile(t, filepath.Join(running, workerLogs, "symlinks.txt")), "containers/fake_default_c-1.log -> /var/log/"+podLog+"\n")
	// A node with no /var/log (yet) is noted, not fatal.
	if _, err := os.Stat(filepath.Join(running, "nodes", profile, "var-log")); err != nil {
		assert.Contains(t, summary, "/var/log of node "+profile+": ")
	}
	assert.NotContains(t, summary, "everything from the apiserver")
	t.Logf("summary of the running cluster's export:\n%s", summary)

	// Stopped: the apiserver is down, the node logs are still there.
	h.ok(3*time.Minute, "stop", "-p", profile)
	stopped := filepath.Join(dir, "stopped")
	r = h.run(3*time.Minute, "export", "logs", stopped, "-p", profile)
	require.Equal(t, 0, r.code, r.stderr)
	assert.Contains(t, r.stderr, "Warning: ")
	summary = readFile(t, filepath.Join(stopped, "summary.txt"))
	assert.Contains(t, summary, "everything from the apiserver (objects, events, node conditions, pod logs): the apiserver at ")
	assert.NotEmpty(t, readFile(t, filepath.Join(stopped, "nodes", profile, "minik-node.log")))
	assert.NotEmpty(t, readFile(t, filepath.Join(stopped, "nodes", worker, "minik-node.log")))
	assert.NoFileExists(t, filepath.Join(stopped, "kubernetes", "pods.yaml"))
	assert.FileExists(t, filepath.Join(stopped, workerLogs, podLog), "a stopped node's files are copied too")

	// Refused: the folder is not empty.
	r = h.run(time.Minute, "export", "logs", stopped, "-p", profile)
	assert.Equal(t, 2, r.code)
	assert.Contains(t, r.stderr, "the folder is not empty; use --force")
}
