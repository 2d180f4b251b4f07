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

// ErrNotWritable is returned when $MINIK_HOME cannot be written.
var ErrNotWritable = errors.New("cannot write minik's state")

// errReadOnly is what writable returns for a read-only file system.
var errReadOnly = errors.New("read-only file system")

// checkHomeDisk refuses to start where $MINIK_HOME cannot be written or
// its disk has less than MinFreeBytes free, before anything is written: a
// start that failed half-way would leave half-written state to clean up.
func (m *Manager) checkHomeDisk() error {
	dir := m.store.Home
	// The home may not exist yet: its nearest existing parent's disk.
	for {
		if _, err := os.Stat(dir); err == nil || filepath.Dir(dir) == dir {
			break
		}
		dir = filepath.Dir(dir)
	}
	if err := writable(dir); err != nil {
		fix := "remount it read-write (or set MINIK_HOME to a writable folder) and run minik start again"
		if !errors.Is(err, errReadOnly) {
			fix = "make it yours (`sudo chown -R $USER " + m.store.Home + "`) or set MINIK_HOME to a folder you can write, and run minik start again"
		}
		return fmt.Errorf("%w: %s: %w; %s", ErrNotWritable, dir, err, fix)
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
