//go:build !linux

package storage

import "errors"

// freeBytes is not measured off Linux, where minik-node does not run.
func freeBytes(dir string) (int64, error) {
	return 0, errFree(dir, errors.New("not measured on this platform"))
}
