package guest

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	diskfs "github.com/diskfs/go-diskfs"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestFormatIfBlank(t *testing.T) {
	disk := filepath.Join(t.TempDir(), "data.img")
	f, err := os.Create(disk)
	require.NoError(t, err)
	require.NoError(t, f.Truncate(1<<30))
	require.NoError(t, f.Close())

	formatted, err := FormatIfBlank(disk)
	require.NoError(t, err)
	assert.True(t, formatted, "a blank disk is formatted")

	d, err := diskfs.Open(disk)
	require.NoError(t, err)
	fs, err := d.GetFilesystem(0)
	require.NoError(t, err, "the disk holds a filesystem go-diskfs reads back")
	assert.Equal(t, DataLabel, fs.Label())
	require.NoError(t, d.Close())
	if fsck, err := exec.LookPath("e2fsck"); err == nil {
		out, err := exec.Command(fsck, "-fn", disk).CombinedOutput()
		assert.NoError(t, err, "e2fsck finds the filesystem clean:\n%s", out)
	}

	formatted, err = FormatIfBlank(disk)
	require.NoError(t, err)
	assert.False(t, formatted, "a disk with a filesystem is left alone")

	_, err = FormatIfBlank(filepath.Join(t.TempDir(), "absent"))
	assert.Error(t, err)
}
