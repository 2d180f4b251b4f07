package background

import (
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestStartRunningStop(t *testing.T) {
	dir := t.TempDir()
	pidFile, logFile := filepath.Join(dir, "run", "pid"), filepath.Join(dir, "log")
	marker := "minik-background-test-" + filepath.Base(dir)
	_, ok := Running(pidFile, marker)
	assert.False(t, ok, "nothing started yet")

	// The marker is sh's $0, an argument of its own, while it sleeps.
	cmd := exec.Command("sh", "-c", "echo started; sleep 60; true", marker)
	require.NoError(t, Start(cmd, pidFile, logFile, marker))
	t.Cleanup(func() { _ = Stop(pidFile, marker, time.Second) })
	pid, ok := Running(pidFile, marker)
	require.True(t, ok)
	assert.Positive(t, pid)
	for _, other := range []string{"another-marker", marker[:len(marker)-1]} {
		_, ok = Running(pidFile, other)
		assert.False(t, ok, "a pid is the helper's only while one of its arguments is the marker: %s", other)
	}

	require.NoError(t, Stop(pidFile, marker, 5*time.Second))
	_, ok = Running(pidFile, marker)
	assert.False(t, ok)
	assert.NoFileExists(t, pidFile)
	require.NoError(t, Stop(pidFile, marker, time.Second), "stopping what is stopped")
	assert.FileExists(t, logFile)
}
