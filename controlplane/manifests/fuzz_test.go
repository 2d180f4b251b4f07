package manifests

import (
	"testing"
)

// The manifests folder holds whatever the user writes: every file parses
// to objects or problems, never a panic.
func FuzzParse(f *testing.F) {
	f.Add("a.yaml", []byte("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n---\n---\nkind: 3\n"))
	f.Add("b.json", []byte(`{"apiVersion":"v1","kind":"List","items":[{"kind":"ConfigMap"}]}`))
	f.Add("c.jsonnet", []byte(`{apiVersion: "v1", kind: "ConfigMap", metadata: {name: std.extVar("profile")}}`))
	f.Add("d.yaml", []byte("- a\n- b\n"))
	f.Fuzz(func(t *testing.T, name string, data []byte) {
		if len(data) > 1<<16 {
			return
		}
		for _, ext := range []string{".yaml", ".json", ".jsonnet"} {
			_, _ = parse(t.TempDir(), "f"+ext, data, map[string]string{"profile": "p"})
		}
		_ = name
	})
}
