package hyperv

import (
	"bytes"
	"context"
	"debug/pe"
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	diskfs "github.com/diskfs/go-diskfs"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"minik.dev/minik/node-image/vm/efidisk"
	"minik.dev/minik/node-image/vm/guest"
)

// TestBootDiskWriter writes a node's disk with the systemd stub when this
// machine has one (Debian's systemd-boot-efi) and reads the node's command
// line back out of the unified kernel image on the disk's ESP.
func TestBootDiskWriter(t *testing.T) {
	stub, err := os.ReadFile("/usr/lib/systemd/boot/efi/linuxx64.efi.stub")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("no systemd EFI stub: .ci/run installs Debian's systemd-boot-efi")
		}
		t.Skip("no systemd EFI stub (Debian's systemd-boot-efi)")
	}
	dst := filepath.Join(t.TempDir(), "boot.vhd")
	nw := guest.Network{Address: netip.MustParsePrefix("172.30.0.3/16"), Gateway: netip.MustParseAddr("172.30.0.1"), Hostname: "dev-m02"}
	write := BootDiskWriter(BootImage{Stub: stub, Kernel: []byte("kernel"), Initrd: []byte("initrd"), Cmdline: "console=ttyS0 panic=-1"})
	require.NoError(t, write(context.Background(), BootDiskRequest{Node: node, Network: nw, Path: dst}))

	d, err := diskfs.Open(dst, diskfs.WithOpenMode(diskfs.ReadOnly))
	require.NoError(t, err)
	defer d.Close()
	fs, err := d.GetFilesystem(1)
	require.NoError(t, err)
	f, err := fs.OpenFile(efidisk.BootPath, os.O_RDONLY)
	require.NoError(t, err)
	var uki bytes.Buffer
	_, err = uki.ReadFrom(f)
	require.NoError(t, err)
	img, err := pe.NewFile(bytes.NewReader(uki.Bytes()))
	require.NoError(t, err)
	sec := img.Section(".cmdline")
	require.NotNil(t, sec)
	data, err := sec.Data()
	require.NoError(t, err)
	assert.Equal(t, "console=ttyS0 panic=-1 minik.ip=172.30.0.3/16 minik.gateway=172.30.0.1 minik.hostname=dev-m02\x00", string(data[:sec.VirtualSize]))
}
