package cli

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"
)

func newServiceCommand(env Env) *cobra.Command {
	var profile, namespace string
	var url bool
	cmd := &cobra.Command{
		Use:   "service NAME",
		Short: "Print the URLs on which this machine reaches a Service",
		Long: "Print one URL per TCP port of the Service: its LoadBalancer address, else its ClusterIP, which this\n" +
			"machine reaches directly on the cluster's network (docker driver), and 127.0.0.1 with the host port\n" +
			"when the ports are published there too (Docker Desktop, or start --publish-localhost); then, without\n" +
			"--url, one URL per Ingress rule that sends to it, on the Ingress's address, with the Ingress and the\n" +
			"rule's host after it, and one per HTTPRoute match that sends to it, on the address of each Gateway\n" +
			"that accepted the route.\n" +
			"Pods of the process driver are simulated, so it refuses.",
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
				// --url keeps to the Service's own URLs, one word each, for scripts.
				if url && strings.Contains(u, " ") {
					continue
				}
				fmt.Fprintln(env.Stdout, u)
			}
			return nil
		},
	}
	addProfileFlag(cmd, &profile)
	cmd.Flags().StringVarP(&namespace, "namespace", "n", "default", "namespace of the Service")
	// Printing is all it does; --url is accepted as minikube users type it.
	cmd.Flags().BoolVar(&url, "url", false, "print only the Service's own URLs, one word each (nothing is opened either way)")
	return cmd
}
