package cluster

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// MinFreeBytes is the least free disk under $MINIK_HOME that start
// begins with: etcd alone preallocates a 64 MiB write-ahead log, and a
// node that finds its disk full stops (etcd ends on a failed write).
const MinFreeBytes = 100 << 20

// ErrDiskFull is returned when $MINIK_HOME's disk has too little room.
var ErrDiskFull = errors.New("not enough free disk")

// checkFreeDisk refuses to start on a disk with less than MinFreeBytes
// free, before anything is written: a start that ran out of room would
// leave half-written state to clean up.
func (m *Manager) checkFreeDisk() error {
	dir := m.store.Home
	// The home may not exist yet: its nearest existing parent's disk.
	for {
		if _, err := os.Stat(dir); err == nil || filepath.Dir(dir) == dir {
			break
		}
		dir = filepath.Dir(dir)
	}
	free, err := freeBytes(dir)
	if err != nil {
		return nil // a disk it cannot measure is not refused
	}
	if free < MinFreeBytes {
		return fmt.Errorf("%w: %.1f MiB free on the disk of %s, and a cluster needs at least %d MiB (etcd's write-ahead log alone takes 64 MiB); free some space (or set MINIK_HOME to a bigger disk) and run minik start again",
			ErrDiskFull, float64(free)/(1<<20), m.store.Home, MinFreeBytes>>20)
	}
	return nil
}
