package cli

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"minik.dev/minik/cluster"
)

type startOptions struct {
	profile       string
	driver        string
	nodes         int
	apiServerPort int
	wait          time.Duration
	output        outputFlag
}

func newStartCommand(env Env) *cobra.Command {
	var o startOptions
	cmd := &cobra.Command{
		Use:   "start",
		Short: "Create a cluster, or start a stopped one",
		Long: "Create the profile's cluster if it does not exist, start it if it is stopped, and do nothing if it runs.\n" +
			"The kubeconfig context named after the profile is merged and made current.",
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runStart(cmd, env, o, cmd.Flags().Changed("nodes"))
		},
	}
	addProfileFlag(cmd, &o.profile)
	cmd.Flags().StringVar(&o.driver, "driver", "", "driver that makes the nodes (default: docker when an engine answers, else process)")
	cmd.Flags().IntVar(&o.nodes, "nodes", 1, "number of nodes, the first of them the control plane (only when creating)")
	cmd.Flags().IntVar(&o.apiServerPort, "apiserver-port", 0, "port of the apiserver on 127.0.0.1 (default: a free port)")
	cmd.Flags().DurationVar(&o.wait, "wait", 5*time.Minute, "how long to wait for every node Ready and the default ServiceAccount (0: return once the API answers)")
	addOutputFlag(cmd, &o.output)
	return cmd
}

func runStart(cmd *cobra.Command, env Env, o startOptions, nodesSet bool) error {
	nodes := 0
	if nodesSet {
		if o.nodes < 1 {
			return fmt.Errorf("invalid --nodes %d: a cluster needs at least 1 node", o.nodes)
		}
		nodes = o.nodes
	}
	if o.wait < 0 {
		return fmt.Errorf("invalid --wait %s: use a duration such as 5m, or 0 not to wait", o.wait)
	}
	r := newReporter(env, string(o.output))
	m, err := newManager(env, r)
	if err != nil {
		return err
	}
	began := time.Now()
	st, err := m.Start(cmd.Context(), cluster.StartOptions{
		Profile:       o.profile,
		Driver:        o.driver,
		Nodes:         nodes,
		APIServerPort: o.apiServerPort,
		Wait:          o.wait,
	})
	r.Close()
	if err != nil {
		return fmt.Errorf("start %s: %w", o.profile, err)
	}
	if o.output == "json" {
		return json.NewEncoder(env.Stdout).Encode(st)
	}
	what := "API answers"
	if o.wait > 0 {
		what = fmt.Sprintf("%d node(s) Ready", len(st.Nodes))
	}
	fmt.Fprintf(env.Stdout, "minik %q is running (%s, driver %s) in %.1fs\n", st.Name, what, st.Driver, time.Since(began).Seconds())
	fmt.Fprintf(env.Stdout, "kubectl context %q in %s, apiserver %s\n", st.Context, st.Kubeconfig, st.APIServer)
	return nil
}
