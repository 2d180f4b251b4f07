// Command minik-node runs inside every node: the node agent, and on the first
// node the embedded control plane.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	goruntime "runtime"
	"syscall"
	"time"

	"k8s.io/klog/v2"

	"minik.dev/minik/controlplane"
	"minik.dev/minik/forward"
	"minik.dev/minik/join"
	"minik.dev/minik/kubelet"
	"minik.dev/minik/kubelet/podroutes"
	vmimage "minik.dev/minik/node-image/vm"
	"minik.dev/minik/nodeconfig"
	"minik.dev/minik/version"
)

func main() {
	if os.Getpid() == 1 && os.Args[0] == vmimage.InitPath {
		// The init of a VM node (the kvm driver's initramfs); in a node
		// container minik-node is process 1 too, under its own name.
		vmInit()
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	if err := run(ctx, os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "minik-node:", err)
		klog.Flush()
		os.Exit(1)
	}
	klog.Flush()
}

func run(ctx context.Context, args []string) error {
	if len(args) == 1 && args[0] == "pause" {
		// A pod sandbox of the docker runtime: it only holds the pod's
		// network namespace until the runtime stops it.
		<-ctx.Done()
		return nil
	}
	if len(args) > 0 && args[0] == "forward" {
		// A LoadBalancer Service's forwarder: the engine publishes its
		// ports on the host's 127.0.0.1, it relays them to the Service.
		rules := make([]forward.Rule, 0, len(args)-1)
		for _, a := range args[1:] {
			r, err := forward.ParseRule(a)
			if err != nil {
				return err
			}
			rules = append(rules, r)
		}
		return forward.Run(ctx, rules)
	}
	if len(args) > 0 && args[0] == "route" {
		// The docker driver's route helper: in the host's network
		// namespace, it changes the host's routes to joined nodes' pods
		// for the control-plane node, whose namespace is its container's.
		return podroutes.Command(ctx, podroutes.NewTable(), routeRecord, args[1:])
	}
	if len(args) > 0 && args[0] == "join" {
		path, err := joinCluster(ctx, args[1:])
		if err != nil || path == "" {
			return err
		}
		args = []string{"--config", path}
	}
	fs := flag.NewFlagSet("minik-node", flag.ContinueOnError)
	configPath := fs.String("config", "", "path of the node config file written by minik")
	hostDir := fs.String("host-dir", "", "run the simulated nodes listed in this folder (see kubelet.RunHost) instead of one node")
	// --cluster and --role only label the process, so `ps` and the process
	// driver can tell which cluster it belongs to; the config file rules.
	fs.String("cluster", "", "cluster this node belongs to (informational)")
	fs.String("role", "", "role of this node (informational)")
	showVersion := fs.Bool("version", false, "print the version and exit")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *showVersion {
		fmt.Printf("minik-node %s (kubernetes %s)\n", version.Version, version.Kubernetes)
		return nil
	}
	startProfile()
	if *hostDir != "" {
		reload := make(chan os.Signal, 1)
		signal.Notify(reload, syscall.SIGHUP)
		defer signal.Stop(reload)
		klog.InfoS("starting node host", "dir", *hostDir, "version", version.Version)
		return kubelet.RunHost(ctx, *hostDir, reload)
	}
	if *configPath == "" {
		return errors.New("--config or --host-dir is required")
	}
	return runNode(ctx, *configPath)
}

// runNode runs the node whose config is at configPath until ctx is done
// or one of its parts fails.
func runNode(ctx context.Context, configPath string) error {
	cfg, err := nodeconfig.Load(configPath)
	if err != nil {
		return err
	}
	if cfg.AgentLog != "" {
		stopLog, err := keepAgentLog(cfg.AgentLog)
		if err != nil {
			return err
		}
		defer stopLog()
	}
	klog.InfoS("starting node", "node", cfg.Name, "cluster", cfg.Cluster, "role", cfg.Role, "version", version.Version)

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errs := make(chan error, 2)
	running := 0
	// Both are built before either runs: building writes process-wide
	// state (flags, feature gates, client-go's scheme) that running reads.
	var cp *controlplane.ControlPlane
	if cfg.Role == nodeconfig.RoleControlPlane {
		if cp, err = controlplane.New(ctx, cfg); err != nil {
			return err
		}
	}
	agent, err := kubelet.New(cfg)
	if err != nil {
		return err
	}
	if cp != nil {
		running++
		go func() { errs <- cp.Run(ctx) }()
	}
	running++
	go func() { errs <- agent.Run(ctx) }()

	// The first to return ends the node; wait for the rest to stop cleanly.
	var first error
	for i := 0; i < running; i++ {
		err := <-errs
		if first == nil && err != nil {
			first = err
		}
		cancel()
	}
	if cfg.Joined && errors.Is(first, kubelet.ErrNodeDeleted) {
		// `minik node delete` on the cluster's machine: this machine leaves.
		if err := join.Leave(cfg.DataDir); err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "minik-node: node %s was deleted from the cluster; removed its credentials from %s and stopped\n", cfg.Name, cfg.DataDir)
		return nil
	}
	return first
}

// routeRecord is where the route helper records the routes it made (its
// image has a /tmp and nothing else that is writable).
const routeRecord = "/tmp/minik-routes"

// joinCluster runs `minik-node join`: it returns the config of the node
// to run, or "" when there is nothing to run (--help).
func joinCluster(ctx context.Context, args []string) (string, error) {
	fs := flag.NewFlagSet("minik-node join", flag.ContinueOnError)
	o := join.Options{}
	fs.StringVar(&o.Server, "server", "", "the cluster's apiserver, https://ADDRESS:PORT (from `minik node join-command`)")
	fs.StringVar(&o.Token, "token", "", "bootstrap token (from `minik node join-command`)")
	fs.StringVar(&o.CACertHash, "ca-cert-hash", "", "sha256 hash of the cluster CA's public key (from `minik node join-command`)")
	fs.StringVar(&o.Name, "name", join.DefaultName(), "node name")
	fs.StringVar(&o.DataDir, "data-dir", defaultJoinDataDir(), "folder for the node's config, credentials and state")
	fs.StringVar(&o.NodeIP, "node-ip", "", "the node's address (default: this machine's address towards the server)")
	fs.IntVar(&o.KubeletPort, "kubelet-port", 10250, "port of the kubelet API")
	fs.StringVar(&o.Runtime, "runtime", join.RuntimeAuto, "pod runtime: docker (the Docker Engine at DOCKER_HOST or the default socket), sim (nothing runs), or auto: docker where an engine answers, else sim")
	cpus := fs.Int("cpus", goruntime.NumCPU(), "CPUs the node reports")
	memory := fs.Int64("memory-mib", 8192, "memory the node reports, in MiB")
	fs.IntVar(&o.MaxPods, "max-pods", 110, "pods the node takes")
	fs.DurationVar(&o.Timeout, "timeout", time.Minute, "how long to wait for discovery and for the certificate")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return "", nil
		}
		return "", err
	}
	if fs.NArg() > 0 {
		return "", fmt.Errorf("join takes no arguments, got %q", fs.Args())
	}
	o.CPUMillis = int64(*cpus) * 1000
	o.MemoryBytes = *memory << 20
	return join.Join(ctx, o)
}

// defaultJoinDataDir is root's /var/lib/minik-node, else a folder in the
// user's home.
func defaultJoinDataDir() string {
	if os.Geteuid() == 0 {
		return "/var/lib/minik-node"
	}
	if home, err := os.UserHomeDir(); err == nil {
		return filepath.Join(home, ".minik-node")
	}
	return ""
}
