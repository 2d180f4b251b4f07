package manifests

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func write(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, data := range files {
		p := filepath.Join(dir, name)
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		require.NoError(t, os.WriteFile(p, []byte(data), 0o644))
	}
}

func names(f folder) []string {
	var out []string
	for _, d := range f.docs {
		out = append(out, d.file+":"+d.obj.GetKind()+"/"+d.obj.GetName())
	}
	return out
}

func TestLoad(t *testing.T) {
	tests := []struct {
		name     string
		files    map[string]string
		want     []string
		problems map[string][]string
	}{
		{name: "multi-document YAML, CRDs and Namespaces first in their folder",
			files: map[string]string{
				"a.yaml": "kind: ConfigMap\napiVersion: v1\nmetadata: {name: cm}\n---\n---\nkind: Namespace\napiVersion: v1\nmetadata: {name: ns}\n",
				"b.yml":  "kind: CustomResourceDefinition\napiVersion: apiextensions.k8s.io/v1\nmetadata: {name: crd}\n",
				"c.json": `{"kind": "Secret", "apiVersion": "v1", "metadata": {"name": "s"}}`,
			},
			want: []string{"b.yml:CustomResourceDefinition/crd", "a.yaml:Namespace/ns", "a.yaml:ConfigMap/cm", "c.json:Secret/s"}},
		{name: "files and sub-folders in name order, hidden ones skipped",
			files: map[string]string{
				"z.yaml":        "kind: ConfigMap\napiVersion: v1\nmetadata: {name: top}\n",
				"10-base/a.yml": "kind: ConfigMap\napiVersion: v1\nmetadata: {name: base}\n",
				"20-app/a.yml":  "kind: ConfigMap\napiVersion: v1\nmetadata: {name: app}\n",
				".hidden/x.yml": "kind: ConfigMap\napiVersion: v1\nmetadata: {name: hidden}\n",
				"notes.txt":     "not a manifest",
			},
			want: []string{"10-base/a.yml:ConfigMap/base", "20-app/a.yml:ConfigMap/app", "z.yaml:ConfigMap/top"}},
		{name: "jsonnet: an object, a list, a map, imports and external variables",
			files: map[string]string{
				"lib.libsonnet": "{ cm(n):: { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: n } } }",
				"one.jsonnet":   "local l = import 'lib.libsonnet'; l.cm(std.extVar('cluster'))",
				"list.jsonnet":  "local l = import 'lib.libsonnet'; [l.cm('l1'), l.cm('l2')]",
				"map.jsonnet":   "local l = import 'lib.libsonnet'; { b: l.cm('m-b'), a: l.cm('m-a') }",
			},
			want: []string{"list.jsonnet:ConfigMap/l1", "list.jsonnet:ConfigMap/l2", "map.jsonnet:ConfigMap/m-a", "map.jsonnet:ConfigMap/m-b", "one.jsonnet:ConfigMap/dev"}},
		{name: "a broken file does not stop the others",
			files: map[string]string{
				"bad.yaml":    "kind: [broken",
				"bad.jsonnet": "{ a: }",
				"noname.yaml": "kind: ConfigMap\napiVersion: v1\nmetadata: {}\n",
				"good.yaml":   "kind: ConfigMap\napiVersion: v1\nmetadata: {name: good}\n",
			},
			want: []string{"good.yaml:ConfigMap/good"},
			problems: map[string][]string{
				"bad.yaml":    {"document 1: error converting YAML to JSON: yaml: line 1: did not find expected ',' or ']'"},
				"noname.yaml": {"document 1: ConfigMap has no metadata.name"},
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			write(t, dir, tt.files)
			f, err := load(dir, map[string]string{"cluster": "dev"})
			require.NoError(t, err)
			assert.Equal(t, tt.want, names(f))
			for file, want := range tt.problems {
				assert.Equal(t, want, f.files[file], file)
			}
			if _, ok := tt.files["bad.jsonnet"]; ok {
				require.Len(t, f.files["bad.jsonnet"], 1)
				assert.Contains(t, f.files["bad.jsonnet"][0], "jsonnet: ")
			}
		})
	}
}

func TestFingerprint(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, map[string]string{"a.yaml": "kind: ConfigMap\napiVersion: v1\nmetadata: {name: a}\n"})
	f1, err := load(dir, nil)
	require.NoError(t, err)
	f2, _ := load(dir, nil)
	assert.Equal(t, f1.fingerprint, f2.fingerprint, "nothing changed")
	write(t, dir, map[string]string{"lib.libsonnet": "{}"})
	f3, _ := load(dir, nil)
	assert.NotEqual(t, f1.fingerprint, f3.fingerprint, "an imported file counts")
	f4, _ := load(dir, map[string]string{"nodes": "2"})
	assert.NotEqual(t, f3.fingerprint, f4.fingerprint, "external variables count")
}
