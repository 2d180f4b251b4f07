package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/api/resource"

	"minik.dev/minik/cluster"
	"minik.dev/minik/nodeconfig"
)

func newAddonsCommand(env Env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "addons",
		Short: "Turn a running cluster's addons on and off: " + strings.Join(cluster.Addons, ", "),
		Long: "prometheus: the Prometheus server (its scrapes, TSDB, PromQL and HTTP API) runs in the control-plane\n" +
			"node, scraping the apiserver, every kubelet (/metrics, /metrics/cadvisor, /metrics/resource,\n" +
			"/metrics/probes) and every pod and Service annotated prometheus.io/scrape: \"true\". It is the Service\n" +
			"kube-system/prometheus (`minik service prometheus -n kube-system`); its data stays across stop and start.",
		Args: noArgs,
	}
	cmd.AddCommand(newAddonsListCommand(env), newAddonsEnableCommand(env), newAddonsDisableCommand(env))
	return cmd
}

func addonArg(_ *cobra.Command, args []string) error {
	if len(args) != 1 {
		return &usageError{err: fmt.Errorf("name one addon: %s", strings.Join(cluster.Addons, ", "))}
	}
	if !slices.Contains(cluster.Addons, args[0]) {
		return &usageError{err: fmt.Errorf("unknown addon %q: use %s", args[0], strings.Join(cluster.Addons, ", "))}
	}
	return nil
}

func newAddonsEnableCommand(env Env) *cobra.Command {
	var (
		profile  string
		size     string
		settings = nodeconfig.DefaultPrometheus()
	)
	cmd := &cobra.Command{
		Use:     "enable ADDON",
		Short:   "Turn an addon on, or change its settings",
		Example: "  minik addons enable prometheus\n  minik addons enable prometheus --retention 72h --retention-size 2Gi",
		Args:    addonArg,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if size != "" {
				q, err := resource.ParseQuantity(size)
				if err != nil {
					return &usageError{err: fmt.Errorf("invalid --retention-size %q: use a size such as 1Gi", size)}
				}
				settings.RetentionBytes = q.Value()
			}
			if err := settings.Validate(); err != nil {
				return &usageError{err: fmt.Errorf("invalid prometheus settings: %w", err)}
			}
			m, err := newManager(env, nil)
			if err != nil {
				return err
			}
			if err := m.SetPrometheus(cmd.Context(), profile, &settings); err != nil {
				return commandError(err, "enable prometheus in %s", profile)
			}
			fmt.Fprintf(env.Stdout, "prometheus is on in %q, keeping %s or %s; `minik service prometheus -n kube-system -p %s` prints its URL\n",
				profile, settings.Retention, resource.NewQuantity(settings.RetentionBytes, resource.BinarySI), profile)
			return nil
		},
	}
	addProfileFlag(cmd, &profile)
	cmd.Flags().DurationVar(&settings.Retention, "retention", settings.Retention, "prometheus: how long samples are kept (at least 1h)")
	cmd.Flags().StringVar(&size, "retention-size", "1Gi", "prometheus: most disk the samples use; the oldest go first (at least 64Mi)")
	cmd.Flags().DurationVar(&settings.ScrapeInterval, "scrape-interval", settings.ScrapeInterval, "prometheus: how often every target is scraped (1s to 5m)")
	return cmd
}

func newAddonsDisableCommand(env Env) *cobra.Command {
	var profile string
	cmd := &cobra.Command{
		Use:   "disable ADDON",
		Short: "Turn an addon off (prometheus keeps its data for the next enable)",
		Args:  addonArg,
		RunE: func(cmd *cobra.Command, _ []string) error {
			m, err := newManager(env, nil)
			if err != nil {
				return err
			}
			if err := m.SetPrometheus(cmd.Context(), profile, nil); err != nil {
				return commandError(err, "disable prometheus in %s", profile)
			}
			fmt.Fprintf(env.Stdout, "prometheus is off in %q; its data is kept\n", profile)
			return nil
		},
	}
	addProfileFlag(cmd, &profile)
	return cmd
}

func newAddonsListCommand(env Env) *cobra.Command {
	var profile string
	var output outputFlag
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the addons of a running cluster and whether they are on",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			m, err := newManager(env, nil)
			if err != nil {
				return err
			}
			addons, err := m.AddonStatuses(cmd.Context(), profile)
			if err != nil {
				return fmt.Errorf("list addons of %s: %w", profile, err)
			}
			if output == "json" {
				return json.NewEncoder(env.Stdout).Encode(addons)
			}
			return printAddons(env.Stdout, addons)
		},
	}
	addProfileFlag(cmd, &profile)
	addOutputFlag(cmd, &output)
	return cmd
}

func printAddons(w io.Writer, addons []cluster.AddonStatus) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tSTATE\tURL")
	for _, a := range addons {
		state, url := "off", ""
		if a.Enabled {
			state, url = "on", strings.Join(a.URLs, " ")
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", a.Name, state, url)
	}
	return tw.Flush()
}
