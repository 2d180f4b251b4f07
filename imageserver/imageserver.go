// Package imageserver serves this machine's Docker Engine images to VM
// nodes as a read-only registry (the pull half of the Distribution API):
// a node that lacks an image pulls it from here, so an image built with
// docker build runs in a VM cluster with no load step. Each image is
// exported once with the engine's save and kept until it changes.
package imageserver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// Engine is what the server needs of the engine.
type Engine interface {
	// ImageID is the engine's ID of an image; ok is false when it has none.
	ImageID(ctx context.Context, ref string) (id string, ok bool, err error)
	// Save writes a docker-save archive of the image.
	Save(ctx context.Context, ref string) (io.ReadCloser, error)
}

// Server answers registry pulls from the engine's images.
type Server struct {
	engine Engine
	dir    string

	mu sync.Mutex
	// byID are exported images by engine ID; blobs finds any of their
	// blobs by digest.
	byID  map[string]*exported
	blobs map[v1.Hash]*exported
}

type exported struct {
	img      v1.Image
	manifest []byte
	digest   v1.Hash
	path     string
}

// New serves engine's images, exporting them into dir.
func New(engine Engine, dir string) *Server {
	return &Server{engine: engine, dir: dir, byID: map[string]*exported{}, blobs: map[v1.Hash]*exported{}}
}

// Paths of the Distribution API it answers: /v2/, manifests and blobs.
var (
	manifestPath = regexp.MustCompile(`^/v2/(.+)/manifests/([^/]+)$`)
	blobPath     = regexp.MustCompile(`^/v2/(.+)/blobs/(sha256:[a-f0-9]{64})$`)
)

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		writeError(w, http.StatusMethodNotAllowed, "UNSUPPORTED", "this registry only serves pulls")
		return
	}
	switch p := r.URL.Path; {
	case p == "/v2/" || p == "/v2":
		w.Header().Set("Docker-Distribution-API-Version", "registry/2.0")
		w.WriteHeader(http.StatusOK)
	case manifestPath.MatchString(p):
		m := manifestPath.FindStringSubmatch(p)
		s.serveManifest(w, r, m[1], m[2])
	case blobPath.MatchString(p):
		m := blobPath.FindStringSubmatch(p)
		s.serveBlob(w, r, m[2])
	default:
		writeError(w, http.StatusNotFound, "NAME_UNKNOWN", "no such path")
	}
}

// reference is the engine's name for repository and tag (or digest).
func reference(repo, ref string) string {
	if strings.HasPrefix(ref, "sha256:") {
		return repo + "@" + ref
	}
	return repo + ":" + ref
}

func (s *Server) serveManifest(w http.ResponseWriter, r *http.Request, repo, ref string) {
	e, err := s.export(r.Context(), reference(repo, ref))
	if errors.Is(err, errUnknown) {
		writeError(w, http.StatusNotFound, "MANIFEST_UNKNOWN", err.Error())
		return
	}
	if err != nil {
		writeError(w, http.StatusInternalServerError, "UNKNOWN", err.Error())
		return
	}
	mt, err := e.img.MediaType()
	if err != nil {
		writeError(w, http.StatusInternalServerError, "UNKNOWN", err.Error())
		return
	}
	w.Header().Set("Content-Type", string(mt))
	w.Header().Set("Docker-Content-Digest", e.digest.String())
	w.Header().Set("Content-Length", fmt.Sprint(len(e.manifest)))
	if r.Method == http.MethodHead {
		return
	}
	_, _ = w.Write(e.manifest)
}

func (s *Server) serveBlob(w http.ResponseWriter, r *http.Request, digest string) {
	h, err := v1.NewHash(digest)
	if err != nil {
		writeError(w, http.StatusBadRequest, "DIGEST_INVALID", err.Error())
		return
	}
	s.mu.Lock()
	e := s.blobs[h]
	s.mu.Unlock()
	if e == nil {
		writeError(w, http.StatusNotFound, "BLOB_UNKNOWN", "ask for the image's manifest first")
		return
	}
	var rc io.ReadCloser
	var size int64
	if cfg, err := e.img.ConfigName(); err == nil && cfg == h {
		raw, err := e.img.RawConfigFile()
		if err != nil {
			writeError(w, http.StatusInternalServerError, "UNKNOWN", err.Error())
			return
		}
		rc, size = io.NopCloser(strings.NewReader(string(raw))), int64(len(raw))
	} else {
		l, err := e.img.LayerByDigest(h)
		if err == nil {
			size, err = l.Size()
		}
		if err == nil {
			rc, err = l.Compressed()
		}
		if err != nil {
			writeError(w, http.StatusInternalServerError, "UNKNOWN", err.Error())
			return
		}
	}
	defer rc.Close()
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Docker-Content-Digest", h.String())
	w.Header().Set("Content-Length", fmt.Sprint(size))
	if r.Method == http.MethodHead {
		return
	}
	_, _ = io.Copy(w, rc)
}

var errUnknown = errors.New("not in this machine's Docker Engine")

// export returns the image a reference names, exporting it from the
// engine the first time (and again when the name points elsewhere).
func (s *Server) export(ctx context.Context, ref string) (*exported, error) {
	id, ok, err := s.engine.ImageID(ctx, ref)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("image %s: %w", ref, errUnknown)
	}
	s.mu.Lock()
	e := s.byID[id]
	s.mu.Unlock()
	if e != nil {
		return e, nil
	}
	rc, err := s.engine.Save(ctx, ref)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	if err := os.MkdirAll(s.dir, 0o700); err != nil {
		return nil, err
	}
	f, err := os.CreateTemp(s.dir, "image-*.tar")
	if err != nil {
		return nil, err
	}
	_, err = io.Copy(f, rc)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = os.Remove(f.Name())
		return nil, fmt.Errorf("export %s: %w", ref, err)
	}
	path := f.Name()
	opener := func() (io.ReadCloser, error) { return os.Open(path) }
	// The archive holds the one image saved; its tags are the engine's.
	img, err := tarball.Image(opener, nil)
	if err != nil {
		_ = os.Remove(path)
		return nil, fmt.Errorf("export %s: %w", ref, err)
	}
	e = &exported{img: img, path: path}
	if e.manifest, err = img.RawManifest(); err == nil {
		e.digest, err = img.Digest()
	}
	var layers []v1.Layer
	if err == nil {
		layers, err = img.Layers()
	}
	if err != nil {
		_ = os.Remove(path)
		return nil, fmt.Errorf("export %s: %w", ref, err)
	}
	cfg, err := img.ConfigName()
	if err != nil {
		_ = os.Remove(path)
		return nil, fmt.Errorf("export %s: %w", ref, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.byID[id] = e
	s.blobs[cfg] = e
	for _, l := range layers {
		if d, err := l.Digest(); err == nil {
			s.blobs[d] = e
		}
	}
	return e, nil
}

// Close removes the exported archives.
func (s *Server) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, e := range s.byID {
		_ = os.Remove(e.path)
	}
	s.byID, s.blobs = map[string]*exported{}, map[v1.Hash]*exported{}
	return nil
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"errors": []map[string]string{{"code": code, "message": msg}}})
}

// Repository is the path under which a node asks this server for ref:
// the reference's registry (unless Docker Hub) and repository, so that
// the engine resolves it as the pod named it.
func Repository(ref string) (repo, tagOrDigest string, err error) {
	r, err := name.ParseReference(ref)
	if err != nil {
		return "", "", fmt.Errorf("parse image reference %q: %w", ref, err)
	}
	repo = r.Context().RepositoryStr()
	if reg := r.Context().RegistryStr(); reg != name.DefaultRegistry {
		repo = reg + "/" + repo
	}
	return repo, r.Identifier(), nil
}

// ArchiveDir is where a profile's server keeps its exports.
func ArchiveDir(profileDir string) string { return filepath.Join(profileDir, "image-server") }
