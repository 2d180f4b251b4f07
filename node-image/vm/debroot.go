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

// UnpackDebs unpacks the files of Debian packages (their data.tar.xz)
// into root as they would be installed: how a machine that is not Debian
// (a Windows host) gets programs for its VM nodes, such as runc with
// libseccomp and libc. Symbolic links become copies of the files they
// point to within root, so the tree needs no symbolic links of the host.
func UnpackDebs(debs []string, root string) error {
	links := map[string]string{} // in-root path -> in-root target
	for _, deb := range debs {
		err := readDebData(deb, func(tr *tar.Reader) error { return untarRoot(tr, root, links) })
		if err != nil {
			return fmt.Errorf("package %s: %w", deb, err)
		}
	}
	// A link may point to a link: resolve every chain in root.
	for link := range links {
		target, err := resolveLink(links, link)
		if err != nil {
			return err
		}
		src := filepath.Join(root, filepath.FromSlash(target))
		st, err := os.Stat(src)
		if err != nil || st.IsDir() {
			continue // a link to a folder or to another package's file
		}
		in, err := os.Open(src)
		if err != nil {
			return err
		}
		dst := filepath.Join(root, filepath.FromSlash(link))
		err = os.MkdirAll(filepath.Dir(dst), 0o755)
		if err == nil {
			err = writeFile(dst, in, st.Mode().Perm())
		}
		in.Close()
		if err != nil {
			return fmt.Errorf("link %s: %w", link, err)
		}
	}
	return nil
}

// resolveLink follows link through links to a path that is no link.
func resolveLink(links map[string]string, link string) (string, error) {
	p := link
	for range 40 {
		if target, ok := links[p]; ok {
			p = target
			continue
		}
		// A folder of the path may be a link too (/lib64 -> /usr/lib64).
		moved := false
		for dir := path.Dir(p); dir != "/"; dir = path.Dir(dir) {
			if target, ok := links[dir]; ok {
				p = path.Join(target, strings.TrimPrefix(p, dir))
				moved = true
				break
			}
		}
		if !moved {
			return p, nil
		}
	}
	return "", fmt.Errorf("link %s: too many levels of links", link)
}

// untarRoot writes the package's folders and files under root and notes
// its links (targets made absolute within root) in links.
func untarRoot(tr *tar.Reader, root string, links map[string]string) error {
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		name := path.Clean(strings.TrimPrefix(h.Name, "./"))
		if name == "." {
			continue
		}
		if !filepath.IsLocal(filepath.FromSlash(name)) {
			return fmt.Errorf("unsafe path %q", h.Name)
		}
		dst := filepath.Join(root, filepath.FromSlash(name))
		if h.Typeflag == tar.TypeSymlink {
			target := h.Linkname
			if !path.IsAbs(target) {
				target = path.Join("/", path.Dir(name), target)
			}
			links["/"+name] = path.Clean(target)
			continue
		}
		if err := writeEntry(tr, h, dst); err != nil {
			return err
		}
	}
}

// ProgramIn is HostProgram for a program of root (a tree such as
// UnpackDebs makes), named by its path inside root: the files carry their
// paths inside root, which the interpreter searches in the VM.
func ProgramIn(root, program string) ([]File, error) {
	return programFiles(root, path.Clean("/"+filepath.ToSlash(program)))
}
