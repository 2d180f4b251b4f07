package imageserver

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fakeEngine holds docker-save archives by reference, as an engine's
// store would, and counts exports.
type fakeEngine struct {
	mu       sync.Mutex
	archives map[string][]byte
	ids      map[string]string
	saves    int
}

func (f *fakeEngine) ImageID(_ context.Context, ref string) (string, bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	id, ok := f.ids[ref]
	return id, ok, nil
}

func (f *fakeEngine) Save(_ context.Context, ref string) (io.ReadCloser, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.saves++
	return io.NopCloser(bytes.NewReader(f.archives[ref])), nil
}

func (f *fakeEngine) add(t *testing.T, ref string, img v1.Image) {
	t.Helper()
	tag, err := name.NewTag(ref)
	require.NoError(t, err)
	var buf bytes.Buffer
	require.NoError(t, tarball.Write(tag, img, &buf))
	id, err := img.ConfigName()
	require.NoError(t, err)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.archives[ref], f.ids[ref] = buf.Bytes(), id.String()
}

func TestPullThroughTheServer(t *testing.T) {
	img, err := random.Image(1024, 2)
	require.NoError(t, err)
	img, err = mutate.Config(img, v1.Config{Cmd: []string{"/app"}, Env: []string{"A=1"}})
	require.NoError(t, err)
	eng := &fakeEngine{archives: map[string][]byte{}, ids: map[string]string{}}
	// The engine knows it by the name a pod gives: repository and tag.
	eng.add(t, "minik-test/web:1", img)

	dir := t.TempDir()
	srv := New(eng, dir)
	ts := httptest.NewServer(srv)
	defer ts.Close()
	host := strings.TrimPrefix(ts.URL, "http://")

	repo, id, err := Repository("minik-test/web:1")
	require.NoError(t, err)
	ref, err := name.ParseReference(host+"/"+repo+":"+id, name.Insecure)
	require.NoError(t, err)
	pulled, err := remote.Image(ref)
	require.NoError(t, err)
	cfg, err := pulled.ConfigFile()
	require.NoError(t, err)
	assert.Equal(t, []string{"/app"}, cfg.Config.Cmd)
	want, err := img.ConfigName()
	require.NoError(t, err)
	got, err := pulled.ConfigName()
	require.NoError(t, err)
	assert.Equal(t, want, got, "the same image, by its config")
	layers, err := pulled.Layers()
	require.NoError(t, err)
	require.Len(t, layers, 2)
	for _, l := range layers {
		rc, err := l.Uncompressed()
		require.NoError(t, err)
		_, err = io.Copy(io.Discard, rc)
		require.NoError(t, err, "the layer's bytes match its digest")
		rc.Close()
	}
	// A second pull uses the export kept.
	_, err = remote.Image(ref)
	require.NoError(t, err)
	assert.Equal(t, 1, eng.saves)

	// An image the engine does not have is the registry's 404.
	missing, err := name.ParseReference(host+"/minik-test/absent:1", name.Insecure)
	require.NoError(t, err)
	_, err = remote.Image(missing)
	require.Error(t, err)
	res, err := http.Get(ts.URL + "/v2/minik-test/absent/manifests/1")
	require.NoError(t, err)
	res.Body.Close()
	assert.Equal(t, http.StatusNotFound, res.StatusCode)

	// Pulls only.
	req, err := http.NewRequest(http.MethodPut, ts.URL+"/v2/minik-test/web/manifests/2", strings.NewReader("{}"))
	require.NoError(t, err)
	res, err = http.DefaultClient.Do(req)
	require.NoError(t, err)
	res.Body.Close()
	assert.Equal(t, http.StatusMethodNotAllowed, res.StatusCode)

	require.NoError(t, srv.Close())
	left, err := os.ReadDir(dir)
	require.NoError(t, err)
	assert.Empty(t, left, "Close removes the exports")
}

func TestRepository(t *testing.T) {
	for _, tc := range []struct{ ref, repo, id string }{
		{"busybox", "library/busybox", "latest"},
		{"minik-test/web:1", "minik-test/web", "1"},
		{"docker.io/library/nginx:1.27", "library/nginx", "1.27"},
		{"ghcr.io/org/app:v2", "ghcr.io/org/app", "v2"},
		{"app@sha256:" + strings.Repeat("a", 64), "library/app", "sha256:" + strings.Repeat("a", 64)},
	} {
		repo, id, err := Repository(tc.ref)
		require.NoError(t, err, tc.ref)
		assert.Equal(t, tc.repo, repo, tc.ref)
		assert.Equal(t, tc.id, id, tc.ref)
	}
	_, _, err := Repository("Not A Reference")
	assert.Error(t, err)
}
