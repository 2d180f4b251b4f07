package controlplane

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime/debug"
	"time"

	bolt "go.etcd.io/bbolt"
)

// ErrEtcdDataCorrupt is returned when etcd's database cannot be read.
var ErrEtcdDataCorrupt = errors.New("etcd's data is corrupt")

// checkEtcdData reads etcd's database (dir is etcd's data folder), every
// bucket and key of it, when it exists: etcd panics on a database it cannot
// read, and a panic says nothing a user can act on. A database that does
// not exist yet is fine: etcd makes it.
func checkEtcdData(dir, cluster string) error {
	db := filepath.Join(dir, "member", "snap", "db")
	if _, err := os.Stat(db); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err := readAll(db); err != nil {
		return fmt.Errorf("%w: %s: %v; the cluster's objects cannot be read: delete the cluster (`minik delete -p %s`) and start it again, or put back a copy of %s",
			ErrEtcdDataCorrupt, db, err, cluster, dir)
	}
	return nil
}

// readAll opens the bbolt database at path read-only and walks all of it.
// bbolt reads a memory-mapped file: garbage in it makes bbolt panic or
// fault, and both are turned into an error here.
func readAll(path string) (err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("reading it failed: %v", r)
		}
	}()
	b, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: 5 * time.Second})
	if err != nil {
		return err
	}
	defer b.Close()
	var walk func(*bolt.Bucket) error
	walk = func(bucket *bolt.Bucket) error {
		return bucket.ForEach(func(k, v []byte) error {
			if v == nil {
				if nested := bucket.Bucket(k); nested != nil {
					return walk(nested)
				}
			}
			return nil
		})
	}
	return b.View(func(tx *bolt.Tx) error {
		return tx.ForEach(func(_ []byte, bucket *bolt.Bucket) error { return walk(bucket) })
	})
}
