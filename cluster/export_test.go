package cluster

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestNodeLogOptionsValidate(t *testing.T) {
	for _, tc := range []struct {
		tail int
		ok   bool
	}{{-1, true}, {0, true}, {5, true}, {-2, false}} {
		err := NodeLogOptions{Tail: tc.tail}.Validate()
		if tc.ok {
			assert.NoError(t, err, tc.tail)
			continue
		}
		var invalid *InvalidOptionError
		require.ErrorAs(t, err, &invalid, tc.tail)
		assert.Equal(t, "Tail", invalid.Field)
	}
}

func TestExportLogsOptionsValidate(t *testing.T) {
	root := t.TempDir()
	full := filepath.Join(root, "full")
	require.NoError(t, os.MkdirAll(full, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(full, "x"), nil, 0o644))
	empty := filepath.Join(root, "empty")
	require.NoError(t, os.MkdirAll(empty, 0o755))
	file := filepath.Join(root, "file")
	require.NoError(t, os.WriteFile(file, nil, 0o644))
	archive := filepath.Join(root, "a.tar.gz")
	require.NoError(t, os.WriteFile(archive, nil, 0o644))

	cases := []struct {
		name   string
		o      ExportLogsOptions
		reason string // "" when valid
	}{
		{"new folder", ExportLogsOptions{Path: filepath.Join(root, "new")}, ""},
		{"empty folder", ExportLogsOptions{Path: empty}, ""},
		{"folder not empty", ExportLogsOptions{Path: full}, "the folder is not empty; use --force to write into it"},
		{"folder not empty, forced", ExportLogsOptions{Path: full, Force: true}, ""},
		{"a file", ExportLogsOptions{Path: file}, "it is a file, not a folder"},
		{"relative", ExportLogsOptions{Path: "out"}, "use an absolute path"},
		{"existing archive", ExportLogsOptions{Path: archive}, "the file exists; use --force to replace it"},
		{"existing archive, forced", ExportLogsOptions{Path: archive, Force: true}, ""},
		{"--tar next to a folder is fine", ExportLogsOptions{Path: full, Tar: true}, ""},
		{"--tar onto an archive", ExportLogsOptions{Path: filepath.Join(root, "a"), Tar: true}, "the file exists; use --force to replace it"},
		{"archive name of a folder", ExportLogsOptions{Path: filepath.Join(root, "d.tar.gz")}, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.o.Validate()
			if tc.reason == "" {
				require.NoError(t, err)
				return
			}
			var invalid *InvalidOptionError
			require.ErrorAs(t, err, &invalid)
			assert.Equal(t, "Path", invalid.Field)
			assert.Equal(t, tc.reason, invalid.Reason)
		})
	}
}

func TestDefaultExportName(t *testing.T) {
	at := time.Date(2026, 1, 2, 15, 4, 5, 0, time.FixedZone("x", 3600))
	assert.Equal(t, "minik-logs-dev-20260102-140405", DefaultExportName("dev", at))
}
