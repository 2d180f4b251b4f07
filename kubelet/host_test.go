package kubelet

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"minik.dev/minik/nodeconfig"
)

// A node whose config cannot be loaded is not registered, and the host
// still reconciles and stops promptly.
func TestHostSkipsBadNodesAndStops(t *testing.T) {
	dir := t.TempDir()
	desired := filepath.Join(dir, nodeconfig.HostDesiredDir)
	require.NoError(t, os.MkdirAll(desired, 0o700))
	require.NoError(t, os.WriteFile(filepath.Join(desired, "w1"), []byte(filepath.Join(dir, "missing.json")), 0o600))

	ctx, cancel := context.WithCancel(context.Background())
	reload := make(chan os.Signal, 1)
	done := make(chan error, 1)
	go func() { done <- RunHost(ctx, dir, reload) }()

	require.Eventually(t, func() bool {
		_, err := os.Stat(filepath.Join(dir, nodeconfig.HostReadyFile))
		return err == nil
	}, 5*time.Second, 10*time.Millisecond, "the host says when it handles reloads")
	_, err := os.Stat(filepath.Join(dir, nodeconfig.HostRunningDir, "w1"))
	assert.ErrorIs(t, err, os.ErrNotExist, "a node that cannot start is not marked running")

	require.NoError(t, os.Remove(filepath.Join(desired, "w1")))
	reload <- os.Interrupt
	cancel()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(5 * time.Second):
		t.Fatal("the host did not stop")
	}
}
