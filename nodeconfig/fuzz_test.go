package nodeconfig

import (
	"os"
	"path/filepath"
	"testing"
)

// The control plane reads the autoscaler's ConfigMaps, which any admin
// can edit: a bad value is an error, never a panic, and what parses
// writes back to the same.
func FuzzParseAutoscale(f *testing.F) {
	f.Add("0", "3", "1m0s", "1000", "2147483648", "110")
	f.Add("-1", "99999999999999999999", "1h", "x", "", "0")
	f.Add("2", "1", "-5s", "1", "1", "1")
	f.Fuzz(func(t *testing.T, minW, maxW, after, cpu, mem, pods string) {
		a, err := ParseAutoscale(map[string]string{"min": minW, "max": maxW, "scaleDownAfter": after,
			"cpuMillis": cpu, "memoryBytes": mem, "maxPods": pods})
		if err != nil {
			return
		}
		again, err := ParseAutoscale(a.Data())
		if err != nil || again != a {
			t.Fatalf("%+v does not read back: %+v, %v", a, again, err)
		}
	})
}

func FuzzParseAutoscaleDecision(f *testing.F) {
	f.Add("2", "a,b")
	f.Add("-3", ",,,")
	f.Add("1", " x , x ,y")
	f.Fuzz(func(t *testing.T, workers, remove string) {
		d, err := ParseAutoscaleDecision(map[string]string{"workers": workers, "remove": remove})
		if err != nil {
			return
		}
		if d.Workers < 0 {
			t.Fatalf("negative workers %d", d.Workers)
		}
		if _, err := ParseAutoscaleDecision(d.Data()); err != nil {
			t.Fatalf("%+v does not read back: %v", d, err)
		}
	})
}

// A Service's annotation is written by users.
func FuzzParseLocalhostPorts(f *testing.F) {
	f.Add("80,443")
	f.Add("8080:80, 9090")
	f.Add(":::,,-1,70000")
	f.Fuzz(func(t *testing.T, s string) {
		ports, err := ParseLocalhostPorts(s)
		if err != nil {
			return
		}
		for _, p := range ports {
			if p.HostPort < 1 || p.HostPort > 65535 {
				t.Fatalf("%q: host port %d out of range", s, p.HostPort)
			}
		}
	})
}

// A node's config file is written by the CLI, but may be truncated or
// edited by hand: Load returns an error, never panics.
func FuzzLoad(f *testing.F) {
	f.Add([]byte(`{"cluster":"c","name":"n","role":"worker","ip":"127.0.0.1","kubeletPort":10250}`))
	f.Add([]byte(`{"runtime":"docker","docker":null,"runc":{}}`))
	f.Add([]byte(`{`))
	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(t.TempDir(), "config.json")
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		_, _ = Load(path)
	})
}
