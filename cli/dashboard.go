package cli

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"
	"golang.org/x/term"
	"k8s.io/klog/v2"

	"minik.dev/minik/cluster"
	"minik.dev/minik/tui"
	"minik.dev/minik/tui/kube"
)

type dashboardOptions struct {
	profile     string
	kubeContext string
	namespace   string
	all         bool
	readOnly    bool
	once        bool
}

func newDashboardCommand(env Env) *cobra.Command {
	var o dashboardOptions
	cmd := &cobra.Command{
		Use:   "dashboard",
		Short: "A terminal UI for pods, rollouts, nodes, events, logs and metrics",
		Long: "A terminal UI for a cluster's pods, rollouts, nodes, events, logs and metrics, live from watches.\n" +
			"It shows the profile's cluster, or with --context any cluster of your kubeconfig.\n" +
			"Press ? inside for every key. --once prints the overview as plain text and exits.",
		Example: "  minik dashboard\n  minik dashboard -p dev -A\n  minik dashboard --context kind-kind --read-only\n  minik dashboard --once",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if cmd.Flags().Changed("profile") && o.kubeContext != "" {
				return fmt.Errorf("use either --profile (a minik cluster) or --context (any kubeconfig context), not both")
			}
			if cmd.Flags().Changed("namespace") && o.all {
				return fmt.Errorf("use either --namespace or --all-namespaces, not both")
			}
			target, label, err := dashboardTarget(env, o)
			if err != nil {
				return err
			}
			ns := o.namespace
			switch {
			case o.all:
				ns = ""
			case ns == "":
				ns = target.Namespace
			}
			c, err := kube.NewForConfig(target.Config, kube.Options{Namespace: ns})
			if err != nil {
				return err
			}
			// client-go logs watch failures through klog to stderr (errors
			// even with -logtostderr off), which would scribble over the
			// full-screen UI; the status bar says "disconnected" instead.
			klog.SetSlogLogger(slog.New(slog.DiscardHandler))

			tty, width := terminal(env.Stdout)
			noColor := env.Getenv("NO_COLOR") != ""
			opts := tui.Options{Target: label, Namespace: ns, ReadOnly: o.readOnly}
			if o.once {
				opts.Styles = tui.ColorStyles()
				if noColor || !tty {
					opts.Styles = tui.PlainStyles()
				}
				return tui.Once(cmd.Context(), c, opts, env.Stdout, width)
			}
			if !tty {
				return fmt.Errorf("minik dashboard needs a terminal; use --once to print the overview as text")
			}
			opts.Styles = tui.ColorStyles()
			if noColor {
				opts.Styles = tui.MonoStyles()
			}
			return tui.Run(cmd.Context(), c, opts, env.Stdin, env.Stdout)
		},
	}
	addProfileFlag(cmd, &o.profile)
	f := cmd.Flags()
	f.StringVar(&o.kubeContext, "context", "", "show this context of your kubeconfig ($KUBECONFIG or ~/.kube/config) instead of a profile")
	f.StringVarP(&o.namespace, "namespace", "n", "", "namespace to show (default: the context's, usually default)")
	f.BoolVarP(&o.all, "all-namespaces", "A", false, "show all namespaces")
	f.BoolVar(&o.readOnly, "read-only", false, "no action that changes the cluster (scale, restart, undo, delete, cordon)")
	f.BoolVar(&o.once, "once", false, "print the overview as plain text and exit (for CI logs)")
	return cmd
}

// dashboardTarget resolves what to connect to: the profile's admin
// kubeconfig, or a context of the user's kubeconfig files.
func dashboardTarget(env Env, o dashboardOptions) (*kube.Target, string, error) {
	if o.kubeContext != "" {
		files := filepath.SplitList(env.Getenv("KUBECONFIG"))
		if len(files) == 0 {
			home, err := userHome(env)
			if err != nil {
				return nil, "", err
			}
			files = []string{filepath.Join(home, ".kube", "config")}
		}
		t, err := kube.LoadKubeconfig(files, o.kubeContext)
		if err != nil {
			return nil, "", err
		}
		return t, "context " + t.Context, nil
	}
	if err := cluster.ValidateName(o.profile); err != nil {
		return nil, "", err
	}
	m, err := newManager(env, nil)
	if err != nil {
		return nil, "", err
	}
	if _, err := m.Store().Load(o.profile); err != nil {
		return nil, "", fmt.Errorf("dashboard: %w; create it with `minik start -p %s`, or pick any cluster with --context", err, o.profile)
	}
	t, err := kube.LoadKubeconfig([]string{m.Store().AdminKubeconfig(o.profile)}, "")
	if err != nil {
		return nil, "", fmt.Errorf("dashboard: profile %s: %w", o.profile, err)
	}
	return t, "profile " + o.profile, nil
}

// terminal says whether w is a terminal, and its width (120 if not).
func terminal(w io.Writer) (bool, int) {
	f, ok := w.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return false, 120
	}
	width, _, err := term.GetSize(int(f.Fd()))
	if err != nil || width <= 0 {
		return true, 120
	}
	return true, width
}
