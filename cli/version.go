package cli

import (
	"encoding/json"
	"fmt"
	"runtime"

	"github.com/spf13/cobra"

	"minik.dev/minik/version"
)

func newVersionCommand(env Env) *cobra.Command {
	var output outputFlag
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print minik's version and the Kubernetes version it runs",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			v := map[string]string{
				"minik":      version.Version,
				"kubernetes": version.Kubernetes,
				"go":         runtime.Version(),
				"platform":   runtime.GOOS + "/" + runtime.GOARCH,
			}
			if output == "json" {
				return json.NewEncoder(env.Stdout).Encode(v)
			}
			fmt.Fprintf(env.Stdout, "minik %s (kubernetes %s, %s, %s)\n", v["minik"], v["kubernetes"], v["go"], v["platform"])
			return nil
		},
	}
	addOutputFlag(cmd, &output)
	return cmd
}
