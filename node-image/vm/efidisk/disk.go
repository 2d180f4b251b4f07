// Package efidisk writes the boot disk of a UEFI VM node (Hyper-V's
// Generation 2 VMs; QEMU with OVMF in the tests), in Go: a GPT disk with
// one EFI system partition (FAT32) whose removable-media boot file
// \EFI\BOOT\BOOTX64.EFI is a unified kernel image (the kernel, the
// initramfs and the node's kernel command line in one PE file behind
// systemd's EFI stub), saved as a fixed VHD (the raw disk and a 512-byte
// footer) that Hyper-V attaches or converts.
//
// The firmware starts BOOTX64.EFI with no arguments: no boot entry, no
// UEFI shell (Hyper-V has none) and no boot loader configuration is
// needed, so the node's identity and address (the command line the guest
// parses, see package guest) travel inside the disk.
package efidisk

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"

	diskfs "github.com/diskfs/go-diskfs"
	"github.com/diskfs/go-diskfs/disk"
	"github.com/diskfs/go-diskfs/filesystem"
	"github.com/diskfs/go-diskfs/partition/gpt"
)

// BootPath is the file UEFI firmware boots from a disk with no boot entry.
const BootPath = "/EFI/BOOT/BOOTX64.EFI"

// ESPLabel is the FAT volume label of the EFI system partition.
const ESPLabel = "MINIK-EFI"

const (
	mib = 1 << 20
	// firstLBA leaves 1 MiB before the partition (GPT, alignment).
	firstLBA = 2048
	// minESP keeps the partition FAT32 (at least 65525 clusters).
	minESP = 64 * mib
)

// File is one file of the EFI system partition.
type File struct {
	// Path is slash-separated from the partition's root: /EFI/BOOT/BOOTX64.EFI.
	Path string
	Data []byte
}

// Spec is a boot disk.
type Spec struct {
	Files []File
	// DiskID is the VHD's unique ID; zero picks a random one.
	DiskID [16]byte
	// Created stamps the VHD footer; zero is now.
	Created time.Time
}

// BootFiles are the files of a boot disk that boots u through stub.
func BootFiles(stub []byte, u UKI) ([]File, error) {
	var b bytes.Buffer
	if err := WriteUKI(&b, stub, u); err != nil {
		return nil, err
	}
	return []File{{Path: BootPath, Data: b.Bytes()}}, nil
}

// WriteBootDisk writes dst, a fixed VHD whose firmware boots u through
// stub: what every UEFI VM node boots from, on Hyper-V and under OVMF.
func WriteBootDisk(ctx context.Context, dst string, stub []byte, u UKI) error {
	if u.OSRelease == "" {
		u.OSRelease = "ID=minik\nNAME=\"minik node\"\n"
	}
	files, err := BootFiles(stub, u)
	if err != nil {
		return err
	}
	return WriteVHD(ctx, dst, Spec{Files: files})
}

// WriteVHD writes the disk to dst as a fixed VHD, atomically: a reader of
// dst sees no half-written disk. Only its owner may read it: a node's
// initramfs holds the cluster's keys.
func WriteVHD(ctx context.Context, dst string, spec Spec) (err error) {
	var content int64
	for _, f := range spec.Files {
		content += int64(len(f.Data)) + 64*1024
	}
	esp := max(minESP, (content+content/8+8*mib+mib-1)/mib*mib)
	size := firstLBA*512 + esp + mib // 1 MiB at the end holds the backup GPT

	tmp := filepath.Join(filepath.Dir(dst), "."+filepath.Base(dst)+".tmp")
	_ = os.Remove(tmp)
	defer func() {
		if err != nil {
			_ = os.Remove(tmp)
		}
	}()
	if err := writeRaw(ctx, tmp, size, esp, spec.Files); err != nil {
		return fmt.Errorf("write boot disk %s: %w", dst, err)
	}
	if err := os.Chmod(tmp, 0o600); err != nil {
		return fmt.Errorf("write boot disk %s: %w", dst, err)
	}
	id := spec.DiskID
	if id == ([16]byte{}) {
		if _, err := rand.Read(id[:]); err != nil {
			return err
		}
	}
	created := spec.Created
	if created.IsZero() {
		created = time.Now()
	}
	footer, err := VHDFooter(size, id, created)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(tmp, os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("write boot disk %s: %w", dst, err)
	}
	if _, err := f.WriteAt(footer[:], size); err != nil {
		_ = f.Close()
		return fmt.Errorf("write boot disk %s: %w", dst, err)
	}
	if err := f.Sync(); err != nil {
		_ = f.Close()
		return fmt.Errorf("write boot disk %s: %w", dst, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write boot disk %s: %w", dst, err)
	}
	return os.Rename(tmp, dst)
}

// writeRaw writes the raw GPT disk with its EFI system partition.
func writeRaw(ctx context.Context, name string, size, esp int64, files []File) error {
	d, err := diskfs.Create(name, size, diskfs.SectorSizeDefault)
	if err != nil {
		return err
	}
	defer d.Close()
	table := &gpt.Table{
		LogicalSectorSize:  512,
		PhysicalSectorSize: 512,
		ProtectiveMBR:      true,
		Partitions: []*gpt.Partition{{
			Index: 1, Start: firstLBA, End: firstLBA + uint64(esp/512) - 1,
			Type: gpt.EFISystemPartition, Name: "EFI system partition",
		}},
	}
	if err := d.Partition(table); err != nil {
		return fmt.Errorf("partition: %w", err)
	}
	fs, err := d.CreateFilesystem(disk.FilesystemSpec{Partition: 1, FSType: filesystem.TypeFat32, VolumeLabel: ESPLabel})
	if err != nil {
		return fmt.Errorf("format the EFI system partition: %w", err)
	}
	dirs := map[string]bool{}
	for _, f := range files {
		if !strings.HasPrefix(f.Path, "/") || path.Clean(f.Path) != f.Path {
			return fmt.Errorf("file %q: want a clean absolute path", f.Path)
		}
		for p := path.Dir(f.Path); p != "/"; p = path.Dir(p) {
			dirs[p] = true
		}
	}
	sorted := make([]string, 0, len(dirs))
	for p := range dirs {
		sorted = append(sorted, p)
	}
	sort.Strings(sorted)
	for _, p := range sorted {
		if err := fs.Mkdir(p); err != nil {
			return fmt.Errorf("mkdir %s: %w", p, err)
		}
	}
	for _, f := range files {
		if err := ctx.Err(); err != nil {
			return err
		}
		w, err := fs.OpenFile(f.Path, os.O_CREATE|os.O_RDWR)
		if err != nil {
			return fmt.Errorf("create %s: %w", f.Path, err)
		}
		if _, err := w.Write(f.Data); err != nil {
			_ = w.Close()
			return fmt.Errorf("write %s: %w", f.Path, err)
		}
		if err := w.Close(); err != nil {
			return fmt.Errorf("write %s: %w", f.Path, err)
		}
	}
	return nil
}
