package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
)

// driverHealthTimeout bounds each driver's health check in the list: a
// daemon that does not answer is reported, not waited for.
const driverHealthTimeout = 10 * time.Second

func newDriverCommand(env Env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "driver",
		Short: "List the drivers that make nodes, and whether each can here",
	}
	var output outputFlag
	list := &cobra.Command{
		Use:   "list",
		Short: "List the drivers, whether each can make nodes on this machine, and if not why",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, cancel := context.WithTimeout(cmd.Context(), driverHealthTimeout)
			defer cancel()
			all := env.Drivers.Availability(ctx)
			if output == "json" {
				return json.NewEncoder(env.Stdout).Encode(all)
			}
			w := tabwriter.NewWriter(env.Stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "DRIVER\tSTATUS\tDESCRIPTION")
			for _, a := range all {
				status := "available"
				if !a.Available {
					status = "unavailable"
				}
				fmt.Fprintf(w, "%s\t%s\t%s\n", a.Name, status, a.Description)
				if !a.Available {
					why := a.Problem
					if a.Fix != "" {
						why += "; " + a.Fix
					}
					fmt.Fprintf(w, "\t\t  %s\n", why)
				}
			}
			return w.Flush()
		},
	}
	addOutputFlag(list, &output)
	cmd.AddCommand(list)
	return cmd
}
