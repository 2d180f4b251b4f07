package hyperv

import (
	"bytes"
	"context"
	"debug/pe"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	diskfs "github.com/diskfs/go-diskfs"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"minik.dev/minik/drivers/vmnode"
	"minik.dev/minik/node-image/vm/efidisk"
	"minik.dev/minik/node-image/vm/guest"
)

// TestBootDiskWriter writes a node's disk with the systemd stub when this
// machine has one (Debian's systemd-boot-efi) and reads the node's command
// line and initramfs back out of the unified kernel image on the disk's ESP.
func TestBootDiskWriter(t *testing.T) {
	const stub = "/usr/lib/systemd/boot/efi/linuxx64.efi.stub"
	if _, err := os.Stat(stub); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("no systemd EFI stub: .ci/run installs Debian's systemd-boot-efi")
		}
		t.Skip("no systemd EFI stub (Debian's systemd-boot-efi)")
	}
	files := t.TempDir()
	kernel, base := filepath.Join(files, "vmlinuz"), filepath.Join(files, "initramfs.cpio")
	require.NoError(t, os.WriteFile(kernel, []byte("kernel"), 0o644))
	require.NoError(t, os.WriteFile(base, []byte("shared-initramfs"), 0o644))
	profile := t.TempDir()
	n := node
	n.ProfileDir, n.Dir, n.ConfigPath = profile, filepath.Join(profile, "nodes", "dev-m02"), filepath.Join(profile, "nodes", "dev-m02", "config.json")
	require.NoError(t, os.MkdirAll(filepath.Join(n.Dir, vmDirName), 0o700))
	require.NoError(t, os.WriteFile(n.ConfigPath, []byte("{}"), 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(n.Dir, vmDirName, "boot.vhdx"), []byte("old disk"), 0o600))

	dst := filepath.Join(n.Dir, vmDirName, "boot.vhd")
	write := BootDiskWriter(vmnode.BootImage{Stub: stub, Kernel: kernel, Initramfs: base})
	require.NoError(t, write(context.Background(), BootDiskRequest{Node: n, Path: dst}))
	fi, err := os.Stat(dst)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm(), "the disk holds the profile's keys")

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
	section := func(name string) string {
		sec := img.Section(name)
		require.NotNil(t, sec, name)
		data, err := sec.Data()
		require.NoError(t, err)
		return string(data[:sec.VirtualSize])
	}
	cmdline := strings.TrimSuffix(section(".cmdline"), "\x00")
	nw, ok, err := guest.ParseCmdline(cmdline)
	require.NoError(t, err)
	require.True(t, ok)
	assert.Equal(t, guest.Network{Address: netip.MustParsePrefix("172.30.0.3/16"), Gateway: netip.MustParseAddr("172.30.0.1"), Hostname: "dev-m02", Bridge: vmnode.PodBridge}, nw)
	assert.Equal(t, "/minik/nodes/dev-m02/config.json", guest.CmdlineValue(cmdline, "minik.config"))
	assert.Equal(t, "/dev/sdb", guest.CmdlineValue(cmdline, "minik.disk"))
	initrd := section(".initrd")
	assert.True(t, strings.HasPrefix(initrd, "shared-initramfs"), "the shared initramfs first")
	assert.Contains(t, initrd, "minik/nodes/dev-m02/config.json", "then the profile as the node sees it")
	assert.NotContains(t, initrd, "boot.vhdx", "without the node's VM files")
	assert.Equal(t, "kernel", section(".linux"))
}
