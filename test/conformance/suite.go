package conformance

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// Suite is the built upstream suite and the programs its images and specs
// need, all from the k8s.io/kubernetes version minik embeds.
type Suite struct {
	E2E             string // e2e.test
	Ginkgo          string // ginkgo's CLI, which runs e2e.test in parallel processes
	Kubectl         string // the upstream kubectl the kubectl specs run
	Agnhost         string
	SampleAPIServer string
	Nonewprivs      string // nnp, the nonewprivs image's program
	Etcd            string // etcd, for the sample-apiserver's pod
	// KubernetesDir is the k8s.io/kubernetes module's source folder.
	KubernetesDir string
}

// BuildSuite builds e2e.test, ginkgo, kubectl, agnhost, sample-apiserver, nnp and etcd from
// moduleDir (hack/conformance/e2e, a module of its own so the suite's
// dependencies stay out of minik's go.mod) into binDir. It builds as
// `make build` does (-trimpath, no cgo), so the compiled Kubernetes
// packages of minik-node's build are reused.
func BuildSuite(ctx context.Context, moduleDir, binDir string) (Suite, error) {
	binDir, err := filepath.Abs(binDir)
	if err != nil {
		return Suite{}, err
	}
	if err := os.MkdirAll(binDir, 0o755); err != nil {
		return Suite{}, fmt.Errorf("suite folder: %w", err)
	}
	s := Suite{
		E2E:             filepath.Join(binDir, "e2e.test"),
		Ginkgo:          filepath.Join(binDir, "ginkgo"),
		Kubectl:         filepath.Join(binDir, "kubectl"),
		Agnhost:         filepath.Join(binDir, "agnhost"),
		SampleAPIServer: filepath.Join(binDir, "sample-apiserver"),
		Nonewprivs:      filepath.Join(binDir, "nnp"),
		Etcd:            filepath.Join(binDir, "etcd"),
	}
	mod, err := goCommand(ctx, moduleDir, "list", "-m", "-f", "{{.Dir}} {{.Version}}", "k8s.io/kubernetes")
	if err != nil {
		return Suite{}, err
	}
	dir, version, _ := strings.Cut(strings.TrimSpace(mod), " ")
	s.KubernetesDir = dir
	ldflags, err := versionFlags(version)
	if err != nil {
		return Suite{}, err
	}
	if _, err := goCommand(ctx, moduleDir, "test", "-c", "-trimpath", "-ldflags", ldflags, "-o", s.E2E, "."); err != nil {
		return Suite{}, err
	}
	for out, pkg := range map[string]string{
		s.Kubectl:         "k8s.io/kubernetes/cmd/kubectl",
		s.Agnhost:         "k8s.io/kubernetes/test/images/agnhost",
		s.SampleAPIServer: "k8s.io/sample-apiserver",
		s.Nonewprivs:      "k8s.io/kubernetes/test/images/nonewprivs",
		s.Etcd:            "./etcd", // the module's own: upstream's etcd main
		// The version e2e.test links: the CLI and the suite's processes
		// speak a protocol of that version.
		s.Ginkgo: "github.com/onsi/ginkgo/v2/ginkgo",
	} {
		if _, err := goCommand(ctx, moduleDir, "build", "-trimpath", "-ldflags", ldflags, "-o", out, pkg); err != nil {
			return Suite{}, err
		}
	}
	return s, nil
}

// versionFlags stamp a binary with the Kubernetes version the way an
// upstream release build is: specs read it (the pod security fixtures
// are chosen by the suite's own minor version, and an unstamped build
// asks for v0.0, which has none), and so does kubectl.
func versionFlags(version string) (string, error) {
	major, rest, ok := strings.Cut(strings.TrimPrefix(version, "v"), ".")
	minor, _, _ := strings.Cut(rest, ".")
	if !ok || major == "" || minor == "" {
		return "", fmt.Errorf("k8s.io/kubernetes has version %q, not vMAJOR.MINOR.PATCH", version)
	}
	var flags []string
	for _, pkg := range []string{"k8s.io/component-base/version", "k8s.io/client-go/pkg/version"} {
		flags = append(flags, "-X", pkg+".gitVersion="+version, "-X", pkg+".gitMajor="+major,
			"-X", pkg+".gitMinor="+minor, "-X", pkg+".gitTreeState=clean")
	}
	return strings.Join(flags, " "), nil
}

func goCommand(ctx context.Context, dir string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("go %s in %s: %w\n%s", strings.Join(args, " "), dir, err, errb.String())
	}
	return out.String(), nil
}
