package simload

import "testing"

// A minik-load ConfigMap is written by users.
func FuzzParseLoads(f *testing.F) {
	f.Add("web", "500m")
	f.Add("", "-1")
	f.Add("x", "1e100000")
	f.Fuzz(func(t *testing.T, app, cpu string) {
		loads, bad := ParseLoads(map[string]string{app: cpu})
		if len(loads)+len(bad) != 1 {
			t.Fatalf("%s=%q: neither a load nor a problem", app, cpu)
		}
	})
}
