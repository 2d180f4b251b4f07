package vmimage

import (
	"archive/tar"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// writeDeb writes a Debian package holding files (path -> content).
func writeDeb(t *testing.T, path string, files map[string]string) {
	t.Helper()
	var entries []tar.Header
	contents := map[string]string{}
	for name, content := range files {
		entries = append(entries, tar.Header{Name: "./" + name, Mode: 0o644, Typeflag: tar.TypeReg})
		contents["./"+name] = content
	}
	writeDebEntries(t, path, entries, contents)
}

func TestFindEFIStub(t *testing.T) {
	dir := t.TempDir()
	deb := filepath.Join(dir, "systemd-boot-efi.deb")
	writeDeb(t, deb, map[string]string{
		"usr/lib/systemd/boot/efi/systemd-bootx64.efi": "boot",
		"usr/lib/systemd/boot/efi/linuxx64.efi.stub":   "MZ stub",
	})
	cache := filepath.Join(dir, "cache")
	p, err := FindEFIStub(deb, cache, "")
	require.NoError(t, err)
	data, err := os.ReadFile(p)
	require.NoError(t, err)
	assert.Equal(t, "MZ stub", string(data))

	again, err := FindEFIStub("", cache, "")
	require.NoError(t, err)
	assert.Equal(t, p, again, "found again in the cache, offline")

	host := filepath.Join(dir, "host.stub")
	require.NoError(t, os.WriteFile(host, []byte("MZ host"), 0o644))
	got, err := FindEFIStub("", filepath.Join(dir, "empty"), host)
	require.NoError(t, err)
	assert.Equal(t, host, got)
	got, err = FindEFIStub(host, cache, "")
	require.NoError(t, err)
	assert.Equal(t, host, got)

	_, err = FindEFIStub("", filepath.Join(dir, "empty"), filepath.Join(dir, "none"))
	require.ErrorIs(t, err, ErrNoEFIStub)
	assert.Contains(t, err.Error(), "apt-get download systemd-boot-efi")

	other := filepath.Join(dir, "other.deb")
	writeDeb(t, other, map[string]string{"usr/share/doc/x": "x"})
	_, err = FindEFIStub(other, filepath.Join(dir, "c2"), "")
	require.ErrorContains(t, err, "has no /usr/lib/systemd/boot/efi/linuxx64.efi.stub")
	_, err = FindEFIStub(filepath.Join(dir, "missing.stub"), cache, "")
	require.ErrorIs(t, err, os.ErrNotExist)
}
