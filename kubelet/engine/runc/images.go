//go:build linux

package runc

import (
	"archive/tar"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"

	securejoin "github.com/cyphar/filepath-securejoin"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"golang.org/x/sys/unix"

	"minik.dev/minik/imageserver"
)

// ErrImageNotLoaded is wrapped by PullImage's error: this engine pulls
// from nowhere, its images are loaded.
var ErrImageNotLoaded = errors.New("image not loaded on the node")

// imageStore keeps images unpacked, one root per image config digest, and
// which names point at which.
type imageStore struct {
	dir string
	mu  sync.Mutex
	// names maps a normalized reference to an image ID (config digest hex).
	names map[string]string
}

// image is what a container needs of an image.
type image struct {
	ID     string
	Rootfs string
	Config v1.Config
}

func openImageStore(dir string) (*imageStore, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create image store: %w", err)
	}
	s := &imageStore{dir: dir, names: map[string]string{}}
	b, err := os.ReadFile(filepath.Join(dir, "names.json"))
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return nil, fmt.Errorf("read image names: %w", err)
	default:
		if err := json.Unmarshal(b, &s.names); err != nil {
			return nil, fmt.Errorf("read image names %s: %w", filepath.Join(dir, "names.json"), err)
		}
	}
	return s, nil
}

// normalize is the reference as the Docker Engine resolves it: "busybox"
// is docker.io/library/busybox:latest.
func normalize(ref string) (string, error) {
	r, err := name.ParseReference(ref)
	if err != nil {
		return "", fmt.Errorf("parse image reference %q: %w", ref, err)
	}
	return r.Name(), nil
}

// lookup returns the image a reference names, if loaded.
func (s *imageStore) lookup(ref string) (image, bool, error) {
	n, err := normalize(ref)
	if err != nil {
		return image{}, false, err
	}
	s.mu.Lock()
	id, ok := s.names[n]
	s.mu.Unlock()
	if !ok {
		return image{}, false, nil
	}
	b, err := os.ReadFile(filepath.Join(s.dir, id, "config.json"))
	if err != nil {
		return image{}, false, fmt.Errorf("read image %s: %w", ref, err)
	}
	var cfg v1.ConfigFile
	if err := json.Unmarshal(b, &cfg); err != nil {
		return image{}, false, fmt.Errorf("read image %s: %w", ref, err)
	}
	return image{ID: "sha256:" + id, Rootfs: filepath.Join(s.dir, id, "rootfs"), Config: cfg.Config}, true, nil
}

// load unpacks every tagged image of a docker-save archive (the format
// `docker save` and `docker image save` write, Docker's own or its OCI
// layout) and returns the references it now knows.
func (s *imageStore) load(ctx context.Context, r io.Reader) ([]string, error) {
	tmp, err := os.CreateTemp(s.dir, "load-*.tar")
	if err != nil {
		return nil, fmt.Errorf("load images: %w", err)
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	if _, err := io.Copy(tmp, r); err != nil {
		return nil, fmt.Errorf("load images: receive archive: %w", err)
	}
	opener := func() (io.ReadCloser, error) { return os.Open(tmp.Name()) }
	manifest, err := tarball.LoadManifest(opener)
	if err != nil {
		return nil, fmt.Errorf("load images: not a docker-save archive: %w", err)
	}
	var loaded []string
	for _, d := range manifest {
		for _, t := range d.RepoTags {
			if err := ctx.Err(); err != nil {
				return loaded, err
			}
			tag, err := name.NewTag(t)
			if err != nil {
				return loaded, fmt.Errorf("load images: tag %q: %w", t, err)
			}
			img, err := tarball.Image(opener, &tag)
			if err != nil {
				return loaded, fmt.Errorf("load image %s: %w", t, err)
			}
			id, err := s.unpack(img)
			if err != nil {
				return loaded, fmt.Errorf("load image %s: %w", t, err)
			}
			if err := s.name(tag.Name(), id); err != nil {
				return loaded, err
			}
			loaded = append(loaded, tag.Name())
		}
	}
	if len(loaded) == 0 {
		return nil, errors.New("load images: the archive has no tagged image (docker save NAME:TAG)")
	}
	return loaded, nil
}

// unpack writes an image's flattened filesystem and config under its
// config digest, once.
func (s *imageStore) unpack(img v1.Image) (string, error) {
	digest, err := img.ConfigName()
	if err != nil {
		return "", err
	}
	id := digest.Hex
	dir := filepath.Join(s.dir, id)
	if _, err := os.Stat(dir); err == nil {
		return id, nil
	}
	raw, err := img.RawConfigFile()
	if err != nil {
		return "", err
	}
	tmp, err := os.MkdirTemp(s.dir, "unpack-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	rootfs := filepath.Join(tmp, "rootfs")
	if err := os.Mkdir(rootfs, 0o755); err != nil {
		return "", err
	}
	rc := mutate.Extract(img)
	defer rc.Close()
	if err := untar(tar.NewReader(rc), rootfs); err != nil {
		return "", fmt.Errorf("unpack layers: %w", err)
	}
	if err := os.WriteFile(filepath.Join(tmp, "config.json"), raw, 0o600); err != nil {
		return "", err
	}
	if err := os.Rename(tmp, dir); err != nil {
		return "", err
	}
	return id, nil
}

// errNotOnHost is the image server's answer for an image it does not have.
var errNotOnHost = errors.New("not on the host")

// pull takes ref from the host's image server (see package imageserver)
// and unpacks it under the name ref has.
func (s *imageStore) pull(ctx context.Context, server, ref string) error {
	repo, id, err := imageserver.Repository(ref)
	if err != nil {
		return err
	}
	sep := ":"
	if strings.HasPrefix(id, "sha256:") {
		sep = "@"
	}
	from, err := name.ParseReference(server+"/"+repo+sep+id, name.Insecure)
	if err != nil {
		return fmt.Errorf("pull image %s: %w", ref, err)
	}
	img, err := remote.Image(from, remote.WithContext(ctx))
	var terr *transport.Error
	if errors.As(err, &terr) && terr.StatusCode == http.StatusNotFound {
		return fmt.Errorf("pull image %s: %w", ref, errNotOnHost)
	}
	if err != nil {
		return fmt.Errorf("pull image %s from the host: %w", ref, err)
	}
	idHex, err := s.unpack(img)
	if err != nil {
		return fmt.Errorf("pull image %s: %w", ref, err)
	}
	n, err := normalize(ref)
	if err != nil {
		return err
	}
	return s.name(n, idHex)
}

// name points ref at an image and saves the names.
func (s *imageStore) name(ref, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.names[ref] = id
	b, err := json.MarshalIndent(s.names, "", "  ")
	if err != nil {
		return err
	}
	tmp := filepath.Join(s.dir, "names.json.tmp")
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return fmt.Errorf("save image names: %w", err)
	}
	if err := os.Rename(tmp, filepath.Join(s.dir, "names.json")); err != nil {
		return fmt.Errorf("save image names: %w", err)
	}
	return nil
}

// untar writes a flattened image filesystem into root. Every path is
// resolved inside root (a symbolic link in the image cannot send a later
// entry outside it); owners and modes are kept, device nodes that cannot
// be made here are skipped (runc gives containers their own /dev).
func untar(tr *tar.Reader, root string) error {
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		rel := filepath.Clean("/" + h.Name)
		if rel == "/" {
			continue
		}
		// The parent is resolved inside root; the entry itself is not
		// followed (it may be a symbolic link being replaced).
		parent, err := securejoin.SecureJoin(root, filepath.Dir(rel))
		if err != nil {
			return fmt.Errorf("%s: %w", h.Name, err)
		}
		if err := os.MkdirAll(parent, 0o755); err != nil {
			return fmt.Errorf("%s: %w", h.Name, err)
		}
		target := filepath.Join(parent, filepath.Base(rel))
		mode := os.FileMode(h.Mode & 0o7777)
		switch h.Typeflag {
		case tar.TypeDir:
			if fi, err := os.Lstat(target); err != nil || !fi.IsDir() {
				_ = os.RemoveAll(target)
				if err := os.Mkdir(target, 0o755); err != nil {
					return fmt.Errorf("%s: %w", h.Name, err)
				}
			}
		case tar.TypeReg:
			_ = os.RemoveAll(target)
			f, err := os.OpenFile(target, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
			if err != nil {
				return fmt.Errorf("%s: %w", h.Name, err)
			}
			_, err = io.Copy(f, tr)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return fmt.Errorf("%s: %w", h.Name, err)
			}
		case tar.TypeSymlink:
			_ = os.RemoveAll(target)
			if err := os.Symlink(h.Linkname, target); err != nil {
				return fmt.Errorf("%s: %w", h.Name, err)
			}
		case tar.TypeLink:
			src, err := securejoin.SecureJoin(root, filepath.Clean("/"+h.Linkname))
			if err != nil {
				return fmt.Errorf("%s: %w", h.Name, err)
			}
			_ = os.RemoveAll(target)
			if err := os.Link(src, target); err != nil {
				return fmt.Errorf("%s: %w", h.Name, err)
			}
		case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
			_ = os.RemoveAll(target)
			kind := map[byte]uint32{tar.TypeChar: unix.S_IFCHR, tar.TypeBlock: unix.S_IFBLK, tar.TypeFifo: unix.S_IFIFO}[h.Typeflag]
			if err := unix.Mknod(target, kind|uint32(mode.Perm()), int(unix.Mkdev(uint32(h.Devmajor), uint32(h.Devminor)))); err != nil {
				continue
			}
		default:
			// Extended headers and the like carry no file.
			continue
		}
		if err := os.Lchown(target, h.Uid, h.Gid); err != nil {
			return fmt.Errorf("%s: %w", h.Name, err)
		}
		if h.Typeflag != tar.TypeSymlink && h.Typeflag != tar.TypeLink {
			// Chmod after chown: chown clears setuid and setgid bits.
			if err := os.Chmod(target, mode.Perm()|specialBits(h.Mode)); err != nil {
				return fmt.Errorf("%s: %w", h.Name, err)
			}
		}
	}
}

// specialBits are tar's setuid, setgid and sticky bits as os.FileMode's.
func specialBits(m int64) os.FileMode {
	var out os.FileMode
	if m&0o4000 != 0 {
		out |= os.ModeSetuid
	}
	if m&0o2000 != 0 {
		out |= os.ModeSetgid
	}
	if m&0o1000 != 0 {
		out |= os.ModeSticky
	}
	return out
}

// imageUser resolves an image's or a pod's user ("name", "uid",
// "uid:gid", "name:group") against the image's /etc/passwd and /etc/group.
func imageUser(rootfs, user string) (uid, gid uint32, err error) {
	if user == "" {
		return 0, 0, nil
	}
	u, g, hasGroup := strings.Cut(user, ":")
	uid, gid, err = lookupID(rootfs, "/etc/passwd", u, true)
	if err != nil {
		return 0, 0, err
	}
	if hasGroup {
		gid, _, err = lookupID(rootfs, "/etc/group", g, false)
		if err != nil {
			return 0, 0, err
		}
	}
	return uid, gid, nil
}

// lookupID finds a numeric ID or a name in a passwd or group file of the
// image; for passwd it also returns the user's primary group.
func lookupID(rootfs, file, v string, passwd bool) (id, group uint32, err error) {
	var n uint64
	numeric := false
	if _, serr := fmt.Sscanf(v, "%d", &n); serr == nil && fmt.Sprint(n) == v {
		numeric = true
	}
	path, err := securejoin.SecureJoin(rootfs, file)
	if err != nil {
		return 0, 0, err
	}
	b, rerr := os.ReadFile(path)
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Split(line, ":")
		if len(f) < 3 {
			continue
		}
		if f[0] != v && (!numeric || f[2] != v) {
			continue
		}
		var i, g uint64
		if _, err := fmt.Sscanf(f[2], "%d", &i); err != nil {
			continue
		}
		if passwd && len(f) > 3 {
			_, _ = fmt.Sscanf(f[3], "%d", &g)
		}
		return uint32(i), uint32(g), nil
	}
	if numeric {
		return uint32(n), 0, nil
	}
	if rerr != nil {
		return 0, 0, fmt.Errorf("user %q: the image has no %s", v, file)
	}
	return 0, 0, fmt.Errorf("user %q is not in the image's %s", v, file)
}
