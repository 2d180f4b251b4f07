package vmimage

import (
	"debug/elf"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
)

// LibraryDirs are where a host program's shared libraries are looked for,
// in order: Debian's multiarch folders first.
var LibraryDirs = []string{
	"/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib64", "/usr/lib64", "/lib", "/usr/lib",
}

// HostProgram is a program of the host as files of an initramfs: the
// program at the same path, its ELF interpreter and every shared library
// it needs, directly or through another, each at the path it has on the
// host (which the interpreter searches). A static program is one file.
func HostProgram(program string) ([]File, error) {
	abs, err := filepath.Abs(program)
	if err != nil {
		return nil, err
	}
	return programFiles("", filepath.ToSlash(abs))
}

// programFiles is the program at the slash-separated path program of root
// ("" is the host's), with its interpreter and libraries, as files at
// their paths in root.
func programFiles(root, program string) ([]File, error) {
	inRoot := func(p string) string { return filepath.Join(root, filepath.FromSlash(p)) }
	if root == "" {
		inRoot = filepath.FromSlash
	}
	files := []File{{Path: program, Mode: 0o755, Source: inRoot(program)}}
	seen := map[string]bool{}
	queue := []string{program}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		interp, needed, err := elfDeps(inRoot(p))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", program, err)
		}
		if interp != "" && !seen[interp] {
			seen[interp] = true
			if _, err := os.Stat(inRoot(interp)); err != nil {
				return nil, fmt.Errorf("%s: interpreter %s: %w", program, interp, err)
			}
			files = append(files, File{Path: interp, Mode: 0o755, Source: inRoot(interp)})
		}
		for _, lib := range needed {
			if seen[lib] {
				continue
			}
			seen[lib] = true
			found := ""
			for _, dir := range LibraryDirs {
				if _, err := os.Stat(inRoot(path.Join(dir, lib))); err == nil {
					found = path.Join(dir, lib)
					break
				}
			}
			if found == "" {
				return nil, fmt.Errorf("%s: shared library %s not found in %v", program, lib, LibraryDirs)
			}
			files = append(files, File{Path: found, Mode: 0o755, Source: inRoot(found)})
			queue = append(queue, found)
		}
	}
	return files, nil
}

// elfDeps reads an ELF file's interpreter and the libraries it names.
func elfDeps(p string) (interp string, needed []string, err error) {
	f, err := elf.Open(p)
	if err != nil {
		return "", nil, err
	}
	defer f.Close()
	for _, prog := range f.Progs {
		if prog.Type != elf.PT_INTERP {
			continue
		}
		b := make([]byte, prog.Filesz)
		if _, err := prog.ReadAt(b, 0); err != nil {
			return "", nil, err
		}
		if len(b) > 0 && b[len(b)-1] == 0 {
			b = b[:len(b)-1]
		}
		interp = string(b)
	}
	needed, err = f.ImportedLibraries()
	if err != nil && !errors.Is(err, elf.ErrNoSymbols) {
		return "", nil, err
	}
	return interp, needed, nil
}
