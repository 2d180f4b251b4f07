// Package controlplane runs the upstream Kubernetes control plane — etcd,
// kube-apiserver, kube-controller-manager and kube-scheduler — in this
// process, each in its own goroutine, ordered by ready channels.
package controlplane

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"slices"
	"time"

	"github.com/spf13/pflag"
	"go.etcd.io/etcd/server/v3/embed"
	genericapiserver "k8s.io/apiserver/pkg/server"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	cliflag "k8s.io/component-base/cli/flag"
	logsapi "k8s.io/component-base/logs/api/v1"
	"k8s.io/klog/v2"
	apiserverapp "k8s.io/kubernetes/cmd/kube-apiserver/app"
	apiserveroptions "k8s.io/kubernetes/cmd/kube-apiserver/app/options"
	cmapp "k8s.io/kubernetes/cmd/kube-controller-manager/app"
	cmoptions "k8s.io/kubernetes/cmd/kube-controller-manager/app/options"
	schedulerapp "k8s.io/kubernetes/cmd/kube-scheduler/app"
	scheduleroptions "k8s.io/kubernetes/cmd/kube-scheduler/app/options"

	"minik.dev/minik/controlplane/gateway"
	"minik.dev/minik/controlplane/loadbalancer"
	"minik.dev/minik/controlplane/storage"
	"minik.dev/minik/egress"
	"minik.dev/minik/nodeconfig"
	"minik.dev/minik/pki"
)

// etcdPeerURL is advertised but never dialled: the cluster has one member,
// and a constant keeps its membership stable across restarts on new ports.
const etcdPeerURL = "http://127.0.0.1:2380"

// ControlPlane is a control plane built and ready to run.
type ControlPlane struct {
	cfg       *nodeconfig.Config
	apiOpts   *apiserveroptions.ServerRunOptions
	cmOpts    *cmoptions.KubeControllerManagerOptions
	schedOpts *scheduleroptions.Options
	admin     kubernetes.Interface
	storage   *storage.Controllers
}

// New builds the control plane's parts that write process-wide state:
// logging and client-go defaults, the option structs (they register feature
// gates and flags), and the volume controllers (they add to client-go's
// scheme). It starts nothing, and must return before any other goroutine of
// the process (the node agent) starts, so none reads that state while it is
// written.
func New(ctx context.Context, cfg *nodeconfig.Config) (*ControlPlane, error) {
	// Every component applies the same logging config; the second apply would
	// otherwise be an error.
	logsapi.ReapplyHandling = logsapi.ReapplyHandlingIgnoreUnchanged
	// Loopback clients must not log warnings about their own requests.
	rest.SetDefaultWarningHandler(rest.NoWarnings{})

	// Build all the option structs before any flag is parsed.
	cp := &ControlPlane{cfg: cfg, apiOpts: apiserveroptions.NewServerRunOptions(), schedOpts: scheduleroptions.NewOptions()}
	var err error
	if cp.cmOpts, err = cmoptions.NewKubeControllerManagerOptions(); err != nil {
		return nil, fmt.Errorf("create controller-manager options: %w", err)
	}
	if cp.admin, err = adminClient(cfg); err != nil {
		return nil, err
	}
	if cp.storage, err = storage.New(ctx, cp.admin); err != nil {
		return nil, err
	}
	return cp, nil
}

// Run starts the control plane and blocks until ctx is done or a component
// fails. On return every component has stopped.
func (cp *ControlPlane) Run(ctx context.Context) error {
	cfg, apiOpts, cmOpts, schedOpts, admin := cp.cfg, cp.apiOpts, cp.cmOpts, cp.schedOpts, cp.admin

	etcd, etcdURL, err := startEtcd(ctx, cfg)
	if err != nil {
		return err
	}
	defer etcd.Close()

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	failed := make(chan error, 3)

	egressProxy, egressConfig, err := startEgress(ctx, cfg)
	if err != nil {
		return err
	}
	metrics, err := newMetricsAPI(cfg, egressProxy.Allowed)
	if err != nil {
		return err
	}
	if settings := cfg.ControlPlane; settings.ListenAddress != "" && !net.ParseIP(settings.BindAddress).IsUnspecified() {
		port := fmt.Sprint(settings.Port)
		l, err := listenBoth(net.JoinHostPort(settings.BindAddress, port), net.JoinHostPort(settings.ListenAddress, port))
		if err != nil {
			return fmt.Errorf("listen for the apiserver: %w", err)
		}
		apiOpts.SecureServing.Listener = l
	}
	apiserverDone := make(chan struct{})
	if err := startAPIServer(ctx, apiOpts, cfg.APIServerArgs(etcdURL, egressConfig), metrics, failed, apiserverDone); err != nil {
		return err
	}
	// Close etcd only after the apiserver has returned.
	defer func() { <-apiserverDone }()
	defer cancel()

	if err := waitReady(ctx, cfg, failed); err != nil {
		return err
	}
	klog.InfoS("apiserver ready")
	if err := grantControllerManager(ctx, cfg); err != nil {
		return err
	}
	go metrics.run(ctx)
	go runLoadController(ctx, admin)
	if cfg.ControlPlane.JoinServer != "" {
		go runJoin(ctx, cfg, admin, egressProxy)
	}
	go runStorage(ctx, cfg, admin, cp.storage)
	// The TSDB must close before the process exits, or the last samples
	// are lost.
	prometheusDone := make(chan struct{})
	go func() {
		defer close(prometheusDone)
		runPrometheus(ctx, cfg, admin, egressProxy.Allowed)
	}()
	defer func() { <-prometheusDone }()
	defer cancel()
	if dir := cfg.ControlPlane.ManifestsDir; dir != "" {
		go runManifests(ctx, cfg, dir)
	}
	if lb := cfg.ControlPlane.LoadBalancerCIDR; lb != "" {
		go func() {
			var localhost *loadbalancer.Localhost
			if cfg.Docker != nil {
				var err error
				if localhost, err = loadbalancer.NewLocalhost(ctx, admin, cfg.Cluster, cfg.Name, *cfg.Docker); err != nil {
					// The pool's addresses still serve hosts that route to the network.
					klog.ErrorS(err, "publish LoadBalancer Services on 127.0.0.1")
				}
			}
			if err := loadbalancer.Run(ctx, admin, cfg.Cluster, lb, localhost); err != nil && ctx.Err() == nil {
				klog.ErrorS(err, "run the load balancer controller")
			}
		}()
		go func() {
			if err := loadbalancer.RunIngresses(ctx, admin); err != nil && ctx.Err() == nil {
				klog.ErrorS(err, "run the ingress status controller")
			}
		}()
		go func() {
			rc, err := adminConfig(cfg)
			if err == nil {
				err = gateway.Run(ctx, rc, admin, cfg.Name)
			}
			if err != nil && ctx.Err() == nil {
				klog.ErrorS(err, "run the gateway controller")
			}
		}()
	}

	if err := startControllerManager(ctx, cmOpts, cfg.ControllerManagerArgs(), failed); err != nil {
		return err
	}
	if err := startScheduler(ctx, schedOpts, cfg.SchedulerArgs(), failed); err != nil {
		return err
	}
	// After the scheduler: the autoscaler's framework shares its metrics
	// and feature gates.
	go runAutoscaler(ctx, admin)
	go labelControlPlaneNode(ctx, cfg)

	select {
	case <-ctx.Done():
		return nil
	case err := <-failed:
		return err
	}
}

// startEgress runs the proxy the apiserver's cluster traffic goes through
// and writes the egress selector config that names it.
func startEgress(ctx context.Context, cfg *nodeconfig.Config) (*egress.Proxy, string, error) {
	sock := egressSocket(cfg)
	p, err := egress.Listen(sock, cfg.ControlPlane.EgressAllowCIDRs)
	if err != nil {
		return nil, "", err
	}
	go p.Serve(ctx)
	path := filepath.Join(cfg.DataDir, "egress-selector.yaml")
	if err := nodeconfig.WriteFileAtomic(path, nodeconfig.EgressSelectorConfig(sock), 0o600); err != nil {
		return nil, "", fmt.Errorf("write egress selector config: %w", err)
	}
	return p, path, nil
}

func startEtcd(ctx context.Context, cfg *nodeconfig.Config) (*embed.Etcd, string, error) {
	// The apiserver's port is chosen by minik and bound only later: etcd's
	// ports must not take it meanwhile.
	clientPort, err := freePort(cfg.ControlPlane.Port)
	if err != nil {
		return nil, "", err
	}
	peerPort, err := freePort(cfg.ControlPlane.Port, clientPort)
	if err != nil {
		return nil, "", err
	}
	ec := embed.NewConfig()
	ec.Name = cfg.Name
	ec.Dir = filepath.Join(cfg.DataDir, "etcd")
	// One member on one machine: short ticks make it leader in ~0.25 s.
	ec.TickMs = 10
	ec.ElectionMs = 100
	ec.ListenClientUrls = []url.URL{{Scheme: "http", Host: fmt.Sprintf("127.0.0.1:%d", clientPort)}}
	ec.AdvertiseClientUrls = ec.ListenClientUrls
	ec.ListenPeerUrls = []url.URL{{Scheme: "http", Host: fmt.Sprintf("127.0.0.1:%d", peerPort)}}
	peer, _ := url.Parse(etcdPeerURL)
	ec.AdvertisePeerUrls = []url.URL{*peer}
	ec.InitialCluster = ec.Name + "=" + etcdPeerURL
	ec.InitialClusterToken = cfg.Cluster
	ec.EnableGRPCGateway = false
	ec.LogLevel = "warn"
	ec.LogOutputs = []string{"stderr"}
	// A local dev cluster trades durability on power loss for write speed;
	// a stopped node's data is still complete on disk.
	ec.UnsafeNoFsync = true
	ec.AutoCompactionMode = "periodic"
	ec.AutoCompactionRetention = "5m"
	ec.QuotaBackendBytes = 2 << 30

	if err := checkEtcdData(ec.Dir, cfg.Cluster); err != nil {
		return nil, "", err
	}
	e, err := embed.StartEtcd(ec)
	if err != nil {
		return nil, "", fmt.Errorf("start etcd: %w", err)
	}
	select {
	case <-e.Server.ReadyNotify():
	case err := <-e.Err():
		e.Close()
		return nil, "", fmt.Errorf("start etcd: %w", err)
	case <-time.After(60 * time.Second):
		e.Close()
		return nil, "", errors.New("start etcd: not ready after 60s")
	case <-ctx.Done():
		e.Close()
		return nil, "", ctx.Err()
	}
	klog.InfoS("etcd ready", "url", ec.ListenClientUrls[0].String())
	return e, ec.ListenClientUrls[0].String(), nil
}

// startAPIServer does what apiserverapp.Run does, in steps, so that the
// metrics API can be mounted on the kube-apiserver inside the server chain.
func startAPIServer(ctx context.Context, s *apiserveroptions.ServerRunOptions, args []string, metrics *metricsAPI, failed chan<- error, done chan<- struct{}) error {
	fss := s.Flags()
	if err := parseFlags("kube-apiserver", fss, args); err != nil {
		close(done)
		return err
	}
	if err := s.GenericServerRunOptions.ComponentGlobalsRegistry.Set(); err != nil {
		close(done)
		return fmt.Errorf("set kube-apiserver feature gates: %w", err)
	}
	completed, err := s.Complete(ctx)
	if err != nil {
		close(done)
		return fmt.Errorf("complete kube-apiserver options: %w", err)
	}
	if errs := completed.Validate(); len(errs) != 0 {
		close(done)
		return fmt.Errorf("validate kube-apiserver options: %w", errors.Join(errs...))
	}
	prepared, err := buildAPIServer(completed, metrics)
	if err != nil {
		close(done)
		return err
	}
	go func() {
		defer close(done)
		if err := prepared.Run(ctx); err != nil && ctx.Err() == nil {
			failed <- fmt.Errorf("kube-apiserver: %w", err)
		}
	}()
	return nil
}

// preparedServer is the aggregator's prepared server (an unexported type).
type preparedServer interface {
	Run(ctx context.Context) error
}

func buildAPIServer(opts apiserveroptions.CompletedOptions, metrics *metricsAPI) (preparedServer, error) {
	if opts.InformerName == nil {
		name, err := cache.NewInformerName("kube-apiserver")
		if err != nil {
			return nil, fmt.Errorf("name kube-apiserver informers: %w", err)
		}
		opts.InformerName = name
	}
	config, err := apiserverapp.NewConfig(opts)
	if err != nil {
		return nil, fmt.Errorf("configure kube-apiserver: %w", err)
	}
	replaceBootstrapHooks(config.KubeAPIs.ControlPlane.Generic)
	// The aggregator's chain is the one requests pass through; the servers
	// it delegates to get them after its filters, without their own.
	buildChain := config.Aggregator.GenericConfig.BuildHandlerChainFunc
	if buildChain == nil {
		buildChain = genericapiserver.DefaultBuildHandlerChain
	}
	config.Aggregator.GenericConfig.BuildHandlerChainFunc = func(h http.Handler, c *genericapiserver.Config) http.Handler {
		return buildChain(metrics.nodeProxy(h), c)
	}
	completed, err := config.Complete()
	if err != nil {
		return nil, fmt.Errorf("complete kube-apiserver config: %w", err)
	}
	aggregator, err := apiserverapp.CreateServerChain(completed)
	if err != nil {
		return nil, fmt.Errorf("create kube-apiserver: %w", err)
	}
	// The aggregator delegates to the kube-apiserver, whose mux serves
	// every path no API group claims.
	kube, ok := aggregator.GenericAPIServer.NextDelegate().(*genericapiserver.GenericAPIServer)
	if !ok {
		return nil, fmt.Errorf("create kube-apiserver: the aggregator delegates to %T, not a generic API server", aggregator.GenericAPIServer.NextDelegate())
	}
	metrics.install(kube)
	// The top of the chain runs every post-start hook and owns /readyz.
	if err := addBootstrapHooks(aggregator.GenericAPIServer); err != nil {
		return nil, err
	}
	prepared, err := aggregator.PrepareRun()
	if err != nil {
		return nil, fmt.Errorf("prepare kube-apiserver: %w", err)
	}
	return prepared, nil
}

func startControllerManager(ctx context.Context, s *cmoptions.KubeControllerManagerOptions, args []string, failed chan<- error) error {
	fss := s.Flags(cmapp.KnownControllers(), cmapp.ControllersDisabledByDefault(), cmapp.ControllerAliases())
	s.ParsedFlags = &fss
	if err := parseFlags("kube-controller-manager", fss, args); err != nil {
		return err
	}
	if err := s.ComponentGlobalsRegistry.Set(); err != nil {
		return fmt.Errorf("set kube-controller-manager feature gates: %w", err)
	}
	c, err := s.Config(ctx, cmapp.KnownControllers(), cmapp.ControllersDisabledByDefault(), cmapp.ControllerAliases())
	if err != nil {
		return fmt.Errorf("configure kube-controller-manager: %w", err)
	}
	go func() {
		if err := cmapp.Run(ctx, c.Complete()); err != nil && ctx.Err() == nil {
			failed <- fmt.Errorf("kube-controller-manager: %w", err)
		}
	}()
	return nil
}

func startScheduler(ctx context.Context, opts *scheduleroptions.Options, args []string, failed chan<- error) error {
	if err := parseFlags("kube-scheduler", *opts.Flags, args); err != nil {
		return err
	}
	if err := opts.ComponentGlobalsRegistry.Set(); err != nil {
		return fmt.Errorf("set kube-scheduler feature gates: %w", err)
	}
	cc, sched, err := schedulerapp.Setup(ctx, opts)
	if err != nil {
		return fmt.Errorf("configure kube-scheduler: %w", err)
	}
	go func() {
		if err := schedulerapp.Run(ctx, cc, sched); err != nil && ctx.Err() == nil {
			failed <- fmt.Errorf("kube-scheduler: %w", err)
		}
	}()
	return nil
}

// parseFlags parses a component's upstream flags, so minik configures each
// component exactly as its own binary would be.
func parseFlags(component string, fss cliflag.NamedFlagSets, args []string) error {
	fs := pflag.NewFlagSet(component, pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	for _, f := range fss.FlagSets {
		fs.AddFlagSet(f)
	}
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("parse %s flags: %w", component, err)
	}
	return nil
}

// waitReady polls the apiserver's /readyz until it answers ok.
func waitReady(ctx context.Context, cfg *nodeconfig.Config, failed <-chan error) error {
	client, err := rest.HTTPClientFor(&rest.Config{
		TLSClientConfig: rest.TLSClientConfig{CAFile: pki.Layout(cfg.PKIDir).CACert},
		Timeout:         2 * time.Second,
	})
	if err != nil {
		return fmt.Errorf("create readiness client: %w", err)
	}
	url := fmt.Sprintf("https://%s/readyz", net.JoinHostPort(loopbackFor(cfg.ControlPlane.BindAddress), fmt.Sprint(cfg.ControlPlane.Port)))
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if resp, err := client.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case err := <-failed:
			return err
		case <-tick.C:
		}
	}
}

// loopbackFor is the address to dial for a listen address.
func loopbackFor(bind string) string {
	if ip := net.ParseIP(bind); ip == nil || ip.IsUnspecified() {
		return "127.0.0.1"
	}
	return bind
}

// freePort returns a free port of 127.0.0.1 that is none of reserved.
func freePort(reserved ...int) (int, error) {
	for range 10 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, fmt.Errorf("find free port: %w", err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		if !slices.Contains(reserved, port) {
			return port, nil
		}
	}
	return 0, errors.New("find free port: the kernel keeps handing out reserved ones")
}
