package efidisk

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"time"
)

// FooterSize is the size of a VHD footer: a fixed VHD is the raw disk
// followed by it.
const FooterSize = 512

// Footer is the VHD footer's content that matters here (Microsoft's
// "Virtual Hard Disk Image Format Specification", the hard disk footer).
type Footer struct {
	// Size is the disk's size in bytes (original and current size).
	Size int64
	// Fixed is true for a fixed disk (type 2).
	Fixed bool
	// UniqueID identifies the disk.
	UniqueID [16]byte
	// Created is the time stamp (seconds since 2000-01-01 UTC).
	Created time.Time
	// Cylinders, Heads and SectorsPerTrack are the CHS geometry the
	// specification derives from the size.
	Cylinders       uint16
	Heads           uint8
	SectorsPerTrack uint8
}

var (
	vhdCookie = []byte("conectix")
	vhdEpoch  = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)
)

// ErrNotVHD is returned for a footer that is not a VHD footer.
var ErrNotVHD = errors.New("not a VHD footer")

// VHDFooter is the footer of a fixed VHD of size bytes (a multiple of 512).
func VHDFooter(size int64, id [16]byte, created time.Time) ([FooterSize]byte, error) {
	var b [FooterSize]byte
	if size <= 0 || size%512 != 0 {
		return b, fmt.Errorf("VHD footer: size %d is not a positive multiple of 512", size)
	}
	copy(b[0:8], vhdCookie)
	binary.BigEndian.PutUint32(b[8:], 2)           // features: reserved bit, always set
	binary.BigEndian.PutUint32(b[12:], 0x00010000) // file format version 1.0
	binary.BigEndian.PutUint64(b[16:], ^uint64(0)) // data offset: none for a fixed disk
	binary.BigEndian.PutUint32(b[24:], uint32(created.Sub(vhdEpoch)/time.Second))
	copy(b[28:32], "mnik")                         // creator application
	binary.BigEndian.PutUint32(b[32:], 0x00010000) // creator version
	copy(b[36:40], "Wi2k")                         // creator host OS: the format's value for Windows
	binary.BigEndian.PutUint64(b[40:], uint64(size))
	binary.BigEndian.PutUint64(b[48:], uint64(size))
	c, h, s := chs(size / 512)
	binary.BigEndian.PutUint16(b[56:], c)
	b[58], b[59] = h, s
	binary.BigEndian.PutUint32(b[60:], 2) // disk type: fixed
	copy(b[68:84], id[:])
	binary.BigEndian.PutUint32(b[64:], checksum(b[:]))
	return b, nil
}

// ReadVHDFooter parses and checks a footer.
func ReadVHDFooter(b []byte) (Footer, error) {
	if len(b) != FooterSize || !bytes.Equal(b[0:8], vhdCookie) {
		return Footer{}, ErrNotVHD
	}
	if got, want := binary.BigEndian.Uint32(b[64:]), checksum(b); got != want {
		return Footer{}, fmt.Errorf("%w: checksum %#x, want %#x", ErrNotVHD, got, want)
	}
	f := Footer{
		Size:            int64(binary.BigEndian.Uint64(b[48:])),
		Fixed:           binary.BigEndian.Uint32(b[60:]) == 2,
		Created:         vhdEpoch.Add(time.Duration(binary.BigEndian.Uint32(b[24:])) * time.Second),
		Cylinders:       binary.BigEndian.Uint16(b[56:]),
		Heads:           b[58],
		SectorsPerTrack: b[59],
	}
	copy(f.UniqueID[:], b[68:84])
	return f, nil
}

// ReadVHDFooterFrom reads the footer at the end of a fixed VHD of size bytes.
func ReadVHDFooterFrom(r io.ReaderAt, fileSize int64) (Footer, error) {
	b := make([]byte, FooterSize)
	if _, err := r.ReadAt(b, fileSize-FooterSize); err != nil {
		return Footer{}, fmt.Errorf("read the VHD footer: %w", err)
	}
	return ReadVHDFooter(b)
}

// checksum is the one's complement of the sum of the footer's bytes,
// without its own four.
func checksum(b []byte) uint32 {
	var sum uint32
	for i, c := range b {
		if i >= 64 && i < 68 {
			continue
		}
		sum += uint32(c)
	}
	return ^sum
}

// chs is the specification's algorithm for the geometry of a disk of
// sectors 512-byte sectors.
func chs(sectors int64) (uint16, uint8, uint8) {
	const maxSectors = 65535 * 16 * 255
	if sectors > maxSectors {
		sectors = maxSectors
	}
	var spt, heads, cth int64
	if sectors >= 65535*16*63 {
		spt, heads = 255, 16
		cth = sectors / spt
	} else {
		spt = 17
		cth = sectors / spt
		heads = (cth + 1023) / 1024
		if heads < 4 {
			heads = 4
		}
		if cth >= heads*1024 || heads > 16 {
			spt, heads = 31, 16
			cth = sectors / spt
		}
		if cth >= heads*1024 {
			spt, heads = 63, 16
			cth = sectors / spt
		}
	}
	return uint16(cth / heads), uint8(heads), uint8(spt)
}
