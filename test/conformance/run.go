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
	"strings"
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
	// Procs above 1 runs the specs not labelled Serial in that many
	// processes at once (ginkgo's CLI), then the Serial ones alone, as
	// upstream's CI does; 0 or 1 runs them all in one process.
	Procs int
	// Keep leaves the cluster running after the run, for a closer look.
	Keep bool
	// Output receives the suite's output as it runs (also in Dir/e2e.log).
	Output io.Writer
}

// Run starts a cluster, runs the selected specs and writes
// Dir/junit_01.xml (with Procs above 1, Dir/parallel/junit_01.xml and
// Dir/serial/junit_01.xml), Dir/e2e.log, Dir/summary.json and
// Dir/summary.md. A run whose specs fail is not an error: the summary
// says what failed.
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
	out := io.MultiWriter(log, o.Output)
	start := time.Now()
	var s Summary
	for _, p := range passes(o.Procs) {
		ps, err := runPass(ctx, o, p, dir, kubeconfig, repoList, env, out)
		if err != nil {
			return Summary{}, err
		}
		s.add(ps)
	}
	s.Driver, s.Nodes, s.Procs, s.Commit, s.Focus, s.Skip = o.Driver, o.Nodes, max(o.Procs, 1), o.Commit, o.Focus, o.Skip
	s.Date, s.Duration = start, time.Since(start)
	if err := s.Write(dir); err != nil {
		return s, err
	}
	return s, nil
}

// pass is one run of the suite over the cluster.
type pass struct {
	// name is its folder under the run's; "" for the run's own.
	name  string
	procs int
	// labels is a ginkgo label filter; "" selects by name only.
	labels string
}

// passes are the runs that make up a run of procs processes: Serial specs
// may disturb every other spec (they taint nodes, fill them, restart
// things), so they never run beside another.
func passes(procs int) []pass {
	if procs <= 1 {
		return []pass{{procs: 1}}
	}
	return []pass{{name: "parallel", procs: procs, labels: "!Serial"}, {name: "serial", procs: 1, labels: "Serial"}}
}

// runPass runs the suite once and reads its report.
func runPass(ctx context.Context, o Options, p pass, dir, kubeconfig, repoList string, env []string, out io.Writer) (Summary, error) {
	reportDir := filepath.Join(dir, p.name)
	if err := os.MkdirAll(reportDir, 0o755); err != nil {
		return Summary{}, fmt.Errorf("results folder: %w", err)
	}
	// A report left by an earlier run must not pass for this one's.
	report := filepath.Join(reportDir, "junit_01.xml")
	if err := os.Remove(report); err != nil && !errors.Is(err, os.ErrNotExist) {
		return Summary{}, err
	}
	suiteArgs := []string{
		"--kubeconfig=" + kubeconfig,
		"--provider=skeleton",
		"--report-dir=" + reportDir,
		"--kubectl-path=" + o.Suite.Kubectl,
		"--kube-test-repo-list=" + repoList,
		// The framework's dump asks node logs of the kubelet API that the
		// node agent does not serve yet; it would only cost minutes.
		"--dump-logs-on-failure=false",
		"--non-blocking-taints=node-role.kubernetes.io/control-plane",
	}
	ginkgoArgs := []string{"--focus=" + o.Focus, "--no-color", "-v", "--timeout=24h"}
	if o.Skip != "" {
		ginkgoArgs = append(ginkgoArgs, "--skip="+o.Skip)
	}
	if p.labels != "" {
		ginkgoArgs = append(ginkgoArgs, "--label-filter="+p.labels)
	}
	var cmd *exec.Cmd
	if p.procs > 1 {
		// ginkgo's CLI starts the processes and gathers their reports:
		// the suite's own JUnit report then holds every process's specs.
		args := append([]string{"--procs=" + strconv.Itoa(p.procs)}, ginkgoArgs...)
		args = append(append(args, o.Suite.E2E, "--"), suiteArgs...)
		cmd = exec.CommandContext(ctx, o.Suite.Ginkgo, args...)
		fmt.Fprintf(out, "\n=== %s: specs not labelled Serial, %d processes\n", p.name, p.procs)
	} else {
		args := suiteArgs
		for _, a := range ginkgoArgs {
			args = append(args, "--ginkgo."+strings.TrimLeft(a, "-"))
		}
		cmd = exec.CommandContext(ctx, o.Suite.E2E, args...)
		if p.name != "" {
			fmt.Fprintf(out, "\n=== %s: specs labelled Serial, one at a time\n", p.name)
		}
	}
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = out, out
	runErr := cmd.Run()
	var exit *exec.ExitError
	if runErr != nil && !errors.As(runErr, &exit) {
		return Summary{}, fmt.Errorf("run %s: %w", cmd.Path, runErr)
	}
	f, err := os.Open(report)
	if err != nil {
		return Summary{}, fmt.Errorf("the suite wrote no report (%v; see %s): %w", runErr, filepath.Join(dir, "e2e.log"), err)
	}
	defer f.Close()
	return ParseJUnit(f)
}
