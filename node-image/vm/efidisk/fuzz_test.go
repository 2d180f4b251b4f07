package efidisk

import "testing"

// A VHD's footer is read from a file on disk.
func FuzzReadVHDFooter(f *testing.F) {
	f.Add(make([]byte, 512))
	f.Add([]byte("conectix"))
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = ReadVHDFooter(b)
	})
}
