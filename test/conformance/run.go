// Package conformance runs the upstream Kubernetes conformance suite offline
// against a fresh minik cluster: it builds the suite (test/e2e of the
// Kubernetes version minik embeds) and the images its specs use from this
// machine's sources and Debian's packages, starts a cluster with the minik
// binary, runs a selection of specs and summarises the JUnit report.
// hack/conformance is its command line; make test runs a fixed slice.
package conformance

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"
)

// Focus selects every conformance spec.
const Focus = `\[Conformance\]`

// Options say what to run and against what.
type Options struct {
	Minik      string // the minik binary
	NodeBinary string // the minik-node binary (MINIK_NODE_BINARY)
	Suite      Suite
	// Dir receives the cluster's state, the report and the summary.
	Dir     string
	Profile string
	Driver  string
	Nodes   int
	Focus   string // a regular expression over spec names
	Skip    string
	Commit  string
	// Keep leaves the cluster running after the run, for a closer look.
	Keep bool
	// Output receives the suite's output as it runs (also in Dir/e2e.log).
	Output io.Writer
}

// Run starts a cluster, runs the selected specs and writes
// Dir/junit_01.xml, Dir/summary.json and Dir/summary.md. A run whose specs
// fail is not an error: the summary says what failed.
func Run(ctx context.Context, o Options) (Summary, error) {
	if o.Profile == "" {
		o.Profile = "conformance"
	}
	if o.Driver == "" {
		o.Driver = "docker"
	}
	if o.Nodes <= 0 {
		o.Nodes = 3
	}
	if o.Focus == "" {
		o.Focus = Focus
	}
	if o.Output == nil {
		o.Output = io.Discard
	}
	dir, err := filepath.Abs(o.Dir)
	if err != nil {
		return Summary{}, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return Summary{}, fmt.Errorf("results folder: %w", err)
	}
	repoList := filepath.Join(dir, "repo-list.yaml")
	if err := os.WriteFile(repoList, []byte(RepoList()), 0o644); err != nil {
		return Summary{}, fmt.Errorf("write the repo list: %w", err)
	}
	kubeconfig := filepath.Join(dir, "kubeconfig")
	env := append(os.Environ(),
		"MINIK_HOME="+filepath.Join(dir, "minik-home"),
		"KUBECONFIG="+kubeconfig,
		"MINIK_NODE_BINARY="+o.NodeBinary,
		"KUBE_TEST_REPO_LIST="+repoList,
	)
	minik := func(ctx context.Context, args ...string) error {
		cmd := exec.CommandContext(ctx, o.Minik, args...)
		cmd.Env = env
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("minik %v: %w\n%s", args, err, out.String())
		}
		return nil
	}
	// A profile left by an interrupted run would make start reuse it.
	_ = minik(ctx, "delete", "-p", o.Profile)
	if err := minik(ctx, "start", "-p", o.Profile, "--driver", o.Driver, "--nodes", strconv.Itoa(o.Nodes), "--wait", "5m"); err != nil {
		return Summary{}, err
	}
	if !o.Keep {
		defer func() {
			// The run's context may be gone; the cluster still goes.
			ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
			defer cancel()
			if err := minik(ctx, "delete", "-p", o.Profile); err != nil && o.Output != nil {
				// The run's result stands; what is left must be said.
				fmt.Fprintf(o.Output, "the cluster was not deleted: %v\n", err)
			}
		}()
	}

	log, err := os.Create(filepath.Join(dir, "e2e.log"))
	if err != nil {
		return Summary{}, fmt.Errorf("suite log: %w", err)
	}
	defer log.Close()
	args := []string{
		"--kubeconfig=" + kubeconfig,
		"--provider=skeleton",
		"--report-dir=" + dir,
		"--kubectl-path=" + o.Suite.Kubectl,
		"--kube-test-repo-list=" + repoList,
		// The framework's dump asks node logs of the kubelet API that the
		// node agent does not serve yet; it would only cost minutes.
		"--dump-logs-on-failure=false",
		"--non-blocking-taints=node-role.kubernetes.io/control-plane",
		"--ginkgo.focus=" + o.Focus,
		"--ginkgo.no-color",
		"--ginkgo.v",
		"--ginkgo.timeout=24h",
	}
	if o.Skip != "" {
		args = append(args, "--ginkgo.skip="+o.Skip)
	}
	start := time.Now()
	cmd := exec.CommandContext(ctx, o.Suite.E2E, args...)
	cmd.Env = env
	cmd.Stdout = io.MultiWriter(log, o.Output)
	cmd.Stderr = cmd.Stdout
	runErr := cmd.Run()
	var exit *exec.ExitError
	if runErr != nil && !errors.As(runErr, &exit) {
		return Summary{}, fmt.Errorf("run %s: %w", o.Suite.E2E, runErr)
	}

	report, err := os.Open(filepath.Join(dir, "junit_01.xml"))
	if err != nil {
		return Summary{}, fmt.Errorf("the suite wrote no report (%v; see %s): %w", runErr, log.Name(), err)
	}
	defer report.Close()
	s, err := ParseJUnit(report)
	if err != nil {
		return Summary{}, err
	}
	s.Driver, s.Nodes, s.Commit, s.Focus, s.Skip = o.Driver, o.Nodes, o.Commit, o.Focus, o.Skip
	s.Date, s.Duration = start, time.Since(start)
	if err := s.Write(dir); err != nil {
		return s, err
	}
	return s, nil
}
