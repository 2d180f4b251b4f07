package process

import (
	"io"
	"os"
	"os/exec"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const zombieLeaderEnv = "MINIK_TEST_ZOMBIE_LEADER"

// Init functions run on the main thread: locked here, the main goroutine
// stays on it, so the helper below can end that thread alone.
func init() {
	if os.Getenv(zombieLeaderEnv) != "" {
		runtime.LockOSThread()
	}
}

func TestMain(m *testing.M) {
	if os.Getenv(zombieLeaderEnv) != "" {
		// The helper: another thread lives until stdin closes, while the
		// main thread exits on its own and leaves a zombie leader.
		go func() {
			_, _ = io.Copy(io.Discard, os.Stdin)
			os.Exit(0)
		}()
		time.Sleep(100 * time.Millisecond) // let the goroutine reach its own thread
		_, _, _ = syscall.RawSyscall(syscall.SYS_EXIT, 0, 0, 0)
	}
	os.Exit(m.Run())
}

// procState reads the one-letter state of pid.
func procState(t *testing.T, pid int) string {
	t.Helper()
	state, _, ok := procStat(pid)
	require.True(t, ok, "read /proc/%d/stat", pid)
	return state
}

// A stopped node must have closed its files: its main thread exiting first
// is not enough while the others still run.
func TestProcessMatchesZombieLeaderWithLiveThreads(t *testing.T) {
	self, err := os.Executable()
	require.NoError(t, err)
	cmd := exec.Command(self, "-test.run=^$", "minik-zombie-helper")
	cmd.Env = append(os.Environ(), zombieLeaderEnv+"=1")
	stdin, err := cmd.StdinPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	pid := cmd.Process.Pid
	match := []byte("minik-zombie-helper")

	assert.Eventually(t, func() bool { return procState(t, pid) == "Z" }, 10*time.Second, 10*time.Millisecond,
		"the helper's main thread exits")
	assert.True(t, threadsExiting(pid))
	assert.True(t, processMatches(pid, match), "its other threads still hold its files")

	require.NoError(t, stdin.Close())
	assert.Eventually(t, func() bool { return !threadsExiting(pid) }, 10*time.Second, 10*time.Millisecond,
		"the last thread exits")
	assert.Equal(t, "Z", procState(t, pid), "not reaped yet")
	assert.False(t, processMatches(pid, match), "a zombie with no threads left holds nothing")
}
