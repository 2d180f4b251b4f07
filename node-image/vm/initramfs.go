package vmimage

import (
	"compress/gzip"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"github.com/cavaliergopher/cpio"
)

// Paths in the initramfs the guest side reads.
const (
	// InitPath is the program the kernel runs first.
	InitPath = "/init"
	// ModulesOrderPath lists the modules to load, one path per line,
	// each after its dependencies.
	ModulesOrderPath = "/etc/minik/modules"
)

// File is one regular file of an initramfs, read from Source on the host
// or given as Data.
type File struct {
	Path   string
	Mode   fs.FileMode
	Source string
	Data   []byte
}

// Spec is what an initramfs holds.
type Spec struct {
	// Init is the host path of the static init program.
	Init string
	// Kernel and Modules: the modules (see ResolveModules) are copied from
	// the kernel's modules folder and listed in load order.
	Kernel  Kernel
	Modules []Module
	// Files are added as they are.
	Files []File
	// Uncompressed leaves the archive as it is: a large init (minik-node)
	// boots faster when the kernel need not inflate it under emulation.
	Uncompressed bool
}

// WriteInitramfs writes a gzip-compressed (unless spec.Uncompressed) cpio
// (newc) archive for the kernel to unpack as its first root: the init
// program, the modules and their load order, the folders the guest mounts
// on, and spec's files.
func WriteInitramfs(w io.Writer, spec Spec) error {
	files := []File{{Path: InitPath, Mode: 0o755, Source: spec.Init}}
	var order strings.Builder
	for _, m := range spec.Modules {
		p := path.Join("/lib/modules", spec.Kernel.Release, m.Path)
		files = append(files, File{Path: p, Mode: 0o644, Source: filepath.Join(spec.Kernel.ModulesDir, filepath.FromSlash(m.Path))})
		order.WriteString(p + "\n")
	}
	files = append(files, File{Path: ModulesOrderPath, Mode: 0o644, Data: []byte(order.String())})
	files = append(files, spec.Files...)
	mountPoints := []string{"/dev", "/proc", "/sys", "/run", "/tmp", "/etc", "/newroot"}
	if spec.Uncompressed {
		return writeCPIO(w, files, mountPoints)
	}
	zw, err := gzip.NewWriterLevel(w, gzip.BestSpeed)
	if err != nil {
		return err
	}
	if err := writeCPIO(zw, files, mountPoints); err != nil {
		return err
	}
	return zw.Close()
}

// WriteFiles writes an uncompressed cpio archive of files and their
// folders. Appended to an initramfs, it adds to what the kernel unpacks
// (the kernel reads archives one after another), so a per-node part need
// not copy the shared one.
func WriteFiles(w io.Writer, files []File) error {
	return writeCPIO(w, files, nil)
}

func writeCPIO(w io.Writer, files []File, extraDirs []string) error {
	var err error
	cw := cpio.NewWriter(w)
	// Parents before children; the kernel needs no other order.
	dirs := map[string]bool{}
	for _, d := range extraDirs {
		dirs[d] = true
	}
	for _, f := range files {
		for d := path.Dir(f.Path); d != "/" && d != "."; d = path.Dir(d) {
			dirs[d] = true
		}
	}
	sorted := make([]string, 0, len(dirs))
	for d := range dirs {
		sorted = append(sorted, d)
	}
	sort.Strings(sorted)
	for _, d := range sorted {
		if err := cw.WriteHeader(&cpio.Header{Name: strings.TrimPrefix(d, "/"), Mode: cpio.TypeDir | 0o755}); err != nil {
			return fmt.Errorf("write initramfs: %w", err)
		}
	}
	// No device nodes: this cpio writer records no device numbers, and
	// the guest mounts devtmpfs on /dev before it writes anything.
	for _, f := range files {
		data := f.Data
		if f.Source != "" {
			data, err = os.ReadFile(f.Source)
			if err != nil {
				return fmt.Errorf("write initramfs: %w", err)
			}
		}
		h := &cpio.Header{Name: strings.TrimPrefix(f.Path, "/"), Mode: cpio.TypeReg | cpio.FileMode(f.Mode.Perm()), Size: int64(len(data))}
		if err := cw.WriteHeader(h); err != nil {
			return fmt.Errorf("write initramfs: %w", err)
		}
		if _, err := cw.Write(data); err != nil {
			return fmt.Errorf("write initramfs: %w", err)
		}
	}
	if err := cw.Close(); err != nil {
		return fmt.Errorf("write initramfs: %w", err)
	}
	return nil
}
