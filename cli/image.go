package cli

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"minik.dev/minik/cluster"
	"minik.dev/minik/imageserver"
)

func newImageCommand(env Env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "image",
		Short: "Put images into a cluster's nodes",
	}
	cmd.AddCommand(newImageLoadCommand(env), newImageServeCommand())
	return cmd
}

// imageServerCommand is `minik image serve` of this very binary: the kvm
// driver runs it beside a cluster (see package imageserver).
func imageServerCommand(addr, dir string) *exec.Cmd {
	self, err := os.Executable()
	if err != nil {
		self = os.Args[0]
	}
	return exec.Command(self, "image", "serve", "--listen", addr, "--dir", dir)
}

func newImageServeCommand() *cobra.Command {
	var listen, dir string
	cmd := &cobra.Command{
		Use:    "serve",
		Short:  "Serve this machine's Docker Engine images to a VM cluster's nodes (run by minik start)",
		Hidden: true,
		Args:   noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if listen == "" || dir == "" {
				return &usageError{err: errors.New("image serve needs --listen and --dir")}
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGTERM, os.Interrupt)
			defer stop()
			eng, err := imageserver.NewDockerEngine()
			if err != nil {
				return err
			}
			defer eng.Close()
			srv := imageserver.New(eng, dir)
			defer srv.Close()
			return imageserver.Serve(ctx, listen, srv)
		},
	}
	cmd.Flags().StringVar(&listen, "listen", "", "address to serve on (host:port)")
	cmd.Flags().StringVar(&dir, "dir", "", "folder for exported images")
	return cmd
}

func newImageLoadCommand(env Env) *cobra.Command {
	var profile string
	cmd := &cobra.Command{
		Use:   "load FILE.tar | IMAGE...",
		Short: "Load images into every node of a VM cluster",
		Long: "Load the images of a docker save archive, or images of this machine's Docker Engine (exported\n" +
			"with docker save first), into every node of the cluster; pods then run them with no pull.\n" +
			"Nodes of the kvm driver keep their own images; docker nodes use this machine's engine, and\n" +
			"process nodes simulate pods, so neither needs a load.",
		Example: "  docker build -t web:1 . && minik image load web:1\n  minik image load -p dev images.tar",
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return &usageError{err: fmt.Errorf("%s needs a docker save archive or image names; see `%s --help`", cmd.CommandPath(), cmd.CommandPath())}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			src := cluster.ImageSource{Images: args}
			if len(args) == 1 && strings.HasSuffix(args[0], ".tar") {
				if _, err := os.Stat(args[0]); err != nil {
					return &usageError{err: fmt.Errorf("image load: %w", err)}
				}
				src = cluster.ImageSource{Archive: args[0]}
			}
			m, err := newManager(env, nil)
			if err != nil {
				return err
			}
			loaded, err := m.LoadImages(cmd.Context(), profile, src)
			for _, l := range loaded {
				fmt.Fprintf(env.Stdout, "%s: %s\n", l.Node, strings.Join(l.Images, ", "))
			}
			if errors.Is(err, cluster.ErrNoImageStore) {
				return &usageError{err: err}
			}
			return err
		},
	}
	addProfileFlag(cmd, &profile)
	return cmd
}
