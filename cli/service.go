package cli

import (
	"fmt"

	"github.com/spf13/cobra"
)

func newServiceCommand(env Env) *cobra.Command {
	var profile, namespace string
	var url bool
	cmd := &cobra.Command{
		Use:   "service NAME",
		Short: "Print the URLs on which this machine reaches a Service",
		Long: "Print one URL per TCP port of the Service: its ClusterIP, which this machine reaches directly\n" +
			"on the cluster's network (docker driver). Pods of the process driver are simulated, so it refuses.",
		Example: "  minik service web\n  curl $(minik service web -n shop --url)",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			m, err := newManager(env, nil)
			if err != nil {
				return err
			}
			urls, err := m.ServiceURLs(cmd.Context(), profile, namespace, args[0])
			if err != nil {
				return fmt.Errorf("service %s: %w", args[0], err)
			}
			for _, u := range urls {
				fmt.Fprintln(env.Stdout, u)
			}
			return nil
		},
	}
	addProfileFlag(cmd, &profile)
	cmd.Flags().StringVarP(&namespace, "namespace", "n", "default", "namespace of the Service")
	// Printing is all it does; --url is accepted as minikube users type it.
	cmd.Flags().BoolVar(&url, "url", false, "print the URLs (the default: nothing is opened)")
	return cmd
}
