package cli

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/spf13/cobra"
)

func newManifestsCommand(env Env) *cobra.Command {
	var profile string
	var output outputFlag
	cmd := &cobra.Command{
		Use:   "manifests",
		Short: "Print the manifests folder and how each of its files was applied",
		Long: "The control plane applies every *.yaml, *.yml, *.json and *.jsonnet file of the profile's manifests\n" +
			"folder at start and within moments of any change (server-side apply), and deletes what a removed file\n" +
			"(or a removed object of a file) had made. This prints the folder, then each file with its objects,\n" +
			"when it was last applied and what went wrong.",
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			m, err := newManager(env, nil)
			if err != nil {
				return err
			}
			st, err := m.Manifests(cmd.Context(), profile)
			if err != nil {
				return err
			}
			if output == "json" {
				enc := json.NewEncoder(env.Stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(st)
			}
			fmt.Fprintln(env.Stdout, "folder:", st.Dir)
			if st.Unknown != "" {
				fmt.Fprintln(env.Stdout, "state unknown:", st.Unknown)
				return nil
			}
			if len(st.Files) == 0 {
				fmt.Fprintln(env.Stdout, "no file applied yet: put *.yaml, *.json or *.jsonnet files there")
			}
			for _, f := range st.Files {
				result := "ok"
				if len(f.Errors) > 0 {
					result = fmt.Sprintf("%d error(s)", len(f.Errors))
				}
				fmt.Fprintf(env.Stdout, "%s  applied %s ago  %s\n", f.File, time.Since(f.AppliedAt).Truncate(time.Second), result)
				for _, o := range f.Objects {
					fmt.Fprintln(env.Stdout, "  ", o)
				}
				for _, e := range f.Errors {
					fmt.Fprintln(env.Stdout, "   error:", e)
				}
			}
			return nil
		},
	}
	addProfileFlag(cmd, &profile)
	addOutputFlag(cmd, &output)
	return cmd
}
