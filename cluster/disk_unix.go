//go:build !windows

package cluster

import (
	"errors"

	"golang.org/x/sys/unix"
)

// freeBytes is what this user may still write on path's disk.
func freeBytes(path string) (int64, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return 0, err
	}
	return int64(st.Bavail) * int64(st.Bsize), nil //nolint:unconvert // Bsize's type differs by system
}

// writable reports why this user cannot create files in dir: errReadOnly
// for a read-only file system (even root cannot), else the refusal.
func writable(dir string) error {
	err := unix.Access(dir, unix.W_OK|unix.X_OK)
	if errors.Is(err, unix.EROFS) {
		return errReadOnly
	}
	return err
}
