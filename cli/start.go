package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/api/resource"

	"minik.dev/minik/cluster"
	"minik.dev/minik/nodeconfig"
)

type startOptions struct {
	profile       string
	driver        string
	nodes         int
	apiServerPort int
	wait          time.Duration
	output        outputFlag
	cpus          string
	memory        string
	maxPods       int
	monitorGrace  time.Duration
	eviction      time.Duration
	manifests     string
	retain        bool
	localhost     bool
	listen        string
	vmKernel      string
	vmAccel       string
	vmFirmware    string
	autoscale     string
	idle          time.Duration
	prometheus    bool
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
	cmd.Flags().StringVar(&o.driver, "driver", "", "driver that makes the nodes (default: $"+DriverEnv+", else docker when an engine answers, else process)")
	cmd.Flags().IntVar(&o.nodes, "nodes", 1, "number of nodes, the first of them the control plane (only when creating)")
	cmd.Flags().IntVar(&o.apiServerPort, "apiserver-port", 0, "port of the apiserver on 127.0.0.1 (default: a free port)")
	cmd.Flags().DurationVar(&o.wait, "wait", 5*time.Minute, "how long to wait for every node Ready and the default ServiceAccount (0: return once the API answers)")
	cmd.Flags().StringVar(&o.cpus, "cpus", "", "CPU capacity of each node, e.g. 2 or 1500m (default: this machine's CPUs; only when creating)")
	cmd.Flags().StringVar(&o.memory, "memory", "", "memory capacity of each node, e.g. 4Gi or 4096 (MiB) (default: a fair share of this machine's; only when creating)")
	cmd.Flags().IntVar(&o.maxPods, "max-pods", 0, "pods each node accepts (default 110; up to 1000; only when creating)")
	cmd.Flags().DurationVar(&o.monitorGrace, "node-monitor-grace-period", 0, "how long a silent node stays Ready before it is marked NotReady (default 20s)")
	cmd.Flags().DurationVar(&o.eviction, "pod-eviction-timeout", 0, "how long pods stay on a NotReady node before they are evicted (default 15s)")
	cmd.Flags().StringVar(&o.manifests, "manifests", "", "folder of YAML, JSON and jsonnet files the cluster applies and keeps applied (default: the profile's manifests folder; only when creating)")
	cmd.Flags().BoolVar(&o.retain, "retain", false, "keep what a failed or interrupted start made, to look at it (default: roll it back)")
	cmd.Flags().BoolVar(&o.localhost, "publish-localhost", false, "also publish LoadBalancer Services' ports on 127.0.0.1, as on Docker Desktop, whose cluster networks this machine does not reach (docker driver; only when creating)")
	cmd.Flags().StringVar(&o.vmKernel, "vm-kernel", "", "VM drivers (kvm): the kernel to boot nodes with, a vmlinuz-RELEASE (modules in /lib/modules/RELEASE) or a Debian linux-image .deb (default: one unpacked before, else the host's)")
	cmd.Flags().StringVar(&o.vmFirmware, "vm-firmware", "", "VM drivers (kvm): direct (QEMU loads the kernel) or efi (UEFI firmware, OVMF, boots a disk holding a unified kernel image, as on Hyper-V); default: direct")
	cmd.Flags().StringVar(&o.vmAccel, "vm-accel", "", "VM drivers (kvm): kvm or tcg (QEMU's emulation); default: kvm when the CPU and /dev/kvm allow it")
	cmd.Flags().StringVar(&o.listen, "listen-address", "", "an address of this machine where the apiserver is also reachable, so other machines can join as nodes (`minik node join-command`); never set by default (only when creating)")
	cmd.Flags().StringVar(&o.autoscale, "autoscale", "", "MIN:MAX workers: add workers when pods do not fit, remove idle ones (kept in the profile; `minik autoscale` changes it)")
	cmd.Flags().BoolVar(&o.prometheus, "prometheus", false, "run a Prometheus server that scrapes the cluster, with the default settings (kept in the cluster; `minik addons` changes it)")
	cmd.Flags().DurationVar(&o.idle, "autoscale-idle", nodeconfig.DefaultScaleDownAfter, "with --autoscale: how long a worker stays underused before it is removed")
	addOutputFlag(cmd, &o.output)
	return cmd
}

// DriverEnv names the driver `minik start` uses when --driver is not given.
const DriverEnv = "MINIK_DRIVER"

// parseCPUs reads a CPU quantity: cores ("2", "0.5") or millicores
// ("1500m"); "" is 0, the default. A given value must be one the cluster
// library accepts (a given 0 is not the default).
func parseCPUs(s string) (int64, error) {
	if s == "" {
		return 0, nil
	}
	q, err := resource.ParseQuantity(s)
	if err != nil {
		return 0, &usageError{err: fmt.Errorf("invalid --cpus %q: use cores such as 2 or millicores such as 1500m (at least %dm)", s, cluster.MinCPUMillis)}
	}
	if err := cluster.CheckCPUMillis(q.MilliValue()); err != nil {
		return 0, asFlagError(err, strconv.Quote(s))
	}
	return q.MilliValue(), nil
}

// parseMemory reads a memory quantity; a bare number is MiB, as in
// minikube; "" is 0, the default. A given value must be one the cluster
// library accepts.
func parseMemory(s string) (int64, error) {
	if s == "" {
		return 0, nil
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		s = strconv.FormatInt(n, 10) + "Mi"
	}
	q, err := resource.ParseQuantity(s)
	if err != nil {
		return 0, &usageError{err: fmt.Errorf("invalid --memory %q: use a size such as 4Gi or 4096 (MiB), at least 64Mi", s)}
	}
	if err := cluster.CheckMemoryBytes(q.Value()); err != nil {
		return 0, asFlagError(err, strconv.Quote(s))
	}
	return q.Value(), nil
}

// runStart turns the flags into cluster.StartOptions, which the library
// checks: an invalid value is reported with its flag's name.
func runStart(cmd *cobra.Command, env Env, o startOptions, nodesSet bool) error {
	cpus, err := parseCPUs(o.cpus)
	if err != nil {
		return err
	}
	memory, err := parseMemory(o.memory)
	if err != nil {
		return err
	}
	if o.autoscale == "" && cmd.Flags().Changed("autoscale-idle") {
		return &usageError{err: errors.New("--autoscale-idle needs --autoscale MIN:MAX")}
	}
	autoscale, err := parseAutoscale(o.autoscale, o.idle)
	if err != nil {
		return err
	}
	opts := cluster.StartOptions{
		Autoscale:     autoscale,
		Profile:       o.profile,
		Driver:        o.driver,
		DefaultDriver: env.Getenv(DriverEnv),
		Retain:        o.retain,
		APIServerPort: o.apiServerPort,
		Wait:          o.wait,
		CPUMillis:     cpus,
		MemoryBytes:   memory,
		MaxPods:       o.maxPods,

		NodeMonitorGracePeriod: o.monitorGrace,
		PodEvictionTimeout:     o.eviction,
		PublishLocalhost:       o.localhost,
		ListenAddress:          o.listen,
		VMKernel:               o.vmKernel,
		VMAccel:                o.vmAccel,
		VMFirmware:             o.vmFirmware,
	}
	if o.manifests != "" {
		// A relative folder is relative to where minik runs.
		if opts.ManifestsDir, err = filepath.Abs(o.manifests); err != nil {
			return fmt.Errorf("invalid --manifests %q: %w", o.manifests, err)
		}
	}
	if nodesSet {
		opts.Nodes = &o.nodes
	}
	if o.prometheus {
		s := nodeconfig.DefaultPrometheus()
		opts.Prometheus = &s
	}
	r := newReporter(env, string(o.output))
	m, err := newManager(env, r)
	if err != nil {
		r.Close()
		return err
	}
	began := time.Now()
	st, err := m.Start(cmd.Context(), opts)
	r.Close()
	if err != nil {
		return commandError(err, "start %s", o.profile)
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
