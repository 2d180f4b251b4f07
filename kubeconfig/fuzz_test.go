package kubeconfig

import (
	"os"
	"path/filepath"
	"testing"
)

// The kubeconfig is shared with every other tool: whatever it holds,
// Merge adds minik's context or refuses, never panics, and never leaves
// a file it cannot read back.
func FuzzMerge(f *testing.F) {
	f.Add([]byte(existing))
	f.Add([]byte("apiVersion: v1\nkind: Config\nclusters: 3\n"))
	f.Add([]byte("contexts:\n- name: minik\n  context: null\n"))
	f.Add([]byte{0xff, 0xfe, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(t.TempDir(), "config")
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := Merge(path, entry("minik", 6443), true); err != nil {
			return
		}
		if err := Merge(path, entry("other", 6444), false); err != nil {
			t.Fatalf("a file Merge wrote does not merge again: %v", err)
		}
	})
}
