package nodeproxy

import (
	"strings"
	"testing"
)

// Request paths come from any client of the apiserver.
func FuzzParse(f *testing.F) {
	f.Add("/api/v1/nodes/n1/proxy/logs/")
	f.Add("/api/v1/nodes/n1:10250/proxy")
	f.Add("/api/v1/nodes//proxy/../..")
	f.Fuzz(func(t *testing.T, path string) {
		name, _, ok := parse(path)
		if ok && (name == "" || strings.Contains(name, "/")) {
			t.Fatalf("%q: node name %q", path, name)
		}
	})
}
