package conformance

import (
	"archive/tar"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"sort"
	"strings"
)

// rootfs is the file tree of an image, assembled from this machine's files
// (Debian's packages and the Go binaries built here), so that no image is
// pulled. Paths are absolute paths inside the image.
type rootfs struct {
	entries map[string]entry
}

type entry struct {
	typeflag byte
	mode     int64
	data     []byte
	link     string
}

func newRootfs() *rootfs {
	r := &rootfs{entries: map[string]entry{}}
	r.dir("/tmp", 0o1777)
	r.dir("/root", 0o700)
	r.dir("/etc", 0o755)
	return r
}

func (r *rootfs) dir(p string, mode int64) {
	r.entries[path.Clean(p)] = entry{typeflag: tar.TypeDir, mode: mode}
}

func (r *rootfs) file(p string, data []byte, mode int64) {
	r.entries[path.Clean(p)] = entry{typeflag: tar.TypeReg, mode: mode, data: data}
}

func (r *rootfs) symlink(p, target string) {
	r.entries[path.Clean(p)] = entry{typeflag: tar.TypeSymlink, mode: 0o777, link: target}
}

// hostFile copies a file of this machine (following symlinks) to p.
func (r *rootfs) hostFile(p, host string, mode int64) error {
	data, err := os.ReadFile(host)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			// Most come from Debian packages of this machine.
			return fmt.Errorf("image file %s: %w: the images are assembled from this machine's files; install the packages .ci/run installs (busybox-static, bind9-dnsutils, netcat-openbsd, nginx-light)", p, err)
		}
		return fmt.Errorf("image file %s: %w", p, err)
	}
	r.file(p, data, mode)
	return nil
}

// hostTree copies a folder of this machine to p.
func (r *rootfs) hostTree(p, host string) error {
	return filepath.WalkDir(host, func(name string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(host, name)
		if err != nil {
			return err
		}
		dst := path.Join(p, filepath.ToSlash(rel))
		if d.IsDir() {
			r.dir(dst, 0o755)
			return nil
		}
		info, err := os.Stat(name)
		if err != nil {
			return err
		}
		return r.hostFile(dst, name, int64(info.Mode().Perm()))
	})
}

// binary copies a program of this machine to p with every shared library
// it loads, found as the dynamic loader would (DT_NEEDED, DT_RUNPATH, the
// multiarch folders), so a dynamically linked Debian program runs in a
// FROM scratch image.
func (r *rootfs) binary(p, host string) error {
	if err := r.hostFile(p, host, 0o755); err != nil {
		return err
	}
	return r.libraries(host, map[string]bool{})
}

func (r *rootfs) libraries(host string, seen map[string]bool) error {
	f, err := elf.Open(host)
	if err != nil {
		return fmt.Errorf("read %s: %w", host, err)
	}
	defer f.Close()
	for _, prog := range f.Progs {
		if prog.Type != elf.PT_INTERP {
			continue
		}
		b, err := io.ReadAll(prog.Open())
		if err != nil {
			return fmt.Errorf("read the loader of %s: %w", host, err)
		}
		interp := strings.TrimRight(string(b), "\x00")
		if !seen[interp] {
			seen[interp] = true
			if err := r.hostFile(interp, interp, 0o755); err != nil {
				return err
			}
		}
	}
	needed, err := f.ImportedLibraries()
	if err != nil {
		return fmt.Errorf("read the libraries of %s: %w", host, err)
	}
	runpaths, _ := f.DynString(elf.DT_RUNPATH)
	rpaths, _ := f.DynString(elf.DT_RPATH)
	var dirs []string
	for _, rp := range append(runpaths, rpaths...) {
		for _, d := range strings.Split(rp, ":") {
			dirs = append(dirs, strings.ReplaceAll(d, "$ORIGIN", filepath.Dir(host)))
		}
	}
	dirs = append(dirs, libraryDirs...)
	for _, lib := range needed {
		found := ""
		for _, d := range dirs {
			if _, err := os.Stat(filepath.Join(d, lib)); err == nil {
				found = filepath.Join(d, lib)
				break
			}
		}
		if found == "" {
			return fmt.Errorf("%s needs %s, which is not in %v: install the Debian package that has it", host, lib, dirs)
		}
		if seen[found] {
			continue
		}
		seen[found] = true
		if err := r.hostFile(found, found, 0o755); err != nil {
			return err
		}
		if err := r.libraries(found, seen); err != nil {
			return err
		}
	}
	return nil
}

// libraryDirs are where Debian keeps shared libraries.
var libraryDirs = []string{
	"/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu",
	"/lib/aarch64-linux-gnu", "/usr/lib/aarch64-linux-gnu",
	"/lib64", "/usr/lib64", "/lib", "/usr/lib",
}

// busybox installs a static busybox at /bin/busybox and a symlink for each
// of its applets that no other file has taken.
func (r *rootfs) busybox(host string) error {
	if err := r.hostFile("/bin/busybox", host, 0o755); err != nil {
		return err
	}
	out, err := exec.Command(host, "--list-full").Output()
	if err != nil {
		return fmt.Errorf("list the busybox applets: %w", err)
	}
	// Where Debian installs each applet, and in /bin as well, where the
	// upstream busybox image has them all (specs run /bin/sysctl).
	for _, applet := range strings.Fields(string(out)) {
		for _, p := range []string{"/" + applet, "/bin/" + path.Base(applet)} {
			if _, taken := r.entries[p]; !taken {
				r.symlink(p, "/bin/busybox")
			}
		}
	}
	return nil
}

// users writes /etc/passwd and /etc/group: root, nobody and extra lines.
func (r *rootfs) users(passwd, group []string) {
	p := append([]string{"root:x:0:0:root:/root:/bin/sh", "nobody:x:65534:65534:nobody:/nonexistent:/bin/false"}, passwd...)
	g := append([]string{"root:x:0:", "nogroup:x:65534:"}, group...)
	r.file("/etc/passwd", []byte(strings.Join(p, "\n")+"\n"), 0o644)
	r.file("/etc/group", []byte(strings.Join(g, "\n")+"\n"), 0o644)
}

// writeTar writes the tree as a tar stream, parents before children, in a
// fixed order, so the same inputs give the same bytes.
func (r *rootfs) writeTar(w io.Writer) error {
	all := map[string]entry{}
	for p, e := range r.entries {
		all[p] = e
		for d := path.Dir(p); d != "/"; d = path.Dir(d) {
			if _, ok := all[d]; !ok {
				if _, ok := r.entries[d]; !ok {
					all[d] = entry{typeflag: tar.TypeDir, mode: 0o755}
				}
			}
		}
	}
	names := make([]string, 0, len(all))
	for p := range all {
		names = append(names, p)
	}
	sort.Strings(names)
	tw := tar.NewWriter(w)
	for _, p := range names {
		e := all[p]
		if e.typeflag == tar.TypeDir && p == "/" {
			continue
		}
		hdr := &tar.Header{Name: strings.TrimPrefix(p, "/"), Typeflag: e.typeflag, Mode: e.mode, Linkname: e.link, Format: tar.FormatPAX}
		if e.typeflag == tar.TypeDir {
			hdr.Name += "/"
		}
		if e.typeflag == tar.TypeReg {
			hdr.Size = int64(len(e.data))
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return fmt.Errorf("write %s: %w", p, err)
		}
		if e.typeflag == tar.TypeReg {
			if _, err := tw.Write(e.data); err != nil {
				return fmt.Errorf("write %s: %w", p, err)
			}
		}
	}
	return tw.Close()
}

var errNotLinux = errors.New("the conformance images are assembled from this machine's Linux programs: run on Linux")
