package vmimage

import (
	"os"
	"path"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestHostProgram(t *testing.T) {
	const dynamic = "/bin/ls"
	if _, err := os.Stat(dynamic); err != nil {
		t.Skip("no " + dynamic + " on this machine")
	}
	files, err := HostProgram(dynamic)
	require.NoError(t, err)
	require.NotEmpty(t, files)
	assert.Equal(t, dynamic, files[0].Path, "the program keeps its path")
	names := map[string]bool{}
	paths := map[string]bool{}
	for _, f := range files {
		assert.False(t, paths[f.Path], "%s twice", f.Path)
		paths[f.Path] = true
		names[path.Base(f.Path)] = true
		_, err := os.Stat(f.Source)
		assert.NoError(t, err)
	}
	assert.True(t, names["libc.so.6"], "libc is among %v", files)
	assert.True(t, names["ld-linux-x86-64.so.2"], "the interpreter is among %v", files)

	// A static program (this test, built without cgo as minik is) is itself.
	self, err := os.Executable()
	require.NoError(t, err)
	files, err = HostProgram(self)
	require.NoError(t, err)
	if len(files) == 1 {
		assert.Equal(t, self, files[0].Source)
	}

	_, err = HostProgram("/no/such/program")
	assert.Error(t, err)
}
