package filelock

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestTryLockExcludes(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "x.lock")
	l1, err := TryLock(path)
	require.NoError(t, err)

	_, err = TryLock(path)
	require.ErrorIs(t, err, ErrLocked)

	require.NoError(t, l1.Unlock())
	l2, err := TryLock(path)
	require.NoError(t, err)
	require.NoError(t, l2.Unlock())
}

func TestAcquireWaitsForRelease(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.lock")
	l1, err := TryLock(path)
	require.NoError(t, err)
	go func() {
		time.Sleep(100 * time.Millisecond)
		_ = l1.Unlock()
	}()
	l2, err := Acquire(path, 5*time.Second)
	require.NoError(t, err)
	require.NoError(t, l2.Unlock())

	l3, err := TryLock(path)
	require.NoError(t, err)
	defer l3.Unlock()
	_, err = Acquire(path, 50*time.Millisecond)
	require.ErrorIs(t, err, ErrLocked)
}
