package hyperv

import (
	"context"
	"strings"

	"minik.dev/minik/node-image/vm/efidisk"
)

// BootImage is what every node of a cluster boots: systemd's EFI stub,
// the kernel and the initramfs (node-image/vm). Only the command line
// differs from node to node.
type BootImage struct {
	Stub, Kernel, Initrd []byte
	// Cmdline comes before the node's own settings; console=ttyS0 puts
	// the console on COM1, the VM's named pipe.
	Cmdline string
}

// BootDiskWriter returns a Config.BootDisk that writes each node's disk:
// a unified kernel image of img whose command line ends with the node's
// address, gateway and hostname (guest.Network.Cmdline), on a fixed VHD.
func BootDiskWriter(img BootImage) func(context.Context, BootDiskRequest) error {
	return func(ctx context.Context, r BootDiskRequest) error {
		cmdline := strings.TrimSpace(img.Cmdline + " " + r.Network.Cmdline())
		return efidisk.WriteBootDisk(ctx, r.Path, img.Stub, efidisk.UKI{Kernel: img.Kernel, Initrd: img.Initrd, Cmdline: cmdline})
	}
}
