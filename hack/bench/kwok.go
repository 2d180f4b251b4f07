package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// kwokVersion is the kwok release the comparison runs, the one issue #21's
// first measurements used.
const kwokVersion = "v0.8.0"

// kwokProvider makes clusters with kwokctl's binary runtime: the upstream
// components as processes, nodes and pods faked by kwok's controller.
type kwokProvider struct {
	bin     string // kwokctl, kwok and the components
	workdir string // KWOK_WORKDIR: its clusters, and nothing else's
}

func (kwokProvider) name() string { return "kwok" }

// kubeVersionStamp stamps a component the way a release build is, as the
// Makefile stamps minik: kwokctl picks its flags by the components' version.
func kubeVersionStamp(version string) string {
	major, minor, _ := strings.Cut(strings.TrimPrefix(version, "v"), ".")
	minor, _, _ = strings.Cut(minor, ".")
	var flags []string
	for _, p := range []string{"k8s.io/component-base/version", "k8s.io/client-go/pkg/version"} {
		flags = append(flags, "-X", p+".gitVersion="+version, "-X", p+".gitMajor="+major, "-X", p+".gitMinor="+minor, "-X", p+".gitTreeState=clean")
	}
	return strings.Join(flags, " ")
}

// newKwokProvider builds kwok at kwokVersion, and the control plane's
// components from the k8s.io/kubernetes and etcd modules minik itself
// links, so both sides run the same upstream code. Builds are kept in the
// user's cache: the first takes minutes.
func newKwokProvider(ctx context.Context, dir string) (kwokProvider, error) {
	kube, err := moduleVersion(ctx, "k8s.io/kubernetes")
	if err != nil {
		return kwokProvider{}, err
	}
	cache, err := userCacheDir()
	if err != nil {
		return kwokProvider{}, err
	}
	bin := filepath.Join(cache, "kwok-"+kwokVersion+"-kubernetes-"+kube)
	if err := os.MkdirAll(bin, 0o755); err != nil {
		return kwokProvider{}, err
	}
	goCmd := func(args ...string) *exec.Cmd {
		cmd := exec.CommandContext(ctx, "go", args...)
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOBIN="+bin)
		return cmd
	}
	builds := []struct {
		name string
		cmd  *exec.Cmd
	}{
		// kwok's own module decides kwok's dependencies.
		{"kwokctl", goCmd("install", "-trimpath", "sigs.k8s.io/kwok/cmd/kwokctl@"+kwokVersion)},
		{"kwok", goCmd("install", "-trimpath", "sigs.k8s.io/kwok/cmd/kwok@"+kwokVersion)},
		{"kube-apiserver", goCmd("build", "-trimpath", "-ldflags", kubeVersionStamp(kube), "-o", filepath.Join(bin, "kube-apiserver"), "k8s.io/kubernetes/cmd/kube-apiserver")},
		{"kube-controller-manager", goCmd("build", "-trimpath", "-ldflags", kubeVersionStamp(kube), "-o", filepath.Join(bin, "kube-controller-manager"), "k8s.io/kubernetes/cmd/kube-controller-manager")},
		{"kube-scheduler", goCmd("build", "-trimpath", "-ldflags", kubeVersionStamp(kube), "-o", filepath.Join(bin, "kube-scheduler"), "k8s.io/kubernetes/cmd/kube-scheduler")},
		// etcd's server module is its main package.
		{"etcd", goCmd("build", "-trimpath", "-o", filepath.Join(bin, "etcd"), "go.etcd.io/etcd/server/v3")},
	}
	for _, b := range builds {
		if _, err := os.Stat(filepath.Join(bin, b.name)); err == nil {
			continue
		}
		fmt.Printf("building %s for the comparison (once)...\n", b.name)
		if err := runCmd(b.cmd); err != nil {
			return kwokProvider{}, fmt.Errorf("build %s: %w", b.name, err)
		}
	}
	return kwokProvider{bin: bin, workdir: filepath.Join(dir, "kwok")}, nil
}

// moduleVersion is the version of module that minik's go.mod requires.
func moduleVersion(ctx context.Context, module string) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "list", "-m", "-f", "{{.Version}}", module).Output()
	if err != nil {
		return "", fmt.Errorf("go list -m %s (run the bench from minik's checkout): %w", module, err)
	}
	return strings.TrimSpace(string(out)), nil
}

// kwokctl runs kwokctl on this run's clusters. Each cluster's context goes
// to a kubeconfig of its own: kwokctl keeps an existing context of the same
// name, stale after a delete, and the user's kubeconfig is not the bench's.
func (p kwokProvider) kwokctl(ctx context.Context, cluster string, args ...string) *exec.Cmd {
	if cluster != "" {
		args = append(args, "--name", cluster, "--kubeconfig", p.kubeconfig(cluster))
	}
	cmd := exec.CommandContext(ctx, filepath.Join(p.bin, "kwokctl"), args...)
	cmd.Env = append(os.Environ(), "KWOK_WORKDIR="+p.workdir, "KUBECONFIG="+filepath.Join(p.workdir, "kubeconfig"))
	return cmd
}

func (p kwokProvider) kubeconfig(cluster string) string {
	return filepath.Join(p.workdir, cluster+".kubeconfig")
}

func (p kwokProvider) create(ctx context.Context, cluster string, nodes, maxPods int) (made, error) {
	// Authorization and admission on, as in minik; the components' client
	// rate limits off, as minik sets them high.
	err := runCmd(p.kwokctl(ctx, cluster, "create", "cluster", "--runtime", "binary",
		"--kube-apiserver-binary", filepath.Join(p.bin, "kube-apiserver"),
		"--kube-controller-manager-binary", filepath.Join(p.bin, "kube-controller-manager"),
		"--kube-scheduler-binary", filepath.Join(p.bin, "kube-scheduler"),
		"--kwok-controller-binary", filepath.Join(p.bin, "kwok"),
		"--etcd-binary", filepath.Join(p.bin, "etcd"),
		"--kube-authorization", "--kube-admission", "--disable-qps-limits", "--wait", "5m"))
	if err != nil {
		return made{}, err
	}
	err = runCmd(p.kwokctl(ctx, "", "scale", "node", "--name", cluster, "--replicas", strconv.Itoa(nodes),
		"--param", ".allocatable.pods="+strconv.Itoa(maxPods)))
	if err != nil {
		return made{}, err
	}
	client, err := clientFor(p.kubeconfig(cluster), "kwok-"+cluster)
	if err != nil {
		return made{}, err
	}
	if err := waitReady(ctx, client, nodes, 10*time.Minute); err != nil {
		return made{}, err
	}
	return made{client: client, procDir: filepath.Join(p.workdir, "clusters", cluster) + "/"}, nil
}

func (p kwokProvider) remove(ctx context.Context, cluster string) error {
	if err := runCmd(p.kwokctl(ctx, cluster, "delete", "cluster")); err != nil {
		return err
	}
	return os.Remove(p.kubeconfig(cluster))
}

// removeAll removes every cluster of this run, also those a failure left.
func (p kwokProvider) removeAll(ctx context.Context) error {
	if _, err := os.Stat(p.workdir); err != nil {
		return nil // no cluster was made
	}
	return runCmd(p.kwokctl(ctx, "", "delete", "cluster", "--all", "--force"))
}
