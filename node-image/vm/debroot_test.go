package vmimage

import (
	"archive/tar"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/blakesmith/ar"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/ulikunitz/xz"
)

// writeDebEntries writes a Debian package holding the tar entries given.
func writeDebEntries(t *testing.T, path string, entries []tar.Header, contents map[string]string) {
	t.Helper()
	var data bytes.Buffer
	xw, err := xz.NewWriter(&data)
	require.NoError(t, err)
	tw := tar.NewWriter(xw)
	for _, h := range entries {
		h.Size = int64(len(contents[h.Name]))
		require.NoError(t, tw.WriteHeader(&h))
		_, err := tw.Write([]byte(contents[h.Name]))
		require.NoError(t, err)
	}
	require.NoError(t, tw.Close())
	require.NoError(t, xw.Close())
	f, err := os.Create(path)
	require.NoError(t, err)
	defer f.Close()
	w := ar.NewWriter(f)
	require.NoError(t, w.WriteGlobalHeader())
	for _, m := range []struct {
		name string
		data []byte
	}{{"debian-binary", []byte("2.0\n")}, {"data.tar.xz", data.Bytes()}} {
		require.NoError(t, w.WriteHeader(&ar.Header{Name: m.name, Size: int64(len(m.data)), Mode: 0o644, ModTime: time.Unix(0, 0)}))
		_, err := w.Write(m.data)
		require.NoError(t, err)
	}
}

func TestUnpackDebs(t *testing.T) {
	dir := t.TempDir()
	libc := filepath.Join(dir, "libc6.deb")
	writeDebEntries(t, libc, []tar.Header{
		{Name: "./usr/lib/x86_64-linux-gnu/", Typeflag: tar.TypeDir, Mode: 0o755},
		{Name: "./usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2", Typeflag: tar.TypeReg, Mode: 0o755},
		{Name: "./usr/lib/x86_64-linux-gnu/libc.so.6", Typeflag: tar.TypeReg, Mode: 0o644},
		{Name: "./usr/lib64", Typeflag: tar.TypeDir, Mode: 0o755},
		// An absolute link, and a link through a folder that is a link.
		{Name: "./usr/lib64/ld-linux-x86-64.so.2", Typeflag: tar.TypeSymlink, Linkname: "/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2"},
		{Name: "./lib64", Typeflag: tar.TypeSymlink, Linkname: "usr/lib64"},
		{Name: "./lib/ld.so", Typeflag: tar.TypeSymlink, Linkname: "/lib64/ld-linux-x86-64.so.2"},
	}, map[string]string{"./usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2": "ld.so", "./usr/lib/x86_64-linux-gnu/libc.so.6": "libc"})
	seccomp := filepath.Join(dir, "libseccomp2.deb")
	writeDebEntries(t, seccomp, []tar.Header{
		{Name: "./usr/lib/x86_64-linux-gnu/libseccomp.so.2.5.4", Typeflag: tar.TypeReg, Mode: 0o644},
		// A relative link, and a chain of two.
		{Name: "./usr/lib/x86_64-linux-gnu/libseccomp.so.2.5", Typeflag: tar.TypeSymlink, Linkname: "libseccomp.so.2.5.4"},
		{Name: "./usr/lib/x86_64-linux-gnu/libseccomp.so.2", Typeflag: tar.TypeSymlink, Linkname: "libseccomp.so.2.5"},
	}, map[string]string{"./usr/lib/x86_64-linux-gnu/libseccomp.so.2.5.4": "seccomp"})

	root := filepath.Join(dir, "root")
	require.NoError(t, UnpackDebs([]string{libc, seccomp}, root))
	for p, want := range map[string]string{
		"usr/lib64/ld-linux-x86-64.so.2":           "ld.so",
		"lib/ld.so":                                "ld.so",
		"usr/lib/x86_64-linux-gnu/libseccomp.so.2": "seccomp",
	} {
		got, err := os.ReadFile(filepath.Join(root, p))
		require.NoError(t, err, p)
		assert.Equal(t, want, string(got), p)
	}

	bad := filepath.Join(dir, "bad.deb")
	writeDebEntries(t, bad, []tar.Header{{Name: "../escape", Typeflag: tar.TypeReg, Mode: 0o644}}, nil)
	assert.ErrorContains(t, UnpackDebs([]string{bad}, filepath.Join(dir, "root2")), "unsafe path")
}

// TestProgramIn copies a dynamically linked program of this machine with
// its interpreter and libraries into a root folder, as UnpackDebs would
// lay them out, and finds the same files there as on the host.
func TestProgramIn(t *testing.T) {
	program, err := exec.LookPath("env")
	require.NoError(t, err)
	host, err := HostProgram(program)
	require.NoError(t, err)
	require.Greater(t, len(host), 1, "env links libc dynamically on Debian")

	root := t.TempDir()
	for _, f := range host {
		data, err := os.ReadFile(f.Source)
		require.NoError(t, err)
		dst := filepath.Join(root, filepath.FromSlash(f.Path))
		require.NoError(t, os.MkdirAll(filepath.Dir(dst), 0o755))
		require.NoError(t, os.WriteFile(dst, data, 0o755))
	}
	in, err := ProgramIn(root, host[0].Path)
	require.NoError(t, err)
	paths := func(files []File) []string {
		var out []string
		for _, f := range files {
			out = append(out, f.Path)
		}
		sort.Strings(out)
		return out
	}
	assert.Equal(t, paths(host), paths(in))
	for _, f := range in {
		assert.Equal(t, filepath.Join(root, filepath.FromSlash(f.Path)), f.Source)
	}

	_, err = ProgramIn(t.TempDir(), host[0].Path)
	assert.Error(t, err, "a root without the program")
}

func TestDebUnpacked(t *testing.T) {
	cache := t.TempDir()
	const deb = "/debs/linux-image-6.1.0-57-cloud-amd64_6.1.192-3_amd64.deb"
	assert.False(t, DebUnpacked(deb, cache), "an empty cache")
	require.NoError(t, os.MkdirAll(filepath.Join(cache, "lib", "modules", "6.1.0-57-cloud-amd64"), 0o755))
	require.NoError(t, os.MkdirAll(filepath.Join(cache, "boot"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(cache, "boot", "vmlinuz-6.1.0-57-cloud-amd64"), []byte("kernel"), 0o644))
	assert.True(t, DebUnpacked(deb, cache))
	assert.False(t, DebUnpacked("/debs/linux-image-6.12.0-1-cloud-amd64_6.12.1-1_amd64.deb", cache), "another release")
}
