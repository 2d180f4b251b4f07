package conformance

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
)

// busyboxPackage is the Debian package whose busybox the images started
// from, and whose source BuildBusybox builds.
const busyboxPackage = "busybox-static"

// BuildBusybox builds this machine's busybox-static again from its Debian
// source package, as Debian builds it, with one option changed: the one
// Debian's installer build sets (FEATURE_DI_ENV_HACK), which makes the
// shell keep environment variables whose names are no shell identifiers.
// Upstream's busybox, which the suite's busybox image holds, keeps them;
// Debian's other builds drop them, and Kubernetes allows such names
// ("data-1"), which specs print with `sh -c env`.
//
// The binary is kept under cacheDir by the package's version, so it is
// built once per machine and version; it returns the binary's path.
func BuildBusybox(ctx context.Context, cacheDir string) (string, error) {
	version, err := output(ctx, "", "dpkg-query", "-W", "-f", "${source:Version}", busyboxPackage)
	if err != nil {
		return "", fmt.Errorf("the busybox images are built from Debian's %s source: install %s (.ci/run does): %w", busyboxPackage, busyboxPackage, err)
	}
	version = strings.TrimSpace(version)
	bin := filepath.Join(cacheDir, "busybox-"+version, "busybox")
	if _, err := os.Stat(bin); err == nil {
		return bin, nil
	}
	if err := os.MkdirAll(cacheDir, 0o755); err != nil {
		return "", fmt.Errorf("busybox cache: %w", err)
	}
	work, err := os.MkdirTemp(cacheDir, "build-")
	if err != nil {
		return "", fmt.Errorf("busybox cache: %w", err)
	}
	defer os.RemoveAll(work)
	if err := fetchSource(ctx, work, "busybox", version); err != nil {
		return "", err
	}
	dscs, _ := filepath.Glob(filepath.Join(work, "busybox_*.dsc"))
	if len(dscs) != 1 {
		return "", fmt.Errorf("apt-get source busybox=%s left %d .dsc files in %s", version, len(dscs), work)
	}
	src := filepath.Join(work, "src")
	// dpkg-source checks the files against the .dsc and applies Debian's
	// patches, the security fixes among them.
	if _, err := output(ctx, work, "dpkg-source", "--no-check", "-x", dscs[0], src); err != nil {
		return "", err
	}
	if err := writeBusyboxConfig(src); err != nil {
		return "", err
	}
	// As debian/rules does: settle the configuration, then build the one
	// target (busybox's build cannot take two in parallel).
	cfg := exec.CommandContext(ctx, "make", "silentoldconfig")
	cfg.Dir, cfg.Stdin = src, strings.NewReader(strings.Repeat("\n", 4096))
	if out, err := cfg.CombinedOutput(); err != nil {
		return "", fmt.Errorf("configure busybox: %w\n%s", err, tailLines(string(out), 20))
	}
	extra := "BB_EXTRA_VERSION=Debian " + version + ", FEATURE_DI_ENV_HACK"
	if _, err := output(ctx, src, "make", fmt.Sprintf("-j%d", runtime.NumCPU()), "SKIP_STRIP=y", extra, "busybox"); err != nil {
		return "", err
	}
	if err := os.MkdirAll(filepath.Dir(bin), 0o755); err != nil {
		return "", fmt.Errorf("busybox cache: %w", err)
	}
	if err := os.Rename(filepath.Join(src, "busybox"), bin); err != nil {
		return "", fmt.Errorf("busybox cache: %w", err)
	}
	return bin, nil
}

// CacheDir is where the conformance tools keep what they build once per
// machine: the user's cache folder, as Go keeps its build cache there.
func CacheDir() (string, error) {
	dir, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("no cache folder for the busybox build: %w", err)
	}
	return filepath.Join(dir, "minik", "conformance"), nil
}

// writeBusyboxConfig writes the .config debian/rules writes for the static
// build, with FEATURE_DI_ENV_HACK set.
func writeBusyboxConfig(src string) error {
	var config []byte
	for _, f := range []string{"debian/config/os/linux", "debian/config/pkg/static"} {
		b, err := os.ReadFile(filepath.Join(src, f))
		if err != nil {
			return fmt.Errorf("busybox source: %w", err)
		}
		config = append(config, b...)
	}
	const off, on = "# CONFIG_FEATURE_DI_ENV_HACK is not set", "CONFIG_FEATURE_DI_ENV_HACK=y"
	if !bytes.Contains(config, []byte(off)) {
		return errors.New("busybox source: its static configuration no longer has FEATURE_DI_ENV_HACK")
	}
	config = bytes.Replace(config, []byte(off), []byte(on), 1)
	return os.WriteFile(filepath.Join(src, ".config"), config, 0o644)
}

// fetchSource downloads a Debian source package into dir with apt-get,
// from the archives this machine's apt already uses: their deb lines,
// read as deb-src ones, in an apt state of dir's own, so the machine's
// apt configuration stays as it is.
func fetchSource(ctx context.Context, dir, pkg, version string) error {
	sources, err := sourceEntries()
	if err != nil {
		return err
	}
	state := filepath.Join(dir, "apt")
	for _, d := range []string{"sources.list.d", "lists/partial", "cache/archives/partial"} {
		if err := os.MkdirAll(filepath.Join(state, d), 0o755); err != nil {
			return err
		}
	}
	list := filepath.Join(state, "sources.list.d", "src.sources")
	if err := os.WriteFile(list, sources, 0o644); err != nil {
		return err
	}
	opts := []string{
		"-o", "Dir::Etc::SourceList=/dev/null",
		"-o", "Dir::Etc::SourceParts=" + filepath.Join(state, "sources.list.d"),
		"-o", "Dir::State::Lists=" + filepath.Join(state, "lists"),
		"-o", "Dir::Cache=" + filepath.Join(state, "cache"),
		"-o", "Debug::NoLocking=true",
	}
	if os.Geteuid() == 0 {
		// root's apt downloads as _apt, which could not write into dir.
		opts = append(opts, "-o", "APT::Sandbox::User=root")
	}
	if _, err := output(ctx, dir, "apt-get", append(opts, "-qq", "update")...); err != nil {
		return fmt.Errorf("read the Debian archives' source lists: %w", err)
	}
	if _, err := output(ctx, dir, "apt-get", append(opts, "-qq", "source", "--download-only", pkg+"="+version)...); err != nil {
		return fmt.Errorf("download Debian's %s source: %w", pkg, err)
	}
	return nil
}

// sourceEntries turns the machine's apt sources into deb-src ones, in the
// deb822 format: from /etc/apt/sources.list.d/*.sources and the one-line
// entries of /etc/apt/sources.list and sources.list.d/*.list.
func sourceEntries() ([]byte, error) {
	var out bytes.Buffer
	deb822, _ := filepath.Glob("/etc/apt/sources.list.d/*.sources")
	for _, f := range deb822 {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		out.Write(debSrc822(b))
		out.WriteString("\n")
	}
	lists, _ := filepath.Glob("/etc/apt/sources.list.d/*.list")
	for _, f := range append([]string{"/etc/apt/sources.list"}, lists...) {
		b, err := os.ReadFile(f)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out.Write(debSrcLines(b))
	}
	if out.Len() == 0 {
		return nil, errors.New("this machine's apt has no Debian archive (no deb entry in /etc/apt/sources.list or sources.list.d)")
	}
	return out.Bytes(), nil
}

var typesLine = regexp.MustCompile(`(?mi)^Types:.*$`)

// debSrc822 makes every stanza of a deb822 sources file a deb-src one.
func debSrc822(b []byte) []byte {
	return typesLine.ReplaceAll(b, []byte("Types: deb-src"))
}

// debSrcLines turns one-line "deb" entries into deb822 deb-src stanzas,
// with the options in brackets that matter to a download.
func debSrcLines(b []byte) []byte {
	var out bytes.Buffer
	for _, line := range strings.Split(string(b), "\n") {
		rest, ok := strings.CutPrefix(strings.TrimSpace(line), "deb ")
		if !ok {
			continue
		}
		var options []string
		if o, after, ok := strings.Cut(strings.TrimSpace(rest), "]"); ok && strings.HasPrefix(o, "[") {
			options, rest = strings.Fields(strings.TrimPrefix(o, "[")), after
		}
		f := strings.Fields(rest)
		if len(f) < 2 {
			continue
		}
		fmt.Fprintf(&out, "Types: deb-src\nURIs: %s\nSuites: %s\n", f[0], f[1])
		if len(f) > 2 {
			fmt.Fprintf(&out, "Components: %s\n", strings.Join(f[2:], " "))
		}
		fields := map[string]string{"signed-by": "Signed-By", "arch": "Architectures", "trusted": "Trusted"}
		for _, o := range options {
			if k, v, ok := strings.Cut(o, "="); ok && fields[k] != "" {
				fmt.Fprintf(&out, "%s: %s\n", fields[k], v)
			}
		}
		out.WriteString("\n")
	}
	return out.Bytes()
}

// output runs a program in dir and returns its standard output; an error
// carries the end of what it printed.
func output(ctx context.Context, dir, name string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("%s %s: %w\n%s", name, strings.Join(args, " "), err, tailLines(errb.String()+out.String(), 20))
	}
	return out.String(), nil
}

func tailLines(s string, n int) string {
	l := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(l[max(0, len(l)-n):], "\n")
}
