package logexport

import (
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestBundleSummaryListsCollectedAndMissing(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	b := NewBundle(dir)
	require.NoError(t, b.WriteFile(ctx, "nodes/dev/minik-node.log", []byte("log\n")))
	require.NoError(t, b.WriteFile(ctx, "minik/version.txt", []byte("v1\n")))
	b.Missing("everything from the apiserver", errors.New("connection refused"))
	b.WriteFrom(ctx, "pods/default/web/app.log", func(w io.Writer) error {
		_, _ = io.WriteString(w, "half")
		return errors.New("stream reset")
	})
	require.NoError(t, b.Finish(ctx, "minik export logs of profile dev"))

	summary, err := os.ReadFile(filepath.Join(dir, SummaryFile))
	require.NoError(t, err)
	assert.Equal(t, `minik export logs of profile dev

Collected (2 files):
  minik/version.txt
  nodes/dev/minik-node.log

Not collected (2):
  - everything from the apiserver: connection refused
  - pods/default/web/app.log: stream reset
`, string(summary))
	assert.NoFileExists(t, filepath.Join(dir, "pods", "default", "web", "app.log"), "a source that failed leaves no half file")
	assert.Equal(t, []string{"minik/version.txt", "nodes/dev/minik-node.log"}, b.Collected())
}

func TestBundleSummaryWhenEverythingWasCollected(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	b := NewBundle(dir)
	require.NoError(t, b.WriteFile(ctx, "a.txt", []byte("a")))
	require.NoError(t, b.Finish(ctx, "header"))
	summary, err := os.ReadFile(filepath.Join(dir, SummaryFile))
	require.NoError(t, err)
	assert.Contains(t, string(summary), "Not collected: nothing, everything was collected.\n")
}

func TestBundleRejectsPathsOutsideIt(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	b := NewBundle(filepath.Join(dir, "bundle"))
	for _, bad := range []string{"../escape", "/abs", "a/../../b", "", SummaryFile} {
		_, err := b.Create(ctx, bad)
		assert.Error(t, err, bad)
	}
	assert.NoFileExists(t, filepath.Join(dir, "escape"))
	assert.Len(t, b.MissingItems(), 5)
}

// fullDisk is a file system whose files take limit bytes in all, then
// fail as a full disk does.
type fullDisk struct {
	left int
}

type fullFile struct {
	d *fullDisk
	f *os.File
}

func (d *fullDisk) create(name string) (io.WriteCloser, error) {
	if d.left <= 0 {
		return nil, &os.PathError{Op: "open", Path: name, Err: syscall.ENOSPC}
	}
	f, err := createFile(name)
	if err != nil {
		return nil, err
	}
	return &fullFile{d: d, f: f.(*os.File)}, nil
}

func (f *fullFile) Write(p []byte) (int, error) {
	if len(p) > f.d.left {
		n, _ := f.f.Write(p[:f.d.left])
		f.d.left = 0
		return n, &os.PathError{Op: "write", Path: f.f.Name(), Err: syscall.ENOSPC}
	}
	f.d.left -= len(p)
	return f.f.Write(p)
}

func (f *fullFile) Close() error { return f.f.Close() }

func TestBundleOnAFullDiskKeepsWhatItWroteAndNamesWhatIsMissing(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	b := NewBundle(dir)
	b.create = (&fullDisk{left: 10}).create
	require.NoError(t, b.WriteFile(ctx, "small.txt", []byte("12345")))
	err := b.WriteFile(ctx, "nodes/dev/minik-node.log", []byte("a log longer than what is left"))
	require.ErrorIs(t, err, syscall.ENOSPC)
	_, err = b.Create(ctx, "pods/x.log")
	require.ErrorIs(t, err, syscall.ENOSPC)

	err = b.Finish(ctx, "header")
	var incomplete *IncompleteError
	require.ErrorAs(t, err, &incomplete)
	require.ErrorIs(t, err, syscall.ENOSPC)
	assert.Equal(t, []string{"nodes/dev/minik-node.log", "pods/x.log", SummaryFile}, incomplete.Unwritten)
	assert.Equal(t, 1, incomplete.Written)
	assert.Contains(t, err.Error(), "is incomplete")
	assert.Contains(t, err.Error(), "could not write nodes/dev/minik-node.log, pods/x.log, summary.txt; the 1 file(s) written are kept")
	assert.FileExists(t, filepath.Join(dir, "small.txt"), "the partial export is kept")
}

func TestBundleThatCouldWriteNothing(t *testing.T) {
	ctx := context.Background()
	b := NewBundle(t.TempDir())
	b.create = (&fullDisk{}).create
	_ = b.WriteFile(ctx, "a.txt", []byte("a"))
	err := b.Finish(ctx, "header")
	var incomplete *IncompleteError
	require.ErrorAs(t, err, &incomplete)
	assert.Zero(t, incomplete.Written)
	assert.True(t, strings.HasPrefix(err.Error(), "nothing could be written to "), err.Error())
}

// TestBundleOnATmpfsThatFillsUp fills a real, small file system: the
// errors are the kernel's, not a fake's. It needs root (mount).
func TestBundleOnATmpfsThatFillsUp(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mounting a tmpfs needs root")
	}
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs here: %v: %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("umount", dir).Run() })
	ctx := context.Background()
	b := NewBundle(dir)
	require.NoError(t, b.WriteFile(ctx, "minik/version.txt", []byte("v1\n")))
	err := b.WriteFile(ctx, "nodes/dev/minik-node.log", make([]byte, 256<<10))
	require.ErrorIs(t, err, syscall.ENOSPC)
	err = b.Finish(ctx, "header")
	var incomplete *IncompleteError
	require.ErrorAs(t, err, &incomplete)
	assert.Contains(t, incomplete.Unwritten, "nodes/dev/minik-node.log")
	assert.FileExists(t, filepath.Join(dir, "minik", "version.txt"))
}

func TestArchive(t *testing.T) {
	ctx := context.Background()
	src := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(src, "nodes", "dev"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(src, "nodes", "dev", "minik-node.log"), []byte("log"), 0o644))
	dest := filepath.Join(t.TempDir(), "out.tar.gz")
	require.NoError(t, Archive(ctx, src, dest, "out"))
	out, err := exec.Command("tar", "-tzf", dest).CombinedOutput()
	require.NoError(t, err, string(out))
	assert.Contains(t, string(out), "out/nodes/dev/minik-node.log")

	err = Archive(ctx, filepath.Join(src, "missing"), dest, "out")
	require.Error(t, err)
	assert.NoFileExists(t, dest, "a failed archive is removed")
}
