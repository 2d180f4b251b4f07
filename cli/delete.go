package cli

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"
)

func newDeleteCommand(env Env) *cobra.Command {
	var profile string
	var all bool
	var output outputFlag
	cmd := &cobra.Command{
		Use:   "delete",
		Short: "Delete a cluster: its nodes, its state and its kubeconfig context",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if all && cmd.Flags().Changed("profile") {
				return errors.New("use either --profile or --all, not both")
			}
			r := newReporter(env, string(output))
			defer r.Close()
			m, err := newManager(env, r)
			if err != nil {
				return err
			}
			names := []string{profile}
			if all {
				if names, err = m.Store().Names(); err != nil {
					return err
				}
				if len(names) == 0 && output == "text" {
					fmt.Fprintln(env.Stdout, "no profiles to delete")
				}
			}
			var errs []error
			for _, name := range names {
				if err := m.Delete(cmd.Context(), name); err != nil {
					errs = append(errs, fmt.Errorf("delete %s: %w", name, err))
					continue
				}
				if output == "text" {
					fmt.Fprintf(env.Stdout, "minik %q deleted\n", name)
				}
			}
			return errors.Join(errs...)
		},
	}
	addProfileFlag(cmd, &profile)
	cmd.Flags().BoolVar(&all, "all", false, "delete every profile")
	addOutputFlag(cmd, &output)
	return cmd
}
