package vmnode

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"minik.dev/minik/drivers"
	vmimage "minik.dev/minik/node-image/vm"
	"minik.dev/minik/node-image/vm/efidisk"
)

// BootImage is what every node of a cluster boots, as files: systemd's
// EFI stub, the kernel and the initramfs every node shares
// (EnsureInitramfs).
type BootImage struct {
	Stub, Kernel, Initramfs string
}

// WriteBootDisk writes n's UEFI boot disk to dst (efidisk.WriteBootDisk,
// a fixed VHD): a unified kernel image of img's kernel, its initramfs
// followed by the profile as the node sees it (ProfileFiles, without the
// nodes' vmDir folders), and the node's command line (Cmdline, with
// dataDisk). The disk is how the node learns who it is: no DHCP lease, no
// guest agent. Hyper-V's Generation 2 VMs boot it, and kvm's under
// --vm-firmware efi.
func WriteBootDisk(ctx context.Context, dst string, n drivers.Node, img BootImage, dataDisk, vmDir string) error {
	cmdline, err := Cmdline(n, dataDisk)
	if err != nil {
		return err
	}
	files, err := ProfileFiles(n, vmDir)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
		return err
	}
	var initrd bytes.Buffer
	base, err := os.Open(img.Initramfs)
	if err != nil {
		return fmt.Errorf("read the initramfs: %w", err)
	}
	_, err = io.Copy(&initrd, base)
	base.Close()
	if err != nil {
		return fmt.Errorf("read the initramfs: %w", err)
	}
	if err := vmimage.WriteFiles(&initrd, files); err != nil {
		return fmt.Errorf("write the node's initramfs: %w", err)
	}
	kernel, err := os.ReadFile(img.Kernel)
	if err != nil {
		return fmt.Errorf("read the kernel: %w", err)
	}
	stub, err := os.ReadFile(img.Stub)
	if err != nil {
		return fmt.Errorf("read the EFI stub: %w", err)
	}
	return efidisk.WriteBootDisk(ctx, dst, stub, efidisk.UKI{Kernel: kernel, Initrd: initrd.Bytes(), Cmdline: cmdline})
}
