package cli

import (
	"testing"
	"time"
)

// Flag values are typed by people: each parses or is a usage error.
func FuzzParseFlags(f *testing.F) {
	f.Add("2", "4Gi", "0:3")
	f.Add("1500m", "4096", "3:1")
	f.Add("-1", "1e100", ":")
	f.Add("0.0001", "9223372036854775807", "0:99999999999999999999")
	f.Fuzz(func(t *testing.T, cpus, memory, autoscale string) {
		if n, err := parseCPUs(cpus); err == nil && n < 0 {
			t.Fatalf("--cpus %q: %d", cpus, n)
		}
		if n, err := parseMemory(memory); err == nil && n < 0 {
			t.Fatalf("--memory %q: %d", memory, n)
		}
		if o, err := parseAutoscale(autoscale, time.Minute); err == nil && autoscale != "" && o == nil {
			t.Fatalf("--autoscale %q: no options and no error", autoscale)
		}
	})
}
