package cli

import (
	"errors"
	"fmt"
	"log"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"minik.dev/minik/cluster"
	"minik.dev/minik/nodeconfig"
)

// parseAutoscale reads --autoscale MIN:MAX; "" is off.
func parseAutoscale(s string, idle time.Duration) (*cluster.AutoscaleOptions, error) {
	if s == "" {
		return nil, nil
	}
	lo, hi, ok := strings.Cut(s, ":")
	minW, err1 := strconv.Atoi(lo)
	maxW, err2 := strconv.Atoi(hi)
	if !ok || err1 != nil || err2 != nil {
		return nil, &usageError{err: fmt.Errorf("invalid --autoscale %q: use MIN:MAX workers, such as 0:3", s)}
	}
	return &cluster.AutoscaleOptions{Min: minW, Max: maxW, ScaleDownAfter: idle}, nil
}

// agentCommand is `minik autoscale serve --agent-of=PROFILE` of this very
// binary (marker is that flag): minik start runs it beside a cluster that
// autoscales.
func agentCommand(_, marker string) *exec.Cmd {
	self, err := os.Executable()
	if err != nil {
		self = os.Args[0]
	}
	return exec.Command(self, "autoscale", "serve", marker)
}

func newAutoscaleCommand(env Env) *cobra.Command {
	var (
		profile  string
		minW     int
		maxW     int
		idle     time.Duration
		off      bool
		minMaxed bool
	)
	cmd := &cobra.Command{
		Use:   "autoscale",
		Short: "Turn a running cluster's autoscaling on or off",
		Long: "Between --min and --max workers, the control plane adds a worker (through the cluster's driver) when\n" +
			"pods do not fit on any node, as the scheduler's own filters say, and drains and deletes a worker\n" +
			"that stayed underused for --idle while its pods fit elsewhere. The control plane is never removed.",
		Example: "  minik autoscale --min 0 --max 3\n  minik autoscale -p dev --off",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			minMaxed = cmd.Flags().Changed("min") || cmd.Flags().Changed("max")
			var o *cluster.AutoscaleOptions
			switch {
			case off && (minMaxed || cmd.Flags().Changed("idle")):
				return &usageError{err: errors.New("--off takes no --min, --max or --idle")}
			case off:
			case !cmd.Flags().Changed("max"):
				return &usageError{err: errors.New("autoscale needs --max (and --min, default 0), or --off")}
			default:
				o = &cluster.AutoscaleOptions{Min: minW, Max: maxW, ScaleDownAfter: idle}
			}
			r := newReporter(env, "text")
			m, err := newManager(env, r)
			if err != nil {
				r.Close()
				return err
			}
			err = m.SetAutoscale(cmd.Context(), profile, o)
			r.Close()
			var invalid *cluster.InvalidOptionError
			switch {
			case errors.As(err, &invalid) && invalid.Field == "ScaleDownAfter":
				return &usageError{err: fmt.Errorf("invalid --idle %s: %s", idle, invalid.Reason)}
			case errors.As(err, &invalid):
				return &usageError{err: fmt.Errorf("invalid --min %d --max %d: %s", minW, maxW, invalid.Reason)}
			case err != nil:
				return commandError(err, "autoscale %s", profile)
			}
			if o == nil {
				fmt.Fprintf(env.Stdout, "autoscaling of %q is off; its workers stay as they are\n", profile)
			} else {
				fmt.Fprintf(env.Stdout, "%q autoscales between %d and %d workers\n", profile, o.Min, o.Max)
			}
			return nil
		},
	}
	addProfileFlag(cmd, &profile)
	cmd.Flags().IntVar(&minW, "min", 0, "fewest workers")
	cmd.Flags().IntVar(&maxW, "max", 0, "most workers")
	cmd.Flags().DurationVar(&idle, "idle", nodeconfig.DefaultScaleDownAfter, "how long a worker stays underused before it is removed")
	cmd.Flags().BoolVar(&off, "off", false, "turn autoscaling off")
	cmd.AddCommand(newAutoscaleServeCommand(env))
	return cmd
}

func newAutoscaleServeCommand(env Env) *cobra.Command {
	var profile string
	cmd := &cobra.Command{
		Use:    "serve --agent-of=NAME",
		Short:  "Make and delete a cluster's workers as its control plane decides (run by minik start)",
		Hidden: true,
		Args:   noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if profile == "" {
				return &usageError{err: errors.New("autoscale serve needs --agent-of=NAME")}
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGTERM, os.Interrupt)
			defer stop()
			m, err := newManager(env, cluster.NopReporter{})
			if err != nil {
				return err
			}
			logger := log.New(env.Stderr, "", log.LstdFlags)
			logger.Printf("autoscaler agent of %s started", profile)
			err = m.RunAutoscaleAgent(ctx, profile, logger.Printf)
			logger.Printf("autoscaler agent of %s stopped", profile)
			return err
		},
	}
	cmd.Flags().StringVar(&profile, "agent-of", "", "the profile whose workers to make and delete")
	return cmd
}
