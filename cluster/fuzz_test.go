package cluster

import (
	"os"
	"testing"
)

// A profile file may be truncated or edited by hand: Load returns a
// profile that validates, or an error, never a panic.
func FuzzLoadProfile(f *testing.F) {
	f.Add([]byte(`{"name":"dev","driver":"process","apiServerPort":6443,"nodes":[{"name":"dev","role":"control-plane","ip":"127.0.0.1"}]}`))
	f.Add([]byte(`{"name":"dev","nodes":null,"autoscale":{"min":-1}}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		s := Store{Home: t.TempDir()}
		if err := os.MkdirAll(s.ProfileDir("dev"), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(s.profileFile("dev"), data, 0o600); err != nil {
			t.Fatal(err)
		}
		p, err := s.Load("dev")
		if err == nil && p.ControlPlane() == nil {
			t.Fatalf("a profile without a control plane loaded: %s", data)
		}
	})
}
