package efidisk

import (
	"bytes"
	"context"
	"debug/pe"
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"
	"time"

	diskfs "github.com/diskfs/go-diskfs"
	"github.com/diskfs/go-diskfs/filesystem"
	"github.com/diskfs/go-diskfs/partition/gpt"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fakeStub is a minimal PE32+ x86-64 image with one .text section and
// room in its headers for more, shaped like systemd's stub.
func fakeStub(t *testing.T, sections ...string) []byte {
	t.Helper()
	if len(sections) == 0 {
		sections = []string{".text"}
	}
	const peOff, optSize, sizeOfHeaders, align = 0x80, 240, 0x400, 0x200
	b := make([]byte, sizeOfHeaders)
	copy(b, "MZ")
	binary.LittleEndian.PutUint32(b[0x3c:], peOff)
	copy(b[peOff:], "PE\x00\x00")
	coff := b[peOff+4:]
	binary.LittleEndian.PutUint16(coff[0:], pe.IMAGE_FILE_MACHINE_AMD64)
	binary.LittleEndian.PutUint16(coff[2:], uint16(len(sections)))
	binary.LittleEndian.PutUint16(coff[16:], optSize)
	binary.LittleEndian.PutUint16(coff[18:], pe.IMAGE_FILE_EXECUTABLE_IMAGE)
	opt := b[peOff+24:]
	binary.LittleEndian.PutUint16(opt[0:], 0x20b) // PE32+
	binary.LittleEndian.PutUint32(opt[32:], align)
	binary.LittleEndian.PutUint32(opt[36:], align)
	binary.LittleEndian.PutUint32(opt[60:], sizeOfHeaders)
	binary.LittleEndian.PutUint16(opt[68:], pe.IMAGE_SUBSYSTEM_EFI_APPLICATION)
	binary.LittleEndian.PutUint32(opt[108:], 16) // NumberOfRvaAndSizes
	va := uint32(0x1000)
	for i, name := range sections {
		h := b[peOff+24+optSize+i*40:]
		copy(h[0:8], name)
		binary.LittleEndian.PutUint32(h[8:], 0x10)
		binary.LittleEndian.PutUint32(h[12:], va)
		binary.LittleEndian.PutUint32(h[16:], align)
		binary.LittleEndian.PutUint32(h[20:], uint32(len(b)))
		binary.LittleEndian.PutUint32(h[36:], pe.IMAGE_SCN_CNT_CODE|pe.IMAGE_SCN_MEM_EXECUTE|pe.IMAGE_SCN_MEM_READ)
		b = append(b, bytes.Repeat([]byte{0xc3}, align)...)
		va += 0x1000
	}
	binary.LittleEndian.PutUint32(opt[56:], va) // SizeOfImage
	return b
}

func TestWriteUKI(t *testing.T) {
	u := UKI{Kernel: bytes.Repeat([]byte("K"), 5000), Initrd: bytes.Repeat([]byte("I"), 3000), Cmdline: "console=ttyS0 minik.ip=10.0.2.15/24", OSRelease: "ID=minik\n"}
	var out bytes.Buffer
	require.NoError(t, WriteUKI(&out, fakeStub(t), u))

	f, err := pe.NewFile(bytes.NewReader(out.Bytes()))
	require.NoError(t, err)
	want := map[string][]byte{".osrel": []byte(u.OSRelease), ".cmdline": append([]byte(u.Cmdline), 0), ".initrd": u.Initrd, ".linux": u.Kernel}
	var names []string
	var end uint32
	for _, s := range f.Sections {
		names = append(names, s.Name)
		assert.Greater(t, s.VirtualAddress, end, "%s lies after the sections before it", s.Name)
		end = s.VirtualAddress + s.VirtualSize
		if w, ok := want[s.Name]; ok {
			data, err := s.Data()
			require.NoError(t, err)
			assert.Equal(t, w, data[:s.VirtualSize], s.Name)
			assert.Zero(t, s.VirtualAddress%4096, "%s on a page boundary", s.Name)
			assert.Equal(t, uint32(sectionData), s.Characteristics)
		}
	}
	assert.Equal(t, []string{".text", ".osrel", ".cmdline", ".initrd", ".linux"}, names)
	oh := f.OptionalHeader.(*pe.OptionalHeader64)
	assert.GreaterOrEqual(t, oh.SizeOfImage, end)
	assert.Zero(t, oh.SizeOfImage%oh.SectionAlignment)

	err = WriteUKI(&out, fakeStub(t, ".text", ".linux"), u)
	require.ErrorContains(t, err, "already has a .linux section")
	err = WriteUKI(&out, fakeStub(t, ".a", ".b", ".c", ".d", ".e", ".f", ".g", ".h", ".i", ".j", ".k", ".l"), u)
	require.ErrorContains(t, err, "no room")
	err = WriteUKI(&out, []byte("not a PE file"), u)
	require.ErrorContains(t, err, "the EFI stub")
	err = WriteUKI(&out, fakeStub(t), UKI{})
	require.ErrorContains(t, err, "no kernel")
}

func TestVHDFooter(t *testing.T) {
	created := time.Date(2026, 12, 2, 21, 0, 0, 0, time.UTC)
	id := [16]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}
	b, err := VHDFooter(66*mib, id, created)
	require.NoError(t, err)
	assert.Equal(t, "conectix", string(b[:8]))
	assert.Equal(t, uint64(66*mib), binary.BigEndian.Uint64(b[40:]), "original size")

	f, err := ReadVHDFooter(b[:])
	require.NoError(t, err)
	assert.Equal(t, Footer{Size: 66 * mib, Fixed: true, UniqueID: id, Created: created, Cylinders: f.Cylinders, Heads: f.Heads, SectorsPerTrack: f.SectorsPerTrack}, f)
	// The geometry covers no more than the disk, as the specification's
	// algorithm gives it (66 MiB: 17 sectors per track, 8 heads).
	assert.Equal(t, []int{993, 8, 17}, []int{int(f.Cylinders), int(f.Heads), int(f.SectorsPerTrack)})
	assert.LessOrEqual(t, int64(f.Cylinders)*int64(f.Heads)*int64(f.SectorsPerTrack)*512, int64(66*mib))

	bad := b
	bad[100] ^= 1
	_, err = ReadVHDFooter(bad[:])
	require.ErrorIs(t, err, ErrNotVHD)
	require.ErrorContains(t, err, "checksum")
	_, err = ReadVHDFooter(make([]byte, FooterSize))
	require.ErrorIs(t, err, ErrNotVHD)
	_, err = VHDFooter(1000, id, created)
	require.Error(t, err)

	// Large disks: the geometry is capped at 65535/16/255.
	c, h, s := chs(200 << 30 / 512)
	assert.Equal(t, []int{65535, 16, 255}, []int{int(c), int(h), int(s)})
}

func TestWriteVHD(t *testing.T) {
	dir := t.TempDir()
	dst := filepath.Join(dir, "boot.vhd")
	boot := bytes.Repeat([]byte("boot"), 300_000)
	files := []File{{Path: BootPath, Data: boot}, {Path: "/minik/node.txt", Data: []byte("hello")}}
	created := time.Date(2026, 12, 2, 21, 0, 0, 0, time.UTC)
	require.NoError(t, WriteVHD(context.Background(), dst, Spec{Files: files, Created: created}))

	st, err := os.Stat(dst)
	require.NoError(t, err)
	raw := st.Size() - FooterSize
	assert.Zero(t, raw%mib, "the disk is a whole number of MiB")
	fh, err := os.Open(dst)
	require.NoError(t, err)
	defer fh.Close()
	footer, err := ReadVHDFooterFrom(fh, st.Size())
	require.NoError(t, err)
	assert.Equal(t, raw, footer.Size)
	assert.True(t, footer.Fixed)
	assert.Equal(t, created, footer.Created)
	assert.NotEqual(t, [16]byte{}, footer.UniqueID)
	// The backup GPT header is the raw disk's last sector, before the footer.
	sig := make([]byte, 8)
	_, err = fh.ReadAt(sig, raw-512)
	require.NoError(t, err)
	assert.Equal(t, "EFI PART", string(sig))

	d, err := diskfs.Open(dst, diskfs.WithOpenMode(diskfs.ReadOnly))
	require.NoError(t, err)
	defer d.Close()
	pt, err := d.GetPartitionTable()
	require.NoError(t, err)
	table, ok := pt.(*gpt.Table)
	require.True(t, ok, "a GPT disk")
	require.Len(t, table.Partitions, 1)
	assert.Equal(t, gpt.EFISystemPartition, table.Partitions[0].Type)
	assert.Equal(t, uint64(firstLBA), table.Partitions[0].Start)

	fs, err := d.GetFilesystem(1)
	require.NoError(t, err)
	assert.Equal(t, filesystem.TypeFat32, fs.Type())
	assert.Equal(t, ESPLabel, fs.Label())
	for _, f := range files {
		r, err := fs.OpenFile(f.Path, os.O_RDONLY)
		require.NoError(t, err, f.Path)
		var got bytes.Buffer
		_, err = got.ReadFrom(r)
		require.NoError(t, err)
		assert.Equal(t, f.Data, got.Bytes(), f.Path)
	}

	// A failed write leaves nothing behind, not even its temporary file.
	bad := filepath.Join(dir, "bad.vhd")
	require.Error(t, WriteVHD(context.Background(), bad, Spec{Files: []File{{Path: "EFI/relative", Data: []byte("x")}}}))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	require.ErrorIs(t, WriteVHD(ctx, bad, Spec{Files: files}), context.Canceled)
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	require.Len(t, entries, 1, "only boot.vhd")
}
