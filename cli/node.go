package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"minik.dev/minik/cluster"
)

func newNodeCommand(env Env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "node",
		Short: "List, add, stop, start and delete a cluster's nodes, and let other machines join",
		Args:  noArgs,
	}
	cmd.AddCommand(
		newNodeListCommand(env),
		newNodeAddCommand(env),
		newNodeStopCommand(env),
		newNodeStartCommand(env),
		newNodeDeleteCommand(env),
		newNodeJoinCommand(env),
	)
	return cmd
}

// oneNodeName requires exactly one NAME argument.
func oneNodeName(cmd *cobra.Command, args []string) error {
	if len(args) != 1 {
		return &usageError{err: fmt.Errorf("%s takes exactly one node name, got %d; `minik node list` shows them", cmd.CommandPath(), len(args))}
	}
	return nil
}

func newNodeListCommand(env Env) *cobra.Command {
	var profile string
	var output outputFlag
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List a cluster's nodes: the driver's and, when the apiserver answers, Kubernetes' view",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			// Notes go to stderr in text mode only: -o json prints one document.
			var r cluster.Reporter
			if output == "text" {
				r = &lineReporter{w: env.Stderr}
			}
			m, err := newManager(env, r)
			if err != nil {
				return err
			}
			infos, err := m.Nodes(cmd.Context(), profile)
			if err != nil {
				return fmt.Errorf("list nodes of %s: %w", profile, err)
			}
			if output == "json" {
				return json.NewEncoder(env.Stdout).Encode(infos)
			}
			return printNodes(env.Stdout, infos)
		},
	}
	addProfileFlag(cmd, &profile)
	addOutputFlag(cmd, &output)
	return cmd
}

func printNodes(w io.Writer, infos []cluster.NodeInfo) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tROLE\tSTATE\tREADY\tIP\tPOD-CIDR")
	for _, n := range infos {
		ready := orDash(n.Ready)
		if n.Schedulable != nil && !*n.Schedulable {
			ready += ",SchedulingDisabled"
		}
		state := n.State
		if n.Host != "" {
			state += " (on " + n.Host + ")"
		}
		role := n.Role
		if n.Autoscaled {
			role += " (autoscaled)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", n.Name, role, state, ready, n.IP, orDash(n.PodCIDR))
	}
	return tw.Flush()
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func newNodeAddCommand(env Env) *cobra.Command {
	var profile, role, cpus, memory string
	var maxPods int
	var wait time.Duration
	var output outputFlag
	cmd := &cobra.Command{
		Use:   "add",
		Short: "Add a worker node to a running cluster",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cpu, err := parseCPUs(cpus)
			if err != nil {
				return err
			}
			mem, err := parseMemory(memory)
			if err != nil {
				return err
			}
			r := newReporter(env, string(output))
			m, err := newManager(env, r)
			if err != nil {
				r.Close()
				return err
			}
			began := time.Now()
			info, err := m.AddNode(cmd.Context(), profile, cluster.AddNodeOptions{Role: role, Wait: wait, CPUMillis: cpu, MemoryBytes: mem, MaxPods: maxPods})
			r.Close()
			if err != nil {
				return commandError(err, "add node to %s", profile)
			}
			if output == "json" {
				return json.NewEncoder(env.Stdout).Encode(info)
			}
			what := "started"
			if wait > 0 {
				what = "Ready"
			}
			fmt.Fprintf(env.Stdout, "node %q added to %q (%s, ip %s) in %.1fs\n", info.Name, profile, what, info.IP, time.Since(began).Seconds())
			return nil
		},
	}
	addProfileFlag(cmd, &profile)
	cmd.Flags().StringVar(&role, "role", "worker", "role of the new node (only worker: a cluster has one control plane)")
	cmd.Flags().StringVar(&cpus, "cpus", "", "CPU capacity of the new node, e.g. 2 or 1500m (default: the cluster's)")
	cmd.Flags().StringVar(&memory, "memory", "", "memory capacity of the new node, e.g. 4Gi (default: the cluster's)")
	cmd.Flags().IntVar(&maxPods, "max-pods", 0, "pods the new node accepts (default: the cluster's)")
	cmd.Flags().DurationVar(&wait, "wait", 2*time.Minute, "how long to wait for the node Ready (0: return once it is started)")
	addOutputFlag(cmd, &output)
	return cmd
}

func newNodeStopCommand(env Env) *cobra.Command {
	var profile string
	var output outputFlag
	cmd := &cobra.Command{
		Use:   "stop NAME",
		Short: "Stop a worker node, keeping its state",
		Args:  oneNodeName,
		RunE: func(cmd *cobra.Command, args []string) error {
			err := withManager(env, output, func(m *cluster.Manager) error {
				return m.StopNode(cmd.Context(), profile, args[0])
			})
			if err != nil {
				return fmt.Errorf("stop node %s: %w", args[0], err)
			}
			if output == "text" {
				fmt.Fprintf(env.Stdout, "node %q of %q stopped\n", args[0], profile)
			}
			return nil
		},
	}
	addProfileFlag(cmd, &profile)
	addOutputFlag(cmd, &output)
	return cmd
}

func newNodeStartCommand(env Env) *cobra.Command {
	var profile string
	var wait time.Duration
	var output outputFlag
	cmd := &cobra.Command{
		Use:   "start NAME",
		Short: "Start a stopped node of a running cluster",
		Args:  oneNodeName,
		RunE: func(cmd *cobra.Command, args []string) error {
			err := withManager(env, output, func(m *cluster.Manager) error {
				return m.StartNode(cmd.Context(), profile, args[0], wait)
			})
			if err != nil {
				return commandError(err, "start node %s", args[0])
			}
			if output == "text" {
				what := "started"
				if wait > 0 {
					what = "Ready"
				}
				fmt.Fprintf(env.Stdout, "node %q of %q is running (%s)\n", args[0], profile, what)
			}
			return nil
		},
	}
	addProfileFlag(cmd, &profile)
	cmd.Flags().DurationVar(&wait, "wait", 2*time.Minute, "how long to wait for the node Ready (0: return once it is started)")
	addOutputFlag(cmd, &output)
	return cmd
}

func newNodeDeleteCommand(env Env) *cobra.Command {
	var profile string
	var output outputFlag
	cmd := &cobra.Command{
		Use:   "delete NAME",
		Short: "Drain a worker node and delete it",
		Args:  oneNodeName,
		RunE: func(cmd *cobra.Command, args []string) error {
			err := withManager(env, output, func(m *cluster.Manager) error {
				return m.DeleteNode(cmd.Context(), profile, args[0])
			})
			if err != nil {
				return fmt.Errorf("delete node %s: %w", args[0], err)
			}
			if output == "text" {
				fmt.Fprintf(env.Stdout, "node %q deleted from %q\n", args[0], profile)
			}
			return nil
		},
	}
	addProfileFlag(cmd, &profile)
	addOutputFlag(cmd, &output)
	return cmd
}

// withManager runs call with a Manager reporting progress for output, and
// stops the progress display before the caller prints its result.
func withManager(env Env, output outputFlag, call func(*cluster.Manager) error) error {
	r := newReporter(env, string(output))
	m, err := newManager(env, r)
	if err == nil {
		err = call(m)
	}
	r.Close()
	return err
}

func newNodeJoinCommand(env Env) *cobra.Command {
	var profile string
	var ttl time.Duration
	var output outputFlag
	cmd := &cobra.Command{
		Use:   "join-command",
		Short: "Print the command that joins another machine to the cluster as a node (needs --listen-address at start)",
		Long: "Create a bootstrap token that expires after --ttl and print the `minik-node join` line to run on the other machine.\n" +
			"The line carries the hash of the cluster CA's public key: the other machine trusts only that CA.",
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var jc *cluster.JoinCommand
			err := withManager(env, output, func(m *cluster.Manager) error {
				var err error
				jc, err = m.NewJoinCommand(cmd.Context(), profile, ttl)
				return err
			})
			if err != nil {
				return commandError(err, "create a join command for %s", profile)
			}
			if output == "json" {
				return json.NewEncoder(env.Stdout).Encode(jc)
			}
			fmt.Fprintln(env.Stdout, jc.Command)
			return nil
		},
	}
	addProfileFlag(cmd, &profile)
	cmd.Flags().DurationVar(&ttl, "ttl", time.Hour, "how long the token may be used to join (1m to 168h)")
	addOutputFlag(cmd, &output)
	return cmd
}
