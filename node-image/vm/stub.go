package vmimage

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// EFIStubPath is where Debian's systemd-boot-efi package (and most
// distributions' systemd) keeps the EFI stub that unified kernel images
// start with.
const EFIStubPath = "/usr/lib/systemd/boot/efi/linuxx64.efi.stub"

// ErrNoEFIStub is returned when no EFI stub is available offline.
var ErrNoEFIStub = errors.New("no EFI stub for UEFI VM nodes")

// FindEFIStub returns the EFI stub for UEFI boot disks (package efidisk):
// the one named (a stub file, or a Debian systemd-boot-efi .deb unpacked
// into cacheDir), else one unpacked before in cacheDir, else hostStub
// (EFIStubPath on Linux) when it is there.
func FindEFIStub(named, cacheDir, hostStub string) (string, error) {
	cached := filepath.Join(cacheDir, filepath.FromSlash(strings.TrimPrefix(EFIStubPath, "/")))
	if named != "" {
		if strings.HasSuffix(named, ".deb") {
			return UnpackEFIStubDeb(named, cacheDir)
		}
		if _, err := os.Stat(named); err != nil {
			return "", fmt.Errorf("EFI stub: %w", err)
		}
		return named, nil
	}
	for _, p := range []string{cached, hostStub} {
		if p == "" {
			continue
		}
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("%w: neither %s nor %s is there; pass a linuxx64.efi.stub or Debian's systemd-boot-efi .deb "+
		"(`apt-get download systemd-boot-efi` fetches one)", ErrNoEFIStub, cached, hostStub)
}

// UnpackEFIStubDeb unpacks the x86-64 EFI stub from a Debian
// systemd-boot-efi package into cacheDir (at the path it has in the
// package) and returns its path.
func UnpackEFIStubDeb(deb, cacheDir string) (string, error) {
	want := strings.TrimPrefix(EFIStubPath, "/")
	dst := filepath.Join(cacheDir, filepath.FromSlash(want))
	found := false
	err := readDebData(deb, func(tr *tar.Reader) error {
		for {
			h, err := tr.Next()
			if errors.Is(err, io.EOF) {
				return nil
			}
			if err != nil {
				return err
			}
			if path.Clean(strings.TrimPrefix(h.Name, "./")) != want || h.Typeflag != tar.TypeReg {
				continue
			}
			if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
				return err
			}
			found = true
			return writeFile(dst, tr, 0o644)
		}
	})
	if err != nil {
		return "", fmt.Errorf("EFI stub package %s: %w", deb, err)
	}
	if !found {
		return "", fmt.Errorf("EFI stub package %s has no %s: is it systemd-boot-efi for amd64?", deb, EFIStubPath)
	}
	return dst, nil
}
