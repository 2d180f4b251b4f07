package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"minik.dev/minik/cluster"
)

func newStopCommand(env Env) *cobra.Command {
	var profile string
	var output outputFlag
	cmd := &cobra.Command{
		Use:   "stop",
		Short: "Stop a cluster, keeping its state",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			err := withManager(env, output, func(m *cluster.Manager) error {
				return m.Stop(cmd.Context(), profile)
			})
			if err != nil {
				return fmt.Errorf("stop %s: %w", profile, err)
			}
			if output == "text" {
				fmt.Fprintf(env.Stdout, "minik %q stopped\n", profile)
			}
			return nil
		},
	}
	addProfileFlag(cmd, &profile)
	addOutputFlag(cmd, &output)
	return cmd
}
