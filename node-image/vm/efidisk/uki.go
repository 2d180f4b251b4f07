package efidisk

import (
	"bytes"
	"debug/pe"
	"encoding/binary"
	"fmt"
	"io"
)

// UKI is what a unified kernel image holds besides its stub: the kernel
// (an x86 bzImage with an EFI stub), the initramfs and the kernel command
// line, each a PE section of the one file the firmware starts.
type UKI struct {
	Kernel  []byte
	Initrd  []byte
	Cmdline string
	// OSRelease is an os-release file for boot menus (optional).
	OSRelease string
}

// PE section flags of the added sections: initialized, read-only data.
const sectionData = pe.IMAGE_SCN_CNT_INITIALIZED_DATA | pe.IMAGE_SCN_MEM_READ

// WriteUKI writes a unified kernel image: the EFI stub (systemd-stub, such
// as Debian's systemd-boot-efi linuxx64.efi.stub) with the sections
// .osrel, .cmdline, .initrd and .linux added after its own, as ukify and
// the objcopy recipe of the UAPI group's UKI specification lay them out.
// The stub finds the sections in its loaded image, hands the initramfs to
// the kernel (LoadFile2) and boots it with the command line.
func WriteUKI(w io.Writer, stub []byte, u UKI) error {
	if len(u.Kernel) == 0 {
		return fmt.Errorf("unified kernel image: no kernel")
	}
	f, err := pe.NewFile(bytes.NewReader(stub))
	if err != nil {
		return fmt.Errorf("unified kernel image: the EFI stub: %w", err)
	}
	defer f.Close()
	oh, ok := f.OptionalHeader.(*pe.OptionalHeader64)
	if !ok || f.Machine != pe.IMAGE_FILE_MACHINE_AMD64 {
		return fmt.Errorf("unified kernel image: the EFI stub is not an x86-64 PE32+ image")
	}
	peOff := int(binary.LittleEndian.Uint32(stub[0x3c:]))
	sectTable := peOff + 4 + 20 + int(f.SizeOfOptionalHeader)
	var sections []struct {
		name string
		data []byte
	}
	if u.OSRelease != "" {
		sections = append(sections, struct {
			name string
			data []byte
		}{".osrel", []byte(u.OSRelease)})
	}
	sections = append(sections, []struct {
		name string
		data []byte
	}{{".cmdline", append([]byte(u.Cmdline), 0)}, {".initrd", u.Initrd}, {".linux", u.Kernel}}...)
	need := sectTable + (len(f.Sections)+len(sections))*40
	if need > int(oh.SizeOfHeaders) {
		return fmt.Errorf("unified kernel image: the EFI stub's headers have no room for %d more sections", len(sections))
	}
	for _, s := range f.Sections {
		switch s.Name {
		case ".linux", ".initrd", ".cmdline", ".osrel":
			return fmt.Errorf("unified kernel image: the EFI stub already has a %s section: pass the bare stub", s.Name)
		}
	}

	out := bytes.Clone(stub)
	fileAlign, sectAlign := oh.FileAlignment, oh.SectionAlignment
	// The kernel and initramfs go on page boundaries at least.
	if sectAlign < 4096 {
		sectAlign = 4096
	}
	var va uint32
	for _, s := range f.Sections {
		va = max(va, s.VirtualAddress+max(s.VirtualSize, s.Size))
	}
	off := uint32(len(out))
	for i, s := range sections {
		va = alignUp(va, sectAlign)
		off = alignUp(off, fileAlign)
		raw := alignUp(uint32(len(s.data)), fileAlign)
		var h [40]byte
		copy(h[0:8], s.name)
		binary.LittleEndian.PutUint32(h[8:], uint32(len(s.data))) // VirtualSize
		binary.LittleEndian.PutUint32(h[12:], va)                 // VirtualAddress
		binary.LittleEndian.PutUint32(h[16:], raw)                // SizeOfRawData
		binary.LittleEndian.PutUint32(h[20:], off)                // PointerToRawData
		binary.LittleEndian.PutUint32(h[36:], sectionData)        // Characteristics
		copy(out[sectTable+(len(f.Sections)+i)*40:], h[:])
		out = append(out, make([]byte, int(off)-len(out))...)
		out = append(out, s.data...)
		out = append(out, make([]byte, int(raw)-len(s.data))...)
		va += uint32(len(s.data))
		off += raw
	}
	// NumberOfSections, SizeOfImage; the checksum stays 0 (unchecked
	// without Secure Boot, and Hyper-V's VMs run with it off).
	binary.LittleEndian.PutUint16(out[peOff+6:], uint16(len(f.Sections)+len(sections)))
	optOff := peOff + 24
	binary.LittleEndian.PutUint32(out[optOff+56:], alignUp(va, oh.SectionAlignment))
	binary.LittleEndian.PutUint32(out[optOff+64:], 0)
	_, err = w.Write(out)
	return err
}

func alignUp(v, a uint32) uint32 {
	if a == 0 {
		return v
	}
	return (v + a - 1) / a * a
}
