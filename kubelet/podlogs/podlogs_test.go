package podlogs

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var run = Run{Namespace: "default", Pod: "web-1", UID: "1234-abcd", Container: "app", Restart: 2, ID: "c0ffee"}

func TestLayout(t *testing.T) {
	s := New("/var/log", Options{})
	assert.Equal(t, "/var/log/pods/default_web-1_1234-abcd/app/2.log", s.Path(run))
	assert.Equal(t, "/var/log/containers/web-1_default_app-c0ffee.log", s.Link(run))
}

func TestStreamWritesCRILines(t *testing.T) {
	fixed := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
	tests := []struct {
		name         string
		lineBuffered bool
		writes       []string
		want         []string
	}{
		{name: "one record per write",
			writes: []string{"2026-12-02T09:00:00.000000001Z hello\n", "2026-12-02T09:00:01Z world\n"},
			want:   []string{"2026-12-02T09:00:00.000000001Z stdout F hello", "2026-12-02T09:00:01Z stdout F world"}},
		{name: "several records in one write",
			writes: []string{"2026-12-02T09:00:00Z a\n2026-12-02T09:00:00.5Z b\n"},
			want:   []string{"2026-12-02T09:00:00Z stdout F a", "2026-12-02T09:00:00.5Z stdout F b"}},
		{name: "a record the engine split is partial",
			writes: []string{"2026-12-02T09:00:00Z first half", "2026-12-02T09:00:00.1Z second half\n"},
			want:   []string{"2026-12-02T09:00:00Z stdout P first half", "2026-12-02T09:00:00.1Z stdout F second half"}},
		{name: "a TTY's stream waits for the line's end and drops its CR",
			lineBuffered: true,
			writes:       []string{"2026-12-02T09:00:00Z pro", "mpt$ ls\r\n"},
			want:         []string{"2026-12-02T09:00:00Z stdout F prompt$ ls"}},
		{name: "a record without a time gets the time it is written",
			writes: []string{"no time here\n"},
			want:   []string{"2026-12-02T10:00:00Z stdout F no time here"}},
		{name: "an empty line stays",
			writes: []string{"2026-12-02T09:00:00Z \n"},
			want:   []string{"2026-12-02T09:00:00Z stdout F "}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := New(t.TempDir(), Options{Now: func() time.Time { return fixed }})
			w, err := s.Open(run)
			require.NoError(t, err)
			out := w.Stream(Stdout, tt.lineBuffered)
			for _, p := range tt.writes {
				n, err := out.Write([]byte(p))
				require.NoError(t, err)
				assert.Equal(t, len(p), n)
			}
			require.NoError(t, w.Close())
			assert.Equal(t, tt.want, lines(t, s.Path(run)))
		})
	}
}

func TestOpenLinksAndAppends(t *testing.T) {
	s := New(t.TempDir(), Options{})
	w, err := s.Open(run)
	require.NoError(t, err)
	_, err = w.Stream(Stderr, false).Write([]byte("2026-12-02T09:00:00Z one\n"))
	require.NoError(t, err)
	require.NoError(t, w.Close())

	// An agent restart opens the run again: the file grows, the link stays.
	w, err = s.Open(run)
	require.NoError(t, err)
	_, err = w.Stream(Stdout, false).Write([]byte("2026-12-02T09:00:02.25Z two\n"))
	require.NoError(t, err)
	require.NoError(t, w.Close())

	target, err := os.Readlink(s.Link(run))
	require.NoError(t, err)
	assert.Equal(t, s.Path(run), target)
	assert.Equal(t, []string{"2026-12-02T09:00:00Z stderr F one", "2026-12-02T09:00:02.25Z stdout F two"}, lines(t, s.Path(run)))
	assert.Equal(t, time.Date(2026, 12, 2, 9, 0, 2, 250_000_000, time.UTC), s.LastTime(run))
	assert.True(t, s.LastTime(Run{Namespace: "x", Pod: "y", UID: "z", Container: "c"}).IsZero(), "no file, no time")
}

func TestRotation(t *testing.T) {
	now := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
	s := New(t.TempDir(), Options{MaxSize: 120, MaxFiles: 3, Now: func() time.Time { now = now.Add(time.Second); return now }})
	w, err := s.Open(run)
	require.NoError(t, err)
	out := w.Stream(Stdout, false)
	// Each line is 56 bytes: two fill a file.
	for i := range 9 {
		_, err := fmt.Fprintf(out, "2026-12-02T09:00:00Z %s\n", strings.Repeat(fmt.Sprint(i), 26))
		require.NoError(t, err)
	}
	require.NoError(t, w.Close())

	rotated, err := filepath.Glob(s.Path(run) + ".*")
	require.NoError(t, err)
	assert.Len(t, rotated, 2, "maxFiles 3: the live file and two rotated ones")
	assert.Equal(t, []string{"2026-12-02T09:00:00Z stdout F " + strings.Repeat("8", 26)}, lines(t, s.Path(run)))
	assert.Equal(t, []string{"2026-12-02T09:00:00Z stdout F " + strings.Repeat("6", 26), "2026-12-02T09:00:00Z stdout F " + strings.Repeat("7", 26)},
		lines(t, rotated[1]), "the newest rotated file holds the lines before the live file's")
}

func TestRemove(t *testing.T) {
	s := New(t.TempDir(), Options{})
	other := Run{Namespace: "kube-system", Pod: "dns", UID: "9999", Container: "dns", ID: "beef"}
	older := run
	older.Restart, older.ID = 1, "dead"
	for _, r := range []Run{run, older, other} {
		w, err := s.Open(r)
		require.NoError(t, err)
		require.NoError(t, w.Close())
	}

	require.NoError(t, s.RemoveRun(older))
	assert.NoFileExists(t, s.Path(older))
	assert.NoFileExists(t, s.Link(older))
	assert.FileExists(t, s.Path(run))

	require.NoError(t, s.RemovePod(run.Namespace, run.Pod, run.UID))
	assert.NoDirExists(t, s.PodDir(run.Namespace, run.Pod, run.UID))
	_, err := os.Lstat(s.Link(run))
	assert.ErrorIs(t, err, os.ErrNotExist)
	assert.FileExists(t, s.Link(other), "another pod's link stays")

	// A restart finds a pod deleted while the node was down.
	w, err := s.Open(run)
	require.NoError(t, err)
	require.NoError(t, w.Close())
	require.NoError(t, s.Prune(map[string]bool{other.UID: true}))
	assert.NoDirExists(t, s.PodDir(run.Namespace, run.Pod, run.UID))
	_, err = os.Lstat(s.Link(run))
	assert.ErrorIs(t, err, os.ErrNotExist)
	assert.FileExists(t, s.Path(other))
	assert.FileExists(t, s.Link(other))
}

func lines(t *testing.T, path string) []string {
	t.Helper()
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	return strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
}

func TestRead(t *testing.T) {
	s := New(t.TempDir(), Options{})
	w, err := s.Open(run)
	require.NoError(t, err)
	_, err = w.Stream(Stdout, false).Write([]byte("2026-12-02T09:00:00Z one\n2026-12-02T09:00:01Z a long "))
	require.NoError(t, err)
	_, err = w.Stream(Stderr, false).Write([]byte("2026-12-02T09:00:01.5Z line\n2026-12-02T09:00:02Z three\n"))
	require.NoError(t, err)
	require.NoError(t, w.Close())
	tests := []struct {
		name string
		o    ReadOptions
		want string
	}{
		{"all", ReadOptions{Tail: -1}, "one\na long line\nthree\n"},
		{"tail", ReadOptions{Tail: 1}, "three\n"},
		{"since", ReadOptions{Tail: -1, Since: time.Date(2026, 12, 2, 9, 0, 1, 0, time.UTC)}, "a long line\nthree\n"},
		{"timestamps", ReadOptions{Tail: 2, Timestamps: true}, "2026-12-02T09:00:01.5Z a long line\n2026-12-02T09:00:02Z three\n"},
	}
	for _, tt := range tests {
		var out strings.Builder
		require.NoError(t, s.Read(run, tt.o, &out), tt.name)
		assert.Equal(t, tt.want, out.String(), tt.name)
	}
	var out strings.Builder
	require.ErrorIs(t, s.Read(Run{Namespace: "x", Pod: "y", UID: "z", Container: "c"}, ReadOptions{Tail: -1}, &out), os.ErrNotExist)
}
