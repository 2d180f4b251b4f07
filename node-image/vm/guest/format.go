package guest

import (
	"bytes"
	"fmt"
	"io"
	"os"

	"github.com/diskfs/go-diskfs/backend/file"
	"github.com/diskfs/go-diskfs/filesystem/ext4"
)

// DataLabel is the volume label of a node's data disk.
const DataLabel = "minik-data"

// dataInodeRatio is bytes per inode of a data disk formatted here: a
// quarter of mkfs.ext4's default inodes, still hundreds of thousands on a
// node's disk, and a fifth of the inode tables to write on first boot.
const dataInodeRatio = 64 << 10

// FormatIfBlank gives the disk at dev an ext4 filesystem labelled
// DataLabel when it is blank (its first 64 KiB are zeros, as on a disk
// Hyper-V's New-VHD made), and says whether it did. A disk with anything
// on it is never touched.
func FormatIfBlank(dev string) (bool, error) {
	f, err := os.OpenFile(dev, os.O_RDWR, 0)
	if err != nil {
		return false, fmt.Errorf("format %s: %w", dev, err)
	}
	defer f.Close()
	head := make([]byte, 64<<10)
	if _, err := io.ReadFull(f, head); err != nil {
		return false, fmt.Errorf("format %s: %w", dev, err)
	}
	if !bytes.Equal(head, make([]byte, len(head))) {
		return false, nil
	}
	size, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		return false, fmt.Errorf("format %s: %w", dev, err)
	}
	if _, err := ext4.Create(file.New(f, false), size, 0, 512, &ext4.Params{VolumeName: DataLabel, InodeRatio: dataInodeRatio}); err != nil {
		return false, fmt.Errorf("format %s: %w", dev, err)
	}
	if err := f.Sync(); err != nil {
		return false, fmt.Errorf("format %s: %w", dev, err)
	}
	return true, nil
}
