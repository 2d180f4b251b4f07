package containerimage

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/moby/moby/client"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"minik.dev/minik/node-image/container/containerimagetest"
)

func TestTag(t *testing.T) {
	for in, want := range map[string]string{
		"v0.1.0":                 "v0.1.0",
		"v0.0.0-dev":             "v0.0.0-dev",
		"v1.2.3+meta/x":          "v1.2.3-meta-x",
		"":                       "dev",
		"-dirty":                 "v-dirty",
		strings.Repeat("a", 200): strings.Repeat("a", 128),
	} {
		assert.Equal(t, want, Tag(in), "Tag(%q)", in)
	}
	assert.Equal(t, "minik-node:v0.1.0", Ref("v0.1.0"))
}

func TestCheckELFRejectsWhatCannotRunFromScratch(t *testing.T) {
	notELF := filepath.Join(t.TempDir(), "minik-node")
	require.NoError(t, os.WriteFile(notELF, []byte("#!/bin/sh\n"), 0o755))
	err := checkELF(notELF, "x86_64")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "CGO_ENABLED=0")

	bin := containerimagetest.StaticBinary(t, "")
	host := map[string]string{"amd64": "x86_64", "arm64": "aarch64"}
	arch, ok := host[goarch(t, bin)]
	if !ok {
		t.Skip("test binary's architecture is not one minik supports")
	}
	require.NoError(t, checkELF(bin, arch))
	other := "aarch64"
	if arch == "aarch64" {
		other = "x86_64"
	}
	err = checkELF(bin, other)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "the engine runs "+other)

	// A dynamically linked executable of the host, if it has one.
	for _, p := range []string{"/bin/ls", "/usr/bin/env"} {
		if err := checkELF(p, arch); err != nil && strings.Contains(err.Error(), "dynamically linked") {
			return
		}
	}
	t.Log("no dynamically linked host binary found; that case is untested here")
}

// goarch names the architecture the test binary was built for.
func goarch(t *testing.T, bin string) string {
	t.Helper()
	for arch, want := range map[string]string{"amd64": "x86_64", "arm64": "aarch64"} {
		if checkELF(bin, want) == nil {
			return arch
		}
	}
	return ""
}

func TestReadBuildStream(t *testing.T) {
	ok := `{"stream":"Step 1/3 : FROM scratch\n"}` + "\n" + `{"stream":" ---\u003e \n"}` + "\n" + `{"aux":{"ID":"sha256:abc"}}` + "\n"
	require.NoError(t, readBuildStream(strings.NewReader(ok)))

	failed := `{"stream":"Step 2/3 : COPY rootfs/ /\n"}` + "\n" + `{"errorDetail":{"message":"no space left on device"},"error":"no space left on device"}` + "\n"
	err := readBuildStream(strings.NewReader(failed))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "no space left on device")
	assert.Contains(t, err.Error(), "Step 2/3")

	legacy := `{"error":"legacy failure"}` + "\n"
	assert.EqualError(t, readBuildStream(strings.NewReader(legacy)), "legacy failure")

	assert.Error(t, readBuildStream(strings.NewReader(`{"stream":`)), "a cut stream is an error")
}

func TestEnsureBuildsReusesAndRebuilds(t *testing.T) {
	api := containerimagetest.Client(t)
	ctx := context.Background()
	version := "test-" + randomHex(t)
	ref := Ref(version)
	var ids []string
	t.Cleanup(func() {
		for _, id := range append(ids, ref) {
			_, _ = api.ImageRemove(context.Background(), id, client.ImageRemoveOptions{Force: true, PruneChildren: true})
		}
	})

	bin := containerimagetest.StaticBinary(t, "one")
	var msgs []string
	got, err := Ensure(ctx, api, bin, version, func(m string) { msgs = append(msgs, m) })
	require.NoError(t, err)
	assert.Equal(t, ref, got)
	first := imageID(t, api, ref)
	ids = append(ids, first)
	require.NotEmpty(t, msgs)
	assert.Contains(t, msgs[0], "building node image "+ref+" from "+bin)

	img, err := api.ImageInspect(ctx, ref)
	require.NoError(t, err)
	assert.Equal(t, []string{"/minik-node"}, img.Config.Entrypoint)
	sum, err := fileSHA256(bin)
	require.NoError(t, err)
	assert.Equal(t, sum, img.Config.Labels[LabelBinarySHA256])
	assertImageFiles(t, api, ref)

	msgs = nil
	got, err = Ensure(ctx, api, bin, version, func(m string) { msgs = append(msgs, m) })
	require.NoError(t, err)
	assert.Equal(t, ref, got)
	assert.Equal(t, first, imageID(t, api, ref), "the same binary reuses the image")
	assert.Empty(t, msgs, "nothing is built")

	changed := containerimagetest.StaticBinary(t, "two")
	_, err = Ensure(ctx, api, changed, version, nil)
	require.NoError(t, err)
	second := imageID(t, api, ref)
	ids = append(ids, second)
	assert.NotEqual(t, first, second, "a changed binary rebuilds")
	_, err = api.ImageInspect(ctx, first)
	assert.Error(t, err, "the stale image is removed")
}

func TestEnsureRejectsANonELFBinaryBeforeBuilding(t *testing.T) {
	api := containerimagetest.Client(t)
	version := "test-" + randomHex(t)
	t.Cleanup(func() {
		_, _ = api.ImageRemove(context.Background(), Ref(version), client.ImageRemoveOptions{Force: true, PruneChildren: true})
	})
	bin := filepath.Join(t.TempDir(), "minik-node")
	require.NoError(t, os.WriteFile(bin, []byte("#!/bin/sh\necho hi\n"), 0o755))
	_, err := Ensure(context.Background(), api, bin, version, nil)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "CGO_ENABLED=0")
	_, err = api.ImageInspect(context.Background(), Ref(version))
	assert.Error(t, err, "no image was built")
}

// assertImageFiles checks the image's filesystem through a created (never
// started) container.
func assertImageFiles(t *testing.T, api *client.Client, ref string) {
	t.Helper()
	ctx := context.Background()
	c, err := api.ContainerCreate(ctx, client.ContainerCreateOptions{Image: ref})
	require.NoError(t, err)
	// Removed before returning (runs on failure too): the container would
	// keep its image from being removed.
	defer func() {
		_, _ = api.ContainerRemove(context.Background(), c.ID, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true})
	}()
	want := map[string]fs.FileMode{
		"/minik-node":    0o755,
		"/tmp":           fs.ModeDir | fs.ModeSticky | 0o777,
		"/var/lib/minik": fs.ModeDir | 0o755,
	}
	if _, err := os.Stat(caBundle); err == nil {
		want[caBundle] = 0o644
	}
	for p, mode := range want {
		st, err := api.ContainerStatPath(ctx, c.ID, client.ContainerStatPathOptions{Path: p})
		if assert.NoError(t, err, p) {
			assert.Equal(t, mode, st.Stat.Mode, "mode of %s", p)
		}
	}
}

func imageID(t *testing.T, api *client.Client, ref string) string {
	t.Helper()
	img, err := api.ImageInspect(context.Background(), ref)
	require.NoError(t, err)
	return img.ID
}

func randomHex(t *testing.T) string {
	t.Helper()
	b := make([]byte, 4)
	_, err := rand.Read(b)
	require.NoError(t, err)
	return hex.EncodeToString(b)
}
