// Command conformance runs the upstream Kubernetes conformance suite against
// a fresh minik cluster, offline: `make conformance` calls it. It builds the
// suite and its images here, starts the cluster, runs the selection and
// writes the JUnit report and a summary under -dir.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/moby/moby/client"

	"minik.dev/minik/test/conformance"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "conformance:", err)
		os.Exit(1)
	}
}

func run() error {
	var o conformance.Options
	flag.StringVar(&o.Driver, "driver", "docker", "the driver of the cluster under test")
	flag.IntVar(&o.Nodes, "nodes", 3, "nodes in the cluster under test")
	flag.StringVar(&o.Focus, "focus", conformance.Focus, "run the specs whose names match this regular expression")
	flag.StringVar(&o.Skip, "skip", "", "skip the specs whose names match this regular expression")
	flag.StringVar(&o.Dir, "dir", filepath.Join("_output", "conformance"), "folder for the report, the summary and the cluster's state")
	flag.IntVar(&o.Procs, "procs", 1, "run the specs not labelled Serial in this many processes at once, then the Serial ones alone")
	flag.BoolVar(&o.Keep, "keep", false, "leave the cluster running afterwards")
	flag.StringVar(&o.Minik, "minik", filepath.Join("bin", "minik"), "the minik binary")
	flag.StringVar(&o.NodeBinary, "node-binary", filepath.Join("bin", "minik-node"), "the minik-node binary")
	flag.Parse()
	if flag.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %v (flags only; see -h)", flag.Args())
	}
	if o.Procs < 1 {
		return fmt.Errorf("-procs %d: give 1 or more processes", o.Procs)
	}
	for _, p := range []*string{&o.Minik, &o.NodeBinary} {
		abs, err := filepath.Abs(*p)
		if err != nil {
			return err
		}
		if _, err := os.Stat(abs); err != nil {
			return fmt.Errorf("%w: run `make build` first", err)
		}
		*p = abs
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	fmt.Println("building e2e.test, ginkgo, kubectl, agnhost and sample-apiserver")
	suite, err := conformance.BuildSuite(ctx, filepath.Join("hack", "conformance", "e2e"), filepath.Join(o.Dir, "bin"))
	if err != nil {
		return err
	}
	if o.Driver == "process" {
		// Its pods are simulated: no image is ever run.
		fmt.Println("process driver: the suite's images are not needed")
	} else if err := buildImages(ctx, suite); err != nil {
		return err
	}
	o.Suite = suite
	o.Output = os.Stdout
	if out, err := exec.CommandContext(ctx, "git", "rev-parse", "--short", "HEAD").Output(); err == nil {
		o.Commit = strings.TrimSpace(string(out))
	}
	s, err := conformance.Run(ctx, o)
	if err != nil {
		return err
	}
	fmt.Println()
	fmt.Print(s.Markdown())
	fmt.Printf("\nreport and summary in %s\n", o.Dir)
	if s.Counts.Failed > 0 {
		return fmt.Errorf("%d spec(s) failed", s.Counts.Failed)
	}
	return nil
}

// buildImages puts the suite's images into the Docker Engine's store.
func buildImages(ctx context.Context, suite conformance.Suite) error {
	api, err := client.New(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		return fmt.Errorf("connect to the Docker Engine: %w", err)
	}
	defer api.Close()
	cache, err := conformance.CacheDir()
	if err != nil {
		return err
	}
	fmt.Println("building busybox from Debian's source (once per version, kept in " + cache + ")")
	busybox, err := conformance.BuildBusybox(ctx, cache)
	if err != nil {
		return err
	}
	fmt.Println("building the suite's images")
	built, err := conformance.BuildImages(ctx, api, conformance.Inputs{
		Agnhost: suite.Agnhost, SampleAPIServer: suite.SampleAPIServer, Nonewprivs: suite.Nonewprivs, Etcd: suite.Etcd,
		KubernetesDir: suite.KubernetesDir, Busybox: busybox,
	})
	if err != nil {
		return err
	}
	fmt.Printf("images: %d built, %d up to date\n", len(built), len(conformance.ImageNames())-len(built))
	return nil
}
