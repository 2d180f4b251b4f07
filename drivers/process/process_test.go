package process

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"minik.dev/minik/drivers"
)

// fakeNodeBinary is a stand-in minik-node for the driver's own mechanics:
// a shell that keeps its arguments (so /proc shows the config path) and
// runs until signalled.
func fakeNodeBinary(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "minik-node")
	require.NoError(t, os.WriteFile(p, []byte("#!/bin/sh\necho fake node \"$@\"\nwhile :; do sleep 0.1; done\n"), 0o755))
	return p
}

func TestControlPlaneNodeLifecycle(t *testing.T) {
	if _, err := os.Stat("/proc/self/cmdline"); err != nil {
		t.Skip("needs /proc")
	}
	bin := fakeNodeBinary(t)
	d := New(func() (string, error) { return bin, nil })
	dir := t.TempDir()
	n := drivers.Node{Cluster: "c", Name: "c", Role: "control-plane", Dir: filepath.Join(dir, "nodes", "c"), ConfigPath: filepath.Join(dir, "nodes", "c", "config.json")}
	ctx := context.Background()
	t.Cleanup(func() { _ = d.DeleteNode(ctx, n) })

	st, err := d.NodeState(ctx, n)
	require.NoError(t, err)
	assert.Equal(t, drivers.StateStopped, st)

	require.NoError(t, d.StartNode(ctx, n))
	pid, ok := d.PID(n)
	require.True(t, ok)
	st, _ = d.NodeState(ctx, n)
	assert.Equal(t, drivers.StateRunning, st)

	require.Eventually(t, func() bool {
		log, _ := os.ReadFile(d.LogPath(n))
		return strings.Contains(string(log), "fake node --config "+n.ConfigPath)
	}, 5*time.Second, 10*time.Millisecond, "the node's output goes to its log")

	require.NoError(t, d.StartNode(ctx, n), "starting a running node is a no-op")
	again, _ := d.PID(n)
	assert.Equal(t, pid, again)

	require.NoError(t, d.StopNode(ctx, n))
	st, _ = d.NodeState(ctx, n)
	assert.Equal(t, drivers.StateStopped, st)
	require.NoError(t, d.StopNode(ctx, n), "stopping a stopped node is a no-op")

	require.NoError(t, d.DeleteNode(ctx, n))
	_, err = os.Stat(n.Dir)
	assert.ErrorIs(t, err, os.ErrNotExist)
}

func TestTailNodeLog(t *testing.T) {
	d := New(nil)
	dir := t.TempDir()
	cp := drivers.Node{Cluster: "c", Name: "c", Role: "control-plane", Dir: filepath.Join(dir, "nodes", "c")}
	worker := drivers.Node{Cluster: "c", Name: "c-m02", Role: "worker", Dir: filepath.Join(dir, "nodes", "c-m02")}
	assert.Equal(t, filepath.Join(dir, "nodes", "c", "node.log"), d.LogPath(cp))
	assert.Equal(t, filepath.Join(dir, "nodes", ".host", "node.log"), d.LogPath(worker), "workers log to their shared node host's file")

	require.NoError(t, os.MkdirAll(cp.Dir, 0o700))
	require.NoError(t, os.WriteFile(d.LogPath(cp), []byte("one\ntwo\nthree\n"), 0o600))
	assert.Equal(t, "last lines of "+d.LogPath(cp)+":\n  two\n  three", d.TailNodeLog(context.Background(), cp, 2))

	missing := d.TailNodeLog(context.Background(), worker, 2)
	assert.True(t, strings.HasPrefix(missing, "last lines of "+d.LogPath(worker)+":\n  (no log: "), missing)
}

func TestReusedPIDIsNotTheNode(t *testing.T) {
	if _, err := os.Stat("/proc/self/cmdline"); err != nil {
		t.Skip("needs /proc")
	}
	d := New(func() (string, error) { return "", nil })
	dir := t.TempDir()
	n := drivers.Node{Cluster: "c", Name: "c", Role: "control-plane", Dir: dir, ConfigPath: filepath.Join(dir, "config.json")}
	// A live process that is not this node: the test itself.
	require.NoError(t, os.WriteFile(filepath.Join(dir, "node.pid"), []byte(strconv.Itoa(os.Getpid())), 0o600))
	st, err := d.NodeState(context.Background(), n)
	require.NoError(t, err)
	assert.Equal(t, drivers.StateStopped, st)
}

func TestHealthNamesTheMissingBinary(t *testing.T) {
	d := New(drivers.FindNodeBinary)
	t.Setenv(drivers.NodeBinaryEnv, filepath.Join(t.TempDir(), "absent"))
	err := d.Health(context.Background())
	var he *drivers.HealthError
	require.ErrorAs(t, err, &he)
	assert.Contains(t, err.Error(), drivers.NodeBinaryEnv)
}

func TestAllocateIP(t *testing.T) {
	d := New(nil)
	ip, err := d.AllocateIP(map[string]bool{})
	require.NoError(t, err)
	taken := map[string]bool{ip: true}
	next, err := d.AllocateIP(taken)
	require.NoError(t, err)
	assert.NotEqual(t, ip, next)
}

func TestArgsContain(t *testing.T) {
	cmdline := []byte("/bin/minik-node\x00--config\x00/a/config.json\x00")
	assert.True(t, argsContain(cmdline, []byte("/a/config.json")))
	assert.False(t, argsContain(cmdline, []byte("/a/config")))
}

// lockedBuffer is written by a following stream while the test reads it.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func TestStreamNodeLogFollowsTheNodesLogFile(t *testing.T) {
	d := New(nil)
	dir := t.TempDir()
	worker := drivers.Node{Cluster: "c", Name: "c-m02", Role: "worker", Dir: filepath.Join(dir, "nodes", "c-m02")}
	var none strings.Builder
	require.ErrorIs(t, d.StreamNodeLog(context.Background(), worker, drivers.NodeLogOptions{}, &none), os.ErrNotExist, "no log yet")

	require.NoError(t, os.MkdirAll(filepath.Dir(d.LogPath(worker)), 0o700))
	require.NoError(t, os.WriteFile(d.LogPath(worker), []byte("old\nnew\n"), 0o600))
	ctx, cancel := context.WithCancel(context.Background())
	var out lockedBuffer
	done := make(chan error, 1)
	go func() { done <- d.StreamNodeLog(ctx, worker, drivers.NodeLogOptions{Follow: true, Tail: 1}, &out) }()
	require.Eventually(t, func() bool { return out.String() == "new\n" }, 5*time.Second, 10*time.Millisecond)

	f, err := os.OpenFile(d.LogPath(worker), os.O_APPEND|os.O_WRONLY, 0)
	require.NoError(t, err)
	_, err = f.WriteString("appended by the node host\n")
	require.NoError(t, err)
	require.NoError(t, f.Close())
	require.Eventually(t, func() bool { return out.String() == "new\nappended by the node host\n" }, 5*time.Second, 10*time.Millisecond)

	cancel()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(5 * time.Second):
		t.Fatal("following did not stop with its context")
	}
}
