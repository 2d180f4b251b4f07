package cli

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	kubectlcmd "k8s.io/kubectl/pkg/cmd"
	"k8s.io/kubectl/pkg/cmd/plugin"

	"minik.dev/minik/cluster"
)

func newKubectlCommand(env Env) *cobra.Command {
	return &cobra.Command{
		Use:   "kubectl [-p PROFILE] -- [kubectl arguments]",
		Short: "Run the upstream kubectl, built in, against a profile's cluster",
		Long: "Run kubectl (the upstream code, at the cluster's Kubernetes version) against the profile's cluster,\n" +
			"so no separate kubectl is needed. Arguments after -- go to kubectl.",
		Example:            "  minik kubectl -- get pods -A\n  minik kubectl -p dev -- apply -f app.yaml",
		DisableFlagParsing: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			profile, kargs, err := splitKubectlArgs(args)
			if err != nil {
				return err
			}
			if profile == "" {
				profile = cluster.DefaultProfile
			}
			if err := cluster.ValidateName(profile); err != nil {
				return err
			}
			m, err := newManager(env, nil)
			if err != nil {
				return err
			}
			if _, err := m.Store().Load(profile); err != nil {
				return fmt.Errorf("kubectl: %w; create it with `minik start -p %s`", err, profile)
			}
			if !hasFlag(kargs, "kubeconfig") {
				kargs = append([]string{"--kubeconfig=" + m.Store().AdminKubeconfig(profile)}, kargs...)
			}
			streams := genericiooptions.IOStreams{In: env.Stdin, Out: env.Stdout, ErrOut: env.Stderr}
			kubectl := kubectlcmd.NewDefaultKubectlCommandWithArgs(kubectlcmd.KubectlOptions{
				PluginHandler: kubectlcmd.NewDefaultPluginHandler(plugin.ValidPluginFilenamePrefixes),
				Arguments:     append([]string{"kubectl"}, kargs...),
				ConfigFlags:   genericclioptions.NewConfigFlags(true).WithDeprecatedPasswordFlag().WithDiscoveryBurst(300).WithDiscoveryQPS(50.0).WithWarningPrinter(streams),
				IOStreams:     streams,
			})
			kubectl.SetArgs(kargs)
			return kubectl.ExecuteContext(cmd.Context())
		},
	}
}

// splitKubectlArgs takes minik's own -p/--profile (and --help) from before
// "--"; everything after "--" (or everything, without it) is kubectl's.
func splitKubectlArgs(args []string) (profile string, kubectl []string, err error) {
	sep := -1
	for i, a := range args {
		if a == "--" {
			sep = i
			break
		}
	}
	if sep < 0 {
		return "", args, nil
	}
	own := args[:sep]
	for i := 0; i < len(own); i++ {
		a := own[i]
		switch {
		case a == "-p" || a == "--profile":
			if i+1 >= len(own) {
				return "", nil, fmt.Errorf("%s needs a profile name", a)
			}
			profile = own[i+1]
			i++
		case strings.HasPrefix(a, "--profile="):
			profile = strings.TrimPrefix(a, "--profile=")
		case strings.HasPrefix(a, "-p="):
			profile = strings.TrimPrefix(a, "-p=")
		default:
			return "", nil, fmt.Errorf("unknown flag %q before --: minik kubectl takes only -p/--profile there", a)
		}
	}
	return profile, args[sep+1:], nil
}

func hasFlag(args []string, name string) bool {
	for _, a := range args {
		if a == "--" {
			return false
		}
		if a == "--"+name || strings.HasPrefix(a, "--"+name+"=") {
			return true
		}
	}
	return false
}
