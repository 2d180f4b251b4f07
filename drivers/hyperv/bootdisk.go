package hyperv

import (
	"context"

	"minik.dev/minik/drivers/vmnode"
)

// dataDisk is a node's data disk in its VM: the second disk (location 1)
// of the SCSI controller; the boot disk is the first. It is blank at
// first, and the guest formats it (guest.FormatIfBlank).
const dataDisk = "/dev/sdb"

// BootDiskWriter returns a Config.BootDisk that writes each node's disk
// with vmnode.WriteBootDisk: the disk the kvm driver boots under
// --vm-firmware efi too, which is how CI proves it on Linux.
func BootDiskWriter(img vmnode.BootImage) func(context.Context, BootDiskRequest) error {
	return func(ctx context.Context, r BootDiskRequest) error {
		return vmnode.WriteBootDisk(ctx, r.Path, r.Node, img, dataDisk, vmDirName)
	}
}
