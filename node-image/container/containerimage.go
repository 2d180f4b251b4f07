// Package containerimage builds the container node image from a minik-node
// binary on the user's machine, so minik never pulls an image and works
// offline: a FROM scratch container image holding the static binary and a
// CA bundle, built through the Engine API and reused while it matches the
// binary. The docker driver runs its nodes (and pod sandboxes) from it.
package containerimage

import (
	"archive/tar"
	"bufio"
	"context"
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/client"
)

// Repository is the node image's name; the tag is minik's version.
const Repository = "minik-node"

// LabelBinarySHA256 records the sha256 of the minik-node binary an image
// holds, so a rebuilt binary (same version, new code) gets a new image.
const LabelBinarySHA256 = "dev.minik.node.sha256"

// caBundle is where the host's CA bundle is read from and where the image
// holds it (the path Go's crypto/x509 tries first on Linux).
const caBundle = "/etc/ssl/certs/ca-certificates.crt"

// API is the part of the Engine API the builder uses (*client.Client has it).
type API interface {
	Info(ctx context.Context, options client.InfoOptions) (client.SystemInfoResult, error)
	ImageInspect(ctx context.Context, image string, options ...client.ImageInspectOption) (client.ImageInspectResult, error)
	ImageBuild(ctx context.Context, buildContext io.Reader, options client.ImageBuildOptions) (client.ImageBuildResult, error)
	ImageRemove(ctx context.Context, image string, options client.ImageRemoveOptions) (client.ImageRemoveResult, error)
}

// Ref returns the image reference for a minik version.
func Ref(version string) string { return Repository + ":" + Tag(version) }

// Tag turns a version into a valid image tag: [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}.
func Tag(version string) string {
	var b strings.Builder
	for _, r := range version {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '_', r == '.', r == '-':
			b.WriteRune(r)
		default:
			b.WriteByte('-')
		}
	}
	tag := b.String()
	if tag == "" {
		return "dev"
	}
	if c := tag[0]; c == '.' || c == '-' {
		tag = "v" + tag
	}
	if len(tag) > 128 {
		tag = tag[:128]
	}
	return tag
}

// Ensure returns the reference of a node image holding binaryPath, building
// it only when no image of this version holds this very binary.
func Ensure(ctx context.Context, api API, binaryPath, version string, progress func(string)) (string, error) {
	if progress == nil {
		progress = func(string) {}
	}
	ref := Ref(version)
	sum, err := fileSHA256(binaryPath)
	if err != nil {
		return "", fmt.Errorf("ensure node image: %w", err)
	}
	current, oldID, err := inspect(ctx, api, ref, sum)
	if err != nil {
		return "", fmt.Errorf("ensure node image: %w", err)
	}
	if current {
		return ref, nil
	}
	if err := checkBinary(ctx, api, binaryPath); err != nil {
		return "", fmt.Errorf("ensure node image: %w", err)
	}
	progress(fmt.Sprintf("building node image %s from %s", ref, binaryPath))
	start := time.Now()
	if err := build(ctx, api, ref, binaryPath, sum); err != nil {
		return "", fmt.Errorf("build node image %s: %w", ref, err)
	}
	progress(fmt.Sprintf("built node image %s in %s", ref, time.Since(start).Round(100*time.Millisecond)))
	if oldID != "" {
		// The tag moved to the new image; drop the old one unless a node
		// still uses it (then the engine refuses, and that is fine).
		_, _ = api.ImageRemove(ctx, oldID, client.ImageRemoveOptions{PruneChildren: true})
	}
	return ref, nil
}

// inspect says whether ref holds the binary with this sha256; if ref holds
// another, oldID is that image's ID.
func inspect(ctx context.Context, api API, ref, sum string) (current bool, oldID string, err error) {
	img, err := api.ImageInspect(ctx, ref)
	if cerrdefs.IsNotFound(err) {
		return false, "", nil
	}
	if err != nil {
		return false, "", fmt.Errorf("inspect image %s: %w", ref, err)
	}
	if img.Config != nil && img.Config.Labels[LabelBinarySHA256] == sum {
		return true, "", nil
	}
	return false, img.ID, nil
}

func fileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("read minik-node: %w", err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("read minik-node: %w", err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// elfMachines maps the engine's architecture (uname -m, as /info reports
// it) to the ELF machine its binaries need.
var elfMachines = map[string]elf.Machine{
	"x86_64":  elf.EM_X86_64,
	"amd64":   elf.EM_X86_64,
	"aarch64": elf.EM_AARCH64,
	"arm64":   elf.EM_AARCH64,
}

// checkBinary makes sure the binary can run FROM scratch on the engine: a
// static linux ELF for the engine's architecture. Without this check a
// wrong binary builds fine and fails only when a node starts, obscurely.
func checkBinary(ctx context.Context, api API, path string) error {
	info, err := api.Info(ctx, client.InfoOptions{})
	if err != nil {
		return fmt.Errorf("read engine info: %w", err)
	}
	return checkELF(path, info.Info.Architecture)
}

const buildHint = "build it for linux with CGO_ENABLED=0 (`make build` does)"

func checkELF(path, engineArch string) error {
	f, err := elf.Open(path)
	if err != nil {
		return fmt.Errorf("%s is not a linux executable (%v); %s", path, err, buildHint)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return fmt.Errorf("%s is dynamically linked and cannot run in the FROM scratch node image; %s", path, buildHint)
		}
	}
	want, ok := elfMachines[engineArch]
	if !ok {
		return fmt.Errorf("the engine's architecture %q is not supported by minik", engineArch)
	}
	if f.Machine != want {
		return fmt.Errorf("%s is built for %s but the engine runs %s; %s and GOARCH matching the engine", path, f.Machine, engineArch, buildHint)
	}
	return nil
}

// dockerfile is the whole recipe: no RUN (there is no shell in scratch).
const dockerfile = `FROM scratch
COPY rootfs/ /
ENTRYPOINT ["/minik-node"]
`

func build(ctx context.Context, api API, ref, binaryPath, sum string) error {
	pr, pw := io.Pipe()
	// The context is streamed, not buffered: minik-node is over 100 MiB.
	go func() { pw.CloseWithError(writeContext(pw, binaryPath)) }()
	defer pr.Close()
	res, err := api.ImageBuild(ctx, pr, client.ImageBuildOptions{
		Tags:        []string{ref},
		Labels:      map[string]string{LabelBinarySHA256: sum},
		Remove:      true,
		ForceRemove: true,
		// Nothing to pull: FROM scratch, and there may be no registry.
		PullParent: false,
	})
	if err != nil {
		return err
	}
	defer res.Body.Close()
	return readBuildStream(res.Body)
}

// buildMessage is one line of the build's JSON stream; old engines send
// failures as "error", newer ones as "errorDetail" (or both).
type buildMessage struct {
	Stream      string `json:"stream"`
	Error       string `json:"error"`
	ErrorDetail *struct {
		Message string `json:"message"`
	} `json:"errorDetail"`
}

// readBuildStream consumes the whole stream (the build runs until it is
// read) and returns the build's failure, with its last output lines.
func readBuildStream(r io.Reader) error {
	dec := json.NewDecoder(bufio.NewReader(r))
	var tail []string
	for {
		var m buildMessage
		err := dec.Decode(&m)
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read build output: %w", err)
		}
		if m.ErrorDetail != nil && m.ErrorDetail.Message != "" {
			m.Error = m.ErrorDetail.Message
		}
		if m.Error != "" {
			if len(tail) > 0 {
				return fmt.Errorf("%s (after: %s)", m.Error, strings.Join(tail, "; "))
			}
			return errors.New(m.Error)
		}
		if line := strings.TrimSpace(m.Stream); line != "" {
			tail = append(tail, line)
			if len(tail) > 5 {
				tail = tail[1:]
			}
		}
	}
}

// writeContext writes the build context: the Dockerfile and rootfs/, the
// image's whole filesystem.
func writeContext(w io.Writer, binaryPath string) error {
	tw := tar.NewWriter(w)
	now := time.Now()
	file := func(name string, mode int64, data []byte) error {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: mode, Size: int64(len(data)), ModTime: now, Typeflag: tar.TypeReg}); err != nil {
			return err
		}
		_, err := tw.Write(data)
		return err
	}
	dir := func(name string, mode int64) error {
		return tw.WriteHeader(&tar.Header{Name: name, Mode: mode, ModTime: now, Typeflag: tar.TypeDir})
	}
	if err := file("Dockerfile", 0o644, []byte(dockerfile)); err != nil {
		return err
	}
	for _, d := range []struct {
		name string
		mode int64
	}{
		{"rootfs/", 0o755},
		// Sticky and world-writable like any /tmp: Go's os.TempDir uses it.
		{"rootfs/tmp/", 0o1777},
		{"rootfs/etc/", 0o755},
		{"rootfs/etc/ssl/", 0o755},
		{"rootfs/etc/ssl/certs/", 0o755},
		{"rootfs/var/", 0o755},
		{"rootfs/var/lib/", 0o755},
		{"rootfs/var/lib/minik/", 0o755},
	} {
		if err := dir(d.name, d.mode); err != nil {
			return err
		}
	}
	// No CA bundle on the host means none in the image: nodes then trust
	// only the cluster CA, which is all a local cluster needs.
	if ca, err := os.ReadFile(caBundle); err == nil {
		if err := file("rootfs"+caBundle, 0o644, ca); err != nil {
			return err
		}
	}
	if err := copyBinary(tw, binaryPath, now); err != nil {
		return err
	}
	return tw.Close()
}

func copyBinary(tw *tar.Writer, path string, now time.Time) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	if err := tw.WriteHeader(&tar.Header{Name: "rootfs/minik-node", Mode: 0o755, Size: st.Size(), ModTime: now, Typeflag: tar.TypeReg}); err != nil {
		return err
	}
	// CopyN: a binary that grows while it is copied must not corrupt the tar.
	_, err = io.CopyN(tw, f, st.Size())
	return err
}
