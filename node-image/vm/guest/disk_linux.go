package guest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// MountDisk waits for the block device dev (it appears once its driver
// has probed it) and mounts its ext4 filesystem on target, first making
// one on a blank disk (a new Hyper-V data disk; kvm's come formatted).
func MountDisk(ctx context.Context, dev, target string) error {
	for {
		if _, err := os.Stat(dev); err == nil {
			break
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("mount %s: the disk never appeared: %w", dev, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
	if _, err := FormatIfBlank(dev); err != nil {
		return fmt.Errorf("mount %s: %w", dev, err)
	}
	if err := os.MkdirAll(target, 0o755); err != nil {
		return fmt.Errorf("mount %s: %w", dev, err)
	}
	if err := unix.Mount(dev, target, "ext4", unix.MS_NOATIME, ""); err != nil && !errors.Is(err, unix.EBUSY) {
		return fmt.Errorf("mount %s on %s: %w", dev, target, err)
	}
	return nil
}

// Unmount flushes and unmounts target, for a clean power-off.
func Unmount(target string) error {
	unix.Sync()
	if err := unix.Unmount(target, 0); err != nil {
		return fmt.Errorf("unmount %s: %w", target, err)
	}
	return nil
}
