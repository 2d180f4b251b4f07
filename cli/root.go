// Package cli is minik's command line: cobra commands (start, stop, delete,
// status, profile, node, service, kubectl, dashboard, manifests, logs,
// export logs, version) wired to the cluster library. Flags become options,
// options become library calls, results become text or JSON. The CLI
// parses flag syntax; the library checks values, and the CLI names the flag
// of an invalid one. Exit codes tell bad input, an unusable driver and a
// timeout apart (exitCode). Commands run in-process with an Env (streams,
// environment variables, the driver registry), so tests drive them
// hermetically with a fake driver.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/spf13/cobra"

	"minik.dev/minik/cluster"
	"minik.dev/minik/drivers"
	"minik.dev/minik/drivers/docker"
	"minik.dev/minik/drivers/hyperv"
	"minik.dev/minik/drivers/kvm"
	"minik.dev/minik/drivers/process"
	"minik.dev/minik/kubeconfig"
)

// Main runs minik with os.Args and returns the process exit code.
func Main() int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	env := Env{
		Stdin:   os.Stdin,
		Stdout:  os.Stdout,
		Stderr:  os.Stderr,
		Getenv:  os.Getenv,
		Drivers: Registry(),
	}
	return Run(ctx, env, os.Args[1:])
}

// Env is everything a command reads from the outside world, so tests can
// run commands in-process and hermetically.
type Env struct {
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
	Getenv func(string) string
	// Drivers make the nodes: Registry() in minik, fakes in tests.
	Drivers *drivers.Registry
}

// Run executes one minik command line and returns its exit code.
func Run(ctx context.Context, env Env, args []string) int {
	root := NewRootCommand(env)
	root.SetArgs(args)
	if err := root.ExecuteContext(ctx); err != nil {
		fmt.Fprintln(env.Stderr, "Error:", err)
		return exitCode(err)
	}
	return 0
}

// Exit codes, documented in docs/cli.md: scripts and CI tell a typo from
// a missing Docker Engine from a cluster that did not come up in time.
const (
	// ExitError is any failure without a code of its own.
	ExitError = 1
	// ExitBadInput is an invalid flag, argument or option value, an
	// unknown driver or node name: nothing was done.
	ExitBadInput = 2
	// ExitDriverUnavailable is a driver that cannot run nodes here (no
	// engine answers, minik-node is missing).
	ExitDriverUnavailable = 3
	// ExitTimeout is a wait for the cluster or a node that ran out.
	ExitTimeout = 4
)

// exitCode maps an error to its exit code by its type, never its text.
func exitCode(err error) int {
	var (
		exit    *exitError
		usage   *usageError
		invalid *cluster.InvalidOptionError
		health  *drivers.HealthError
	)
	switch {
	case errors.As(err, &exit):
		return exit.code
	case errors.As(err, &usage), errors.As(err, &invalid),
		errors.Is(err, drivers.ErrUnknownDriver), errors.Is(err, cluster.ErrNodeNotFound):
		return ExitBadInput
	case errors.As(err, &health):
		return ExitDriverUnavailable
	case errors.Is(err, cluster.ErrWaitTimeout):
		return ExitTimeout
	}
	return ExitError
}

// exitError carries a specific exit code.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// usageError is a command line minik cannot parse: a bad flag, a stray
// argument (ExitBadInput).
type usageError struct{ err error }

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

// NewRootCommand builds the minik command tree.
func NewRootCommand(env Env) *cobra.Command {
	root := &cobra.Command{
		Use:           "minik",
		Short:         "A local Kubernetes cluster in one command",
		Long:          "minik runs a local Kubernetes cluster with the real upstream control plane.\nStart one with `minik start`; any kubectl then talks to it.",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetIn(env.Stdin)
	root.SetOut(env.Stdout)
	root.SetErr(env.Stderr)
	// Subcommands inherit it: every flag that does not parse is bad input.
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return &usageError{err: err} })
	root.AddCommand(
		newStartCommand(env),
		newStopCommand(env),
		newDeleteCommand(env),
		newStatusCommand(env),
		newProfileCommand(env),
		newVersionCommand(env),
		newKubectlCommand(env),
		newNodeCommand(env),
		newDashboardCommand(env),
		newServiceCommand(env),
		newManifestsCommand(env),
		newLogsCommand(env),
		newExportCommand(env),
		newImageCommand(env),
		newAutoscaleCommand(env),
		newAddonsCommand(env),
		newDriverCommand(env),
	)
	return root
}

// Home is $MINIK_HOME, or ~/.minik.
func Home(env Env) (string, error) {
	if h := env.Getenv("MINIK_HOME"); h != "" {
		return filepath.Abs(h)
	}
	home, err := userHome(env)
	if err != nil {
		return "", err
	}
	return filepath.Join(home, ".minik"), nil
}

func userHome(env Env) (string, error) {
	if h := env.Getenv("HOME"); h != "" {
		return h, nil
	}
	h, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("find home folder: %w; set MINIK_HOME", err)
	}
	return h, nil
}

// Registry is the explicit list of drivers this build offers.
func Registry() *drivers.Registry {
	return drivers.NewRegistry(
		process.New(drivers.FindNodeBinary),
		docker.New(drivers.FindNodeBinary),
		kvm.New(drivers.FindNodeBinary, vmCacheDir, imageServerCommand),
		hyperv.New(hyperv.Config{FindBinary: drivers.FindNodeBinary, CacheDir: vmCacheDir}),
	)
}

// vmCacheDir is where VM drivers keep kernels and initramfs images: the
// user's cache folder, shared by every MINIK_HOME.
func vmCacheDir() (string, error) {
	dir, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("find the cache folder for VM images: %w", err)
	}
	return filepath.Join(dir, "minik", "vm"), nil
}

func newManager(env Env, r cluster.Reporter) (*cluster.Manager, error) {
	if env.Drivers == nil {
		return nil, errors.New("no driver registry: Env.Drivers is not set")
	}
	home, err := Home(env)
	if err != nil {
		return nil, err
	}
	uh, err := userHome(env)
	if err != nil {
		return nil, err
	}
	kc, err := filepath.Abs(kubeconfig.Path(env.Getenv("KUBECONFIG"), uh))
	if err != nil {
		return nil, fmt.Errorf("resolve kubeconfig path: %w", err)
	}
	return cluster.New(cluster.Options{
		Home:       home,
		Kubeconfig: kc,
		Drivers:    env.Drivers,
		Reporter:   r,
		Agent:      agentCommand,
	}), nil
}

// outputFlag validates -o.
type outputFlag string

func (o *outputFlag) String() string { return string(*o) }
func (o *outputFlag) Type() string   { return "text|json" }
func (o *outputFlag) Set(v string) error {
	if v != "text" && v != "json" {
		return fmt.Errorf("unknown output format %q: use text or json", v)
	}
	*o = outputFlag(v)
	return nil
}

func addOutputFlag(cmd *cobra.Command, o *outputFlag) {
	*o = "text"
	cmd.Flags().VarP(o, "output", "o", "output format: text or json")
}

func addProfileFlag(cmd *cobra.Command, p *string) {
	cmd.Flags().StringVarP(p, "profile", "p", cluster.DefaultProfile, "profile (cluster) name")
}

// noArgs rejects stray positional arguments with a helpful message.
func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return &usageError{err: fmt.Errorf("%s takes no arguments, got %q; see `%s --help`", cmd.CommandPath(), args, cmd.CommandPath())}
	}
	return nil
}
