package controlplane

import (
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	bolt "go.etcd.io/bbolt"
)

func TestCheckEtcdData(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, checkEtcdData(dir, "dev"), "no database yet: etcd makes one")

	db := filepath.Join(dir, "member", "snap", "db")
	require.NoError(t, os.MkdirAll(filepath.Dir(db), 0o700))
	b, err := bolt.Open(db, 0o600, nil)
	require.NoError(t, err)
	require.NoError(t, b.Update(func(tx *bolt.Tx) error {
		bucket, err := tx.CreateBucket([]byte("key"))
		if err != nil {
			return err
		}
		for i := range 600 {
			if err := bucket.Put([]byte{byte(i >> 8), byte(i)}, make([]byte, 512)); err != nil {
				return err
			}
		}
		return nil
	}))
	require.NoError(t, b.Close())
	require.NoError(t, checkEtcdData(dir, "dev"))

	data, err := os.ReadFile(db)
	require.NoError(t, err)
	for name, corrupt := range map[string]func([]byte) []byte{
		"meta pages overwritten": func(d []byte) []byte {
			d = append([]byte{}, d...)
			copy(d, make([]byte, 8192))
			return d
		},
		"truncated": func(d []byte) []byte { return d[:len(d)/3] },
		"a data page overwritten": func(d []byte) []byte {
			d = append([]byte{}, d...)
			for i := 4 * 4096; i < 6*4096; i++ {
				d[i] = 0xff
			}
			return d
		},
	} {
		t.Run(name, func(t *testing.T) {
			require.NoError(t, os.WriteFile(db, corrupt(data), 0o600))
			err := checkEtcdData(dir, "dev")
			require.ErrorIs(t, err, ErrEtcdDataCorrupt)
			assert.Contains(t, err.Error(), "minik delete -p dev")
		})
	}

	// Garbage on any one page is an error or goes unnoticed (a free page),
	// never a crash.
	rnd := rand.New(rand.NewPCG(1, 2))
	for page := 0; page*4096 < len(data); page++ {
		d := append([]byte{}, data...)
		for i := page * 4096; i < (page+1)*4096 && i < len(d); i++ {
			d[i] = byte(rnd.UintN(256))
		}
		require.NoError(t, os.WriteFile(db, d, 0o600))
		if err := checkEtcdData(dir, "dev"); err != nil {
			require.ErrorIs(t, err, ErrEtcdDataCorrupt, "page %d", page)
		}
	}
}

// BenchmarkCheckEtcdData reads a 6 MB database, what minik-node does
// before every start of etcd.
func BenchmarkCheckEtcdData(b *testing.B) {
	dir := b.TempDir()
	db := filepath.Join(dir, "member", "snap", "db")
	require.NoError(b, os.MkdirAll(filepath.Dir(db), 0o700))
	bdb, err := bolt.Open(db, 0o600, nil)
	require.NoError(b, err)
	require.NoError(b, bdb.Update(func(tx *bolt.Tx) error {
		bucket, err := tx.CreateBucket([]byte("key"))
		if err != nil {
			return err
		}
		for i := range 10000 {
			if err := bucket.Put([]byte{byte(i >> 8), byte(i)}, make([]byte, 512)); err != nil {
				return err
			}
		}
		return nil
	}))
	require.NoError(b, bdb.Close())
	b.ResetTimer()
	for b.Loop() {
		if err := checkEtcdData(dir, "dev"); err != nil {
			b.Fatal(err)
		}
	}
}
