package forward

import "testing"

func FuzzParseRule(f *testing.F) {
	f.Add("tcp:80=172.19.48.1:80")
	f.Add("udp:0=:")
	f.Add("tcp:99999=[::1]:1")
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseRule(s)
		if err != nil {
			return
		}
		if r.Port < 1 || r.Port > 65535 {
			t.Fatalf("%q: port %d", s, r.Port)
		}
	})
}
