// Package integration starts real clusters with the built binaries and
// checks them with client-go and the built-in kubectl.
package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// binaries finds bin/minik and bin/minik-node: from the environment that
// `make test` sets, else from the repository's bin folder.
func binaries(t *testing.T) (minik, node string) {
	t.Helper()
	if testing.Short() {
		t.Skip("integration test: starts real clusters")
	}
	// go test runs a package's tests in its folder (and -trimpath would
	// hide this file's path from runtime.Caller).
	root := filepath.Join("..", "..")
	minik = os.Getenv("MINIK_BINARY")
	if minik == "" {
		minik = filepath.Join(root, "bin", "minik")
	}
	node = os.Getenv("MINIK_NODE_BINARY")
	if node == "" {
		node = filepath.Join(root, "bin", "minik-node")
	}
	for _, p := range []string{minik, node} {
		_, err := os.Stat(p)
		require.NoError(t, err, "integration tests need the built binaries: run `make build` (or `make test`)")
	}
	return minik, node
}

// harness runs the real minik binary against a private MINIK_HOME and KUBECONFIG.
type harness struct {
	t          *testing.T
	minik      string
	env        []string
	home       string
	kubeconfig string
	// wrap runs minik under another command (such as `ip netns exec NS`).
	wrap []string
}

// command is minik with args, under h.wrap.
func (h *harness) command(ctx context.Context, args ...string) *exec.Cmd {
	argv := append(append(append([]string{}, h.wrap...), h.minik), args...)
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = h.env
	return cmd
}

func newHarness(t *testing.T) *harness {
	minik, node := binaries(t)
	dir := t.TempDir()
	h := &harness{
		t:          t,
		minik:      minik,
		home:       filepath.Join(dir, "minik-home"),
		kubeconfig: filepath.Join(dir, "kube", "config"),
	}
	h.env = append(os.Environ(),
		"MINIK_HOME="+h.home,
		"KUBECONFIG="+h.kubeconfig,
		"MINIK_NODE_BINARY="+node,
		"HOME="+dir,
		// These tests are of the process driver; docker's set it themselves.
		"MINIK_DRIVER=process",
	)
	// Whatever happens, no node outlives the test.
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		// Only this test's MINIK_HOME: never the user's clusters.
		_ = h.command(ctx, "delete", "--all").Run()
		for _, pid := range h.nodePIDs() {
			p, err := os.FindProcess(pid)
			if err == nil {
				_ = p.Kill()
			}
		}
	})
	return h
}

type result struct {
	code   int
	stdout string
	stderr string
}

func (h *harness) run(timeout time.Duration, args ...string) result {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return runCmd(h.t, h.command(ctx, args...))
}

// runCmd runs cmd to its end and returns its exit code and output; a
// command that cannot run at all fails the test.
func runCmd(t *testing.T, cmd *exec.Cmd) result {
	t.Helper()
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if err != nil {
		var exit *exec.ExitError
		require.ErrorAs(t, err, &exit, "run %v: %v\nstderr: %s", cmd.Args, err, errb.String())
		code = exit.ExitCode()
	}
	return result{code: code, stdout: out.String(), stderr: errb.String()}
}

// interruptOnceNodesRun starts cmd, a `minik start -o json`, and sends it
// Ctrl-C once its nodes run (after atNodes, when not nil); the start must
// fail. It returns what the start printed on stderr.
func interruptOnceNodesRun(t *testing.T, cmd *exec.Cmd, atNodes func()) string {
	t.Helper()
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	require.NoError(t, cmd.Start())
	waitFor(t, stdout, `"step":"start nodes","status":"done"`)
	if atNodes != nil {
		atNodes()
	}
	require.NoError(t, cmd.Process.Signal(os.Interrupt))
	go func() { _, _ = io.Copy(io.Discard, stdout) }()
	require.Error(t, cmd.Wait(), "an interrupted start fails")
	return stderr.String()
}

// ok runs minik and requires success.
func (h *harness) ok(timeout time.Duration, args ...string) string {
	h.t.Helper()
	r := h.run(timeout, args...)
	require.Equal(h.t, 0, r.code, "minik %v failed:\nstdout: %s\nstderr: %s", args, r.stdout, r.stderr)
	return r.stdout
}

// fails runs minik, requires a non-zero exit and returns stderr.
func (h *harness) fails(args ...string) string {
	h.t.Helper()
	r := h.run(time.Minute, args...)
	require.NotEqual(h.t, 0, r.code, "minik %v should fail; stdout: %s", args, r.stdout)
	return r.stderr
}

// nodePIDs are the minik-node processes that belong to this harness: one
// per control plane, one node host for the workers of each cluster.
func (h *harness) nodePIDs() []int {
	entries, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		stat, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if i := bytes.LastIndexByte(stat, ')'); i > 0 && i+2 < len(stat) && stat[i+2] == 'Z' {
			continue
		}
		if bytes.Contains(cmdline, []byte(h.home)) && (bytes.Contains(cmdline, []byte("--config")) || bytes.Contains(cmdline, []byte("--host-dir"))) {
			pids = append(pids, pid)
		}
	}
	return pids
}

type status struct {
	Name       string `json:"name"`
	Driver     string `json:"driver"`
	State      string `json:"state"`
	APIServer  string `json:"apiServer"`
	Kubeconfig string `json:"kubeconfig"`
	Context    string `json:"context"`
	Nodes      []struct {
		Name  string `json:"name"`
		Role  string `json:"role"`
		State string `json:"state"`
		IP    string `json:"ip"`
	} `json:"nodes"`
	Certificates *struct {
		NotAfter       time.Time `json:"notAfter"`
		RenewedAtStart bool      `json:"renewedAtStart"`
	} `json:"certificates"`
}

func (h *harness) status(profile string) status {
	h.t.Helper()
	var st status
	out := h.ok(time.Minute, "status", "-p", profile, "-o", "json")
	require.NoError(h.t, json.Unmarshal([]byte(out), &st), out)
	return st
}

// startJSON runs `minik start -o json` and returns its step events and status.
func (h *harness) startJSON(args ...string) ([]map[string]any, status) {
	h.t.Helper()
	out := h.ok(6*time.Minute, append([]string{"start", "-o", "json"}, args...)...)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	require.NotEmpty(h.t, lines)
	var events []map[string]any
	for _, l := range lines[:len(lines)-1] {
		var ev map[string]any
		require.NoError(h.t, json.Unmarshal([]byte(l), &ev), l)
		events = append(events, ev)
	}
	var st status
	require.NoError(h.t, json.Unmarshal([]byte(lines[len(lines)-1]), &st), lines[len(lines)-1])
	return events, st
}
