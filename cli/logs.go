package cli

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"minik.dev/minik/cluster"
	"minik.dev/minik/logexport"
)

func newLogsCommand(env Env) *cobra.Command {
	var profile string
	var o cluster.NodeLogOptions
	cmd := &cobra.Command{
		Use:   "logs",
		Short: "Print a node's agent log (the control-plane node's holds the control plane's log too)",
		Long: "Print what minik-node logged on a node, on every driver: by default the control-plane node's,\n" +
			"which also holds the apiserver's, scheduler's and controller manager's log (they run inside it).\n" +
			"With -f, keep printing what is appended until interrupted.",
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			m, err := newManager(env, nil)
			if err != nil {
				return err
			}
			if err := m.NodeLog(cmd.Context(), profile, o, env.Stdout); err != nil {
				return commandError(err, "logs of %s", profile)
			}
			return nil
		},
	}
	addProfileFlag(cmd, &profile)
	cmd.Flags().StringVar(&o.Node, "node", "", "node whose log to print (default: the control-plane node; `minik node list` names them)")
	cmd.Flags().BoolVarP(&o.Follow, "follow", "f", false, "keep printing what the node logs until interrupted (Ctrl-C)")
	cmd.Flags().IntVar(&o.Tail, "tail", -1, "print only the last N lines (-1: all)")
	return cmd
}

func newExportCommand(env Env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "export",
		Short: "Export what helps to find out why a cluster failed",
		Args:  noArgs,
	}
	cmd.AddCommand(newExportLogsCommand(env))
	return cmd
}

func newExportLogsCommand(env Env) *cobra.Command {
	var profile string
	var force, tar bool
	cmd := &cobra.Command{
		Use:   "logs [DIR]",
		Short: "Write every node's log, the cluster's objects, events and pod logs into a folder (or a .tar.gz)",
		Long: "Write into DIR (default: ./minik-logs-PROFILE-TIME) every node's agent and control-plane log,\n" +
			"what the driver keeps (docker: each node's /var/log and the engine's inspect JSON), the\n" +
			"apiserver's objects, events and pod logs when it answers, minik's version and the profile.\n" +
			"summary.txt lists what was collected and why anything was not: a stopped cluster still\n" +
			"exports its node logs. With --tar, or a DIR ending in .tar.gz, write one .tar.gz file.",
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) > 1 {
				return &usageError{err: fmt.Errorf("%s takes at most one folder, got %q", cmd.CommandPath(), args)}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			dest := cluster.DefaultExportName(profile, time.Now())
			if len(args) == 1 {
				dest = args[0]
			}
			abs, err := filepath.Abs(dest)
			if err != nil {
				return fmt.Errorf("export logs: resolve %s: %w", dest, err)
			}
			m, err := newManager(env, nil)
			if err != nil {
				return err
			}
			res, err := m.ExportLogs(cmd.Context(), profile, cluster.ExportLogsOptions{Path: abs, Force: force, Tar: tar})
			var incomplete *logexport.IncompleteError
			switch {
			case errors.As(err, &incomplete):
				return fmt.Errorf("export logs of %s: %w", profile, err)
			case err != nil:
				return exportError(err, dest, profile)
			}
			fmt.Fprintf(env.Stdout, "exported logs of %q to %s (%d files; see %s)\n", profile, res.Path, len(res.Collected), logexport.SummaryFile)
			if n := len(res.Missing); n > 0 {
				fmt.Fprintf(env.Stderr, "Warning: %d thing(s) could not be collected, for example %s: %s; %s says what and why\n",
					n, res.Missing[0].What, oneLine(res.Missing[0].Why), logexport.SummaryFile)
			}
			return nil
		},
	}
	addProfileFlag(cmd, &profile)
	cmd.Flags().BoolVar(&force, "force", false, "write into a folder that is not empty, or replace an existing archive")
	cmd.Flags().BoolVar(&tar, "tar", false, "write one .tar.gz file (DIR.tar.gz) instead of a folder")
	return cmd
}

// exportError reports an invalid destination as the DIR argument the user
// typed, anything else after what failed.
func exportError(err error, typed, profile string) error {
	var invalid *cluster.InvalidOptionError
	if errors.As(err, &invalid) && invalid.Field == "Path" {
		return &usageError{err: fmt.Errorf("export logs: cannot write to %s: %s", typed, invalid.Reason)}
	}
	return commandError(err, "export logs of %s", profile)
}

// oneLine keeps a warning on one line.
func oneLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i] + " ..."
	}
	return s
}
