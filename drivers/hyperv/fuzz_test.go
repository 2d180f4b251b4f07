package hyperv

import "testing"

// A VM's notes and PowerShell's output come from outside minik.
func FuzzParse(f *testing.F) {
	f.Add(`{"dev.minik.cluster":"c","dev.minik.kind":"node"}`, []byte(`{"result":{"exists":true}}`))
	f.Add(`null`, []byte("WARNING: x\n{\"error\":{\"category\":\"PermissionDenied\"}}\n"))
	f.Add(``, []byte(`{"result":`))
	f.Fuzz(func(t *testing.T, notes string, stdout []byte) {
		if l, ok := ParseNotes(notes); ok && (l.Cluster == "" || l.Kind == "") {
			t.Fatalf("%q: labels without cluster or kind: %+v", notes, l)
		}
		_, _ = parseEnvelope(stdout)
	})
}
