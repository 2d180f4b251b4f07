package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"minik.dev/minik/cluster"
)

func newStatusCommand(env Env) *cobra.Command {
	var profile string
	var output outputFlag
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show a cluster's state and its nodes",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			m, err := newManager(env, nil)
			if err != nil {
				return err
			}
			st, err := m.Status(cmd.Context(), profile)
			if err != nil {
				return fmt.Errorf("status %s: %w", profile, err)
			}
			if output == "json" {
				return json.NewEncoder(env.Stdout).Encode(st)
			}
			printStatus(env.Stdout, st)
			return nil
		},
	}
	addProfileFlag(cmd, &profile)
	addOutputFlag(cmd, &output)
	return cmd
}

func printStatus(w io.Writer, st *cluster.Status) {
	fmt.Fprintf(w, "%s\n  driver:     %s\n  state:      %s\n  apiserver:  %s\n  kubeconfig: %s (context %s)\n",
		st.Name, st.Driver, st.State, st.APIServer, st.Kubeconfig, st.Context)
	if a := st.Autoscale; a != nil {
		fmt.Fprintf(w, "  autoscale:  %d to %d workers, idle ones removed after %ds\n", a.Min, a.Max, a.ScaleDownAfterSeconds)
	}
	if c := st.Certificates; c != nil {
		fmt.Fprintf(w, "  certificates: valid until %s (%s first)", c.NotAfter.Local().Format("2006-01-02 15:04"), c.First)
		if c.RenewedAtStart {
			fmt.Fprintf(w, "; renewed at the next start: `minik stop -p %s && minik start -p %s`", st.Name, st.Name)
		}
		fmt.Fprintln(w)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  NAME\tROLE\tSTATE\tIP")
	for _, n := range st.Nodes {
		state := n.State
		if n.Host != "" || n.Ready != "" {
			// A joined node: where it runs and how it is.
			state = fmt.Sprintf("%s (%s, on %s)", n.State, orDash(n.Ready), orDash(n.Host))
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", n.Name, n.Role, state, n.IP)
	}
	tw.Flush()
}

func newProfileCommand(env Env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "profile",
		Short: "Manage profiles (one cluster each)",
		Args:  noArgs,
	}
	var output outputFlag
	list := &cobra.Command{
		Use:   "list",
		Short: "List profiles and their state",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			m, err := newManager(env, nil)
			if err != nil {
				return err
			}
			sts, err := m.List(cmd.Context())
			if err != nil {
				return err
			}
			if output == "json" {
				return json.NewEncoder(env.Stdout).Encode(sts)
			}
			if len(sts) == 0 {
				fmt.Fprintln(env.Stdout, "no profiles; create one with `minik start`")
				return nil
			}
			tw := tabwriter.NewWriter(env.Stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tDRIVER\tSTATE\tNODES\tAPISERVER")
			for _, st := range sts {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\n", st.Name, st.Driver, st.State, len(st.Nodes), st.APIServer)
			}
			return tw.Flush()
		},
	}
	addOutputFlag(list, &output)
	cmd.AddCommand(list)
	return cmd
}
