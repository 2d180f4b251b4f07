package drivers

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestStreamLogFileTail(t *testing.T) {
	path := filepath.Join(t.TempDir(), "node.log")
	require.NoError(t, os.WriteFile(path, []byte("one\ntwo\nthree\nfour\n"), 0o600))
	for _, tc := range []struct {
		name string
		tail int
		want string
	}{
		{"all", 0, "one\ntwo\nthree\nfour\n"},
		{"negative is all", -1, "one\ntwo\nthree\nfour\n"},
		{"last two", 2, "three\nfour\n"},
		{"last one", 1, "four\n"},
		{"more than there are", 10, "one\ntwo\nthree\nfour\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			require.NoError(t, StreamLogFile(context.Background(), path, NodeLogOptions{Tail: tc.tail}, &out))
			require.Equal(t, tc.want, out.String())
		})
	}
}

func TestStreamLogFileTailWithoutFinalNewlineAndLargeFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "node.log")
	// More than one read block, and a last line still being written.
	big := strings.Repeat("x", 100<<10) + "\nlast-but-one\nlast"
	require.NoError(t, os.WriteFile(path, []byte(big), 0o600))
	var out bytes.Buffer
	require.NoError(t, StreamLogFile(context.Background(), path, NodeLogOptions{Tail: 2}, &out))
	require.Equal(t, "last-but-one\nlast", out.String())
}

func TestStreamLogFileMissing(t *testing.T) {
	err := StreamLogFile(context.Background(), filepath.Join(t.TempDir(), "none.log"), NodeLogOptions{}, &bytes.Buffer{})
	require.ErrorIs(t, err, os.ErrNotExist)
}

// syncBuffer is a bytes.Buffer safe to read while the stream writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestStreamLogFileFollow(t *testing.T) {
	path := filepath.Join(t.TempDir(), "node.log")
	require.NoError(t, os.WriteFile(path, []byte("old\nrecent\n"), 0o600))
	ctx, cancel := context.WithCancel(context.Background())
	var out syncBuffer
	done := make(chan error, 1)
	go func() { done <- StreamLogFile(ctx, path, NodeLogOptions{Follow: true, Tail: 1}, &out) }()

	require.Eventually(t, func() bool { return out.String() == "recent\n" }, 5*time.Second, 10*time.Millisecond)
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	require.NoError(t, err)
	_, err = f.WriteString("appended\n")
	require.NoError(t, err)
	require.NoError(t, f.Close())
	require.Eventually(t, func() bool { return out.String() == "recent\nappended\n" }, 5*time.Second, 10*time.Millisecond)

	// A rotated (truncated) log is read again from its start.
	require.NoError(t, os.WriteFile(path, []byte("new\n"), 0o600))
	require.Eventually(t, func() bool { return out.String() == "recent\nappended\nnew\n" }, 5*time.Second, 10*time.Millisecond)

	cancel()
	select {
	case err := <-done:
		require.NoError(t, err, "following ends without error when ctx is done")
	case <-time.After(5 * time.Second):
		t.Fatal("follow did not stop when ctx was done")
	}
}
