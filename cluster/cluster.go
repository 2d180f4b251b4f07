package cluster

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"minik.dev/minik/drivers"
	"minik.dev/minik/filelock"
	"minik.dev/minik/kubeconfig"
	"minik.dev/minik/nodeconfig"
	"minik.dev/minik/pki"
	"minik.dev/minik/version"
)

// DefaultKubeletPort is the kubelet API's standard port.
const DefaultKubeletPort = 10250

// ErrBusy is returned when another minik command holds a profile's lock.
var ErrBusy = errors.New("profile is busy")

// Options are a Manager's dependencies.
type Options struct {
	// Home is $MINIK_HOME.
	Home string
	// Kubeconfig is the file contexts are merged into (first of $KUBECONFIG, or ~/.kube/config).
	Kubeconfig string
	Drivers    *drivers.Registry
	Reporter   Reporter
	// Agent is the command of a cluster's autoscaler agent; nil: this
	// build cannot autoscale.
	Agent AgentCommand
}

// Manager creates, starts, stops and deletes clusters.
type Manager struct {
	store      Store
	kubeconfig string
	drivers    *drivers.Registry
	report     Reporter
	agent      AgentCommand
}

// New returns a Manager.
func New(o Options) *Manager {
	r := o.Reporter
	if r == nil {
		r = NopReporter{}
	}
	return &Manager{store: Store{Home: o.Home}, kubeconfig: o.Kubeconfig, drivers: o.Drivers, report: r, agent: o.Agent}
}

// Store gives access to the profiles on disk.
func (m *Manager) Store() Store { return m.store }

// lock takes the profile's lock or says who holds it.
func (m *Manager) lock(name string) (*filelock.Lock, error) {
	l, err := filelock.TryLock(m.store.lockFile(name))
	if errors.Is(err, filelock.ErrLocked) {
		return nil, fmt.Errorf("%w: another minik command is using profile %s; wait for it to finish", ErrBusy, name)
	}
	return l, err
}

// Start creates the profile if missing, starts it if stopped and does
// nothing if it runs; then waits as asked.
func (m *Manager) Start(ctx context.Context, o StartOptions) (*Status, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	if o.Driver != "" {
		if _, err := m.drivers.Get(o.Driver); err != nil {
			return nil, err
		}
	}
	if err := m.checkHomeDisk(); err != nil {
		return nil, err
	}
	lock, err := m.lock(o.Profile)
	if err != nil {
		return nil, err
	}
	defer lock.Unlock()

	p, err := m.store.Load(o.Profile)
	created := false
	switch {
	case errors.Is(err, ErrNotFound):
		done := m.report.Step(StepPrepare)
		p, err = m.create(ctx, o)
		done(err)
		if err != nil {
			return nil, err
		}
		created = true
	case err != nil:
		return nil, fmt.Errorf("%w; remove it with `minik delete -p %s`", err, o.Profile)
	default:
		if o.Driver != "" && o.Driver != p.Driver {
			return nil, fmt.Errorf("profile %s uses driver %s, not %s; delete it first (`minik delete -p %s`) or start it without --driver", p.Name, p.Driver, o.Driver, p.Name)
		}
		if o.Nodes != nil && *o.Nodes != len(p.Nodes) {
			return nil, fmt.Errorf("profile %s has %d node(s); --nodes applies only when a profile is created: delete it first (`minik delete -p %s`)", p.Name, len(p.Nodes), p.Name)
		}
		if o.CPUMillis != 0 || o.MemoryBytes != 0 || o.MaxPods != 0 {
			return nil, fmt.Errorf("profile %s exists: node capacity (--cpus, --memory, --max-pods) applies only when a profile is created", p.Name)
		}
		if o.ListenAddress != "" && o.ListenAddress != p.ListenAddress {
			return nil, fmt.Errorf("profile %s exists with listen address %q; --listen-address applies only when a profile is created: delete it first (`minik delete -p %s`)", p.Name, p.ListenAddress, p.Name)
		}
		if o.PublishLocalhost && !p.PublishLocalhost {
			return nil, fmt.Errorf("profile %s exists without --publish-localhost, which applies only when a profile is created: delete it first (`minik delete -p %s`)", p.Name, p.Name)
		}
		if err := m.updateEviction(p, o); err != nil {
			return nil, err
		}
		if o.Autoscale != nil {
			if err := checkAutoscaleMemory(p, *o.Autoscale); err != nil {
				return nil, err
			}
			p.Autoscale = o.Autoscale.profile()
			if err := m.store.Save(p); err != nil {
				return nil, err
			}
		}
		if d, err := m.drivers.Get(p.Driver); err == nil && (o.VMKernel != "" || o.VMAccel != "" || o.VMFirmware != "") {
			if err := setVMOptions(d, p, o); err != nil {
				return nil, err
			}
			if err := m.store.Save(p); err != nil {
				return nil, err
			}
		}
	}

	d, err := m.drivers.Get(p.Driver)
	if err == nil {
		err = d.Health(ctx)
	}
	if err == nil {
		err = m.bringUp(ctx, d, p, o, created)
	}
	if err != nil {
		if o.Retain {
			return nil, fmt.Errorf("%w; kept everything as it is (--retain): look at it, then remove it with `minik delete -p %s`", err, p.Name)
		}
		if rbErr := m.rollback(ctx, d, p, created); rbErr != nil {
			return nil, fmt.Errorf("%w; then rolling back failed: %w; the profile is kept: run `minik delete -p %s` once the %s driver works again", err, rbErr, p.Name, p.Driver)
		}
		if ctx.Err() != nil {
			if created {
				return nil, fmt.Errorf("interrupted: removed the new cluster %s", p.Name)
			}
			return nil, fmt.Errorf("interrupted: cluster %s is left stopped, with its data", p.Name)
		}
		return nil, err
	}
	if p.Autoscale != nil {
		if o.Autoscale != nil && m.agent == nil {
			return nil, errors.New("this build of minik cannot run the autoscaler's agent")
		}
		if err := m.applyAutoscale(ctx, p); err != nil {
			return nil, fmt.Errorf("cluster %s runs, but autoscaling does not: %w", p.Name, err)
		}
	}
	if o.Prometheus != nil {
		if err := m.applyPrometheus(ctx, p, o.Prometheus); err != nil {
			return nil, fmt.Errorf("cluster %s runs, but prometheus does not: %w", p.Name, err)
		}
	}
	return m.status(ctx, d, p), nil
}

// create chooses a driver, addresses and ports and saves a new profile.
func (m *Manager) create(ctx context.Context, o StartOptions) (*Profile, error) {
	name := o.Driver
	if name == "" {
		name = o.DefaultDriver
	}
	d, err := m.drivers.Select(ctx, name)
	if err != nil {
		return nil, err
	}
	if info := d.Info(); info.HostReachesNodes && o.ListenAddress != "" {
		return nil, &InvalidOptionError{Field: "ListenAddress", Value: o.ListenAddress,
			Reason: "the " + info.Name + " driver publishes no apiserver port on this machine; joining other machines needs the process or docker driver"}
	}
	n := 1
	if o.Nodes != nil {
		n = *o.Nodes
	}
	port := o.APIServerPort
	if port == 0 {
		if port, err = freePort(); err != nil {
			return nil, err
		}
	}
	p := &Profile{
		Name:              o.Profile,
		Driver:            d.Info().Name,
		CreatedAt:         time.Now().UTC(),
		KubernetesVersion: version.Kubernetes,
		APIServerPort:     port,
		ServiceCIDR:       nodeconfig.DefaultServiceCIDR,
		PodCIDR:           nodeconfig.DefaultPodCIDR,
		Kubeconfig:        m.kubeconfig,
		NodeDefaults:      defaultCapacity(n),
	}
	if a := o.Autoscale; a != nil {
		if n-1 > a.Max {
			return nil, &InvalidOptionError{Field: "Autoscale", Value: fmt.Sprintf("%d:%d", a.Min, a.Max),
				Reason: fmt.Sprintf("the cluster starts with %d workers, more than MAX", n-1)}
		}
		// Nodes get a fair share of memory of the largest cluster.
		p.NodeDefaults = defaultCapacity(max(n, 1+a.Max))
		p.Autoscale = a.profile()
	}
	if o.CPUMillis > 0 {
		p.NodeDefaults.CPUMillis = o.CPUMillis
	}
	if o.MemoryBytes > 0 {
		p.NodeDefaults.MemoryBytes = o.MemoryBytes
	}
	if o.MaxPods > 0 {
		p.NodeDefaults.MaxPods = o.MaxPods
	}
	p.NodeMonitorGracePeriodSeconds = int(o.NodeMonitorGracePeriod.Seconds())
	p.PodEvictionSeconds = int(o.PodEvictionTimeout.Seconds())
	p.ManifestsDir = o.ManifestsDir
	p.PublishLocalhost = o.PublishLocalhost
	p.ListenAddress = o.ListenAddress
	if o.Autoscale != nil {
		if err := checkAutoscaleMemory(p, *o.Autoscale); err != nil {
			return nil, err
		}
	}
	if err := setVMOptions(d, p, o); err != nil {
		return nil, err
	}
	if cn, ok := d.(drivers.ClusterNetworks); ok {
		if err := m.planNetwork(ctx, cn, p); err != nil {
			return nil, err
		}
	}
	if err := m.planNodes(d, p, n); err != nil {
		// The reserved network goes with the profile that failed.
		if cd, ok := d.(drivers.ClusterDeleter); ok && p.Subnet != "" {
			if derr := cd.DeleteCluster(context.WithoutCancel(ctx), m.driverCluster(o.Profile)); derr != nil {
				return nil, fmt.Errorf("%w; removing its network failed too: %w", err, derr)
			}
		}
		return nil, err
	}
	if info := d.Info(); info.HostReachesNodes && info.NodeView != nil {
		p.APIServerAddress = net.JoinHostPort(p.ControlPlane().IP, strconv.Itoa(info.NodeView.APIServerPort))
		if err := m.store.Save(p); err != nil {
			return nil, err
		}
	}
	return p, nil
}

// planNodes gives the new profile p its n nodes and saves it.
func (m *Manager) planNodes(d drivers.Driver, p *Profile, n int) error {
	taken, err := m.takenIPs()
	if err != nil {
		return err
	}
	for i := 0; i < n; i++ {
		role := nodeconfig.RoleWorker
		if i == 0 {
			role = nodeconfig.RoleControlPlane
		}
		node := p.newNode(nodeName(p.Name, i), role, "")
		if node.IP, err = m.nodeIP(d, p, taken); err != nil {
			return err
		}
		taken[node.IP] = true
		p.Nodes = append(p.Nodes, node)
	}
	return m.store.Save(p)
}

// maxSubnetAttempts bounds how often a start chooses again when parallel
// starts keep taking its choice.
const maxSubnetAttempts = 10

// planNetwork gives a new profile its own subnet, split into node, Service
// and pod ranges; a driver that can reserves it at once.
func (m *Manager) planNetwork(ctx context.Context, cn drivers.ClusterNetworks, p *Profile) error {
	var taken []string
	names, err := m.store.Names()
	if err != nil {
		return err
	}
	for _, name := range names {
		if other, err := m.store.Load(name); err == nil && other.Subnet != "" {
			taken = append(taken, other.Subnet)
		}
	}
	var subnet string
	for attempt := 0; ; attempt++ {
		subnet, err = cn.ChooseSubnet(ctx, taken)
		if err != nil {
			return fmt.Errorf("choose cluster network: %w", err)
		}
		r, ok := cn.(drivers.SubnetReserver)
		if !ok {
			break
		}
		err = r.ReserveSubnet(ctx, m.driverCluster(p.Name), subnet)
		if err == nil {
			break
		}
		// Another minik took it between choosing and reserving: choose again.
		if !errors.Is(err, drivers.ErrSubnetTaken) || attempt == maxSubnetAttempts {
			return fmt.Errorf("reserve cluster network: %w", err)
		}
		taken = append(taken, subnet)
	}
	layout, err := nodeconfig.SplitSubnet(subnet)
	if err != nil {
		return err
	}
	p.Subnet, p.ServiceCIDR, p.PodCIDR = subnet, layout.Services.String(), layout.Pods.String()
	return nil
}

// nodeIP chooses a new node's address: the next free one of the cluster's
// network, or what the driver allocates, or loopback.
func (m *Manager) nodeIP(d drivers.Driver, p *Profile, taken map[string]bool) (string, error) {
	if p.Subnet != "" {
		layout, err := nodeconfig.SplitSubnet(p.Subnet)
		if err != nil {
			return "", err
		}
		used := map[string]bool{}
		for _, n := range p.Nodes {
			used[n.IP] = true
		}
		for i := 0; ; i++ {
			ip, err := layout.NodeIP(i)
			if err != nil {
				return "", err
			}
			if !used[ip] {
				return ip, nil
			}
		}
	}
	if alloc, ok := d.(drivers.IPAllocator); ok {
		return alloc.AllocateIP(taken)
	}
	return "127.0.0.1", nil
}

// nodeName names nodes like minikube: NAME, NAME-m02, NAME-m03, ...
func nodeName(profile string, i int) string {
	if i == 0 {
		return profile
	}
	return fmt.Sprintf("%s-m%02d", profile, i+1)
}

// takenIPs are node IPs of every existing profile.
func (m *Manager) takenIPs() (map[string]bool, error) {
	names, err := m.store.Names()
	if err != nil {
		return nil, err
	}
	taken := map[string]bool{}
	for _, name := range names {
		p, err := m.store.Load(name)
		if err != nil {
			continue
		}
		for _, n := range p.Nodes {
			taken[n.IP] = true
		}
	}
	return taken, nil
}

// bringUp writes certificates and configs, starts the nodes, merges the
// kubeconfig and waits.
func (m *Manager) bringUp(ctx context.Context, d drivers.Driver, p *Profile, o StartOptions, created bool) error {
	running, err := m.nodeStates(ctx, d, p)
	if err != nil {
		return err
	}
	cpRunning := running[p.ControlPlane().Name]
	if !cpRunning && p.ListenAddress != "" && !drivers.Listenable(net.JoinHostPort(p.ListenAddress, strconv.Itoa(p.APIServerPort)), drivers.PortSettle) {
		return fmt.Errorf("apiserver port %d is in use on %s by another program: stop it, or delete this cluster and create it with another --apiserver-port", p.APIServerPort, p.ListenAddress)
	}
	// A control plane killed a moment ago may hold its port for a while.
	if !cpRunning && p.APIServerAddress == "" && !drivers.Listenable(net.JoinHostPort("127.0.0.1", strconv.Itoa(p.APIServerPort)), drivers.PortSettle) {
		if o.APIServerPort != 0 {
			return fmt.Errorf("apiserver port %d is in use by another program: choose another with --apiserver-port, or omit it for a free one", p.APIServerPort)
		}
		port, err := freePort()
		if err != nil {
			return err
		}
		m.report.Note(fmt.Sprintf("apiserver port %d is in use by another program; using %d", p.APIServerPort, port))
		p.APIServerPort = port
		if err := m.store.Save(p); err != nil {
			return err
		}
	}

	if err := m.prepare(ctx, d, p); err != nil {
		return err
	}
	done := m.report.Step(StepCertificates)
	err = m.writeConfigs(d, p)
	done(err)
	if err != nil {
		return err
	}

	// Nodes that were not running must report after they start: their Node
	// may still say Ready from before they stopped.
	since := map[string]time.Time{}
	startedAt := time.Now()
	for _, n := range p.Nodes {
		if !running[n.Name] {
			since[n.Name] = startedAt
		}
	}
	done = m.report.Step(StepStartNodes)
	err = m.startNodes(ctx, d, p)
	done(err)
	if err != nil {
		return err
	}

	client, err := newAdminClient(m.store.AdminKubeconfig(p.Name))
	if err != nil {
		return err
	}
	done = m.report.Step(StepAPIServer)
	err = m.waitAPIServer(ctx, d, p, client, max(o.Wait, time.Minute))
	done(err)
	if err != nil {
		return err
	}

	done = m.report.Step(StepKubeconfig)
	err = m.mergeKubeconfig(p)
	done(err)
	if err != nil {
		return err
	}

	if o.Wait == 0 {
		return nil
	}
	done = m.report.Step(StepNodesReady)
	err = m.waitReady(ctx, d, p, client, since, o.Wait)
	done(err)
	return err
}

// prepare runs the driver's one-time work, such as building its node image.
func (m *Manager) prepare(ctx context.Context, d drivers.Driver, p *Profile) error {
	if vc, ok := d.(drivers.VMConfigurer); ok {
		vc.ConfigureVMs(drivers.VMOptions{Kernel: p.VMKernel, Accel: p.VMAccel, Firmware: p.VMFirmware})
	}
	pr, ok := d.(drivers.Preparer)
	if !ok {
		return nil
	}
	done := m.report.Step(StepPrepareDriver)
	err := pr.Prepare(ctx, m.report.Note)
	done(err)
	return err
}

// setVMOptions records o's VM options in p; they are for VM drivers only.
func setVMOptions(d drivers.Driver, p *Profile, o StartOptions) error {
	if _, ok := d.(drivers.VMConfigurer); !ok {
		for _, f := range [][2]string{{"VMKernel", o.VMKernel}, {"VMAccel", o.VMAccel}, {"VMFirmware", o.VMFirmware}} {
			if f[1] != "" {
				return &InvalidOptionError{Field: f[0], Value: f[1], Reason: "the " + d.Info().Name + " driver makes no VMs"}
			}
		}
		return nil
	}
	if o.VMKernel != "" {
		p.VMKernel = o.VMKernel
		if abs, err := filepath.Abs(o.VMKernel); err == nil {
			p.VMKernel = abs
		}
	}
	if o.VMAccel != "" {
		p.VMAccel = o.VMAccel
	}
	if o.VMFirmware != "" {
		p.VMFirmware = o.VMFirmware
	}
	return nil
}

// deleteCluster removes what the driver made for the cluster besides nodes.
func (m *Manager) deleteCluster(ctx context.Context, d drivers.Driver, name string) error {
	if cd, ok := d.(drivers.ClusterDeleter); ok {
		return cd.DeleteCluster(ctx, m.driverCluster(name))
	}
	return nil
}

// driverCluster is the profile's cluster as drivers see it.
func (m *Manager) driverCluster(name string) drivers.Cluster {
	return drivers.Cluster{Name: name, ProfileDir: m.store.ProfileDir(name)}
}

func (m *Manager) nodeStates(ctx context.Context, d drivers.Driver, p *Profile) (map[string]bool, error) {
	running := map[string]bool{}
	for _, n := range p.Nodes {
		st, err := d.NodeState(ctx, m.driverNode(p, n))
		if err != nil {
			return nil, err
		}
		running[n.Name] = st == drivers.StateRunning
	}
	return running, nil
}

// writeConfigs ensures the PKI, component kubeconfigs and node configs.
// Paths and the apiserver's address are written as the nodes see them.
func (m *Manager) writeConfigs(d drivers.Driver, p *Profile) error {
	firstSvc, err := nodeconfig.FirstServiceIP(p.ServiceCIDR)
	if err != nil {
		return err
	}
	cp := p.ControlPlane()
	spec := pki.Spec{
		Dir:          m.store.PKIDir(p.Name),
		APIServerIPs: []net.IP{net.ParseIP("127.0.0.1"), firstSvc, net.ParseIP(cp.IP)},
		APIServerDNS: []string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc",
			"kubernetes.default.svc." + nodeconfig.DefaultDNSDomain, cp.Name},
	}
	if p.ListenAddress != "" {
		spec.APIServerIPs = append(spec.APIServerIPs, net.ParseIP(p.ListenAddress))
	}
	for _, n := range p.Nodes {
		spec.Nodes = append(spec.Nodes, pki.NodeSpec{Name: n.Name, IP: net.ParseIP(n.IP)})
	}
	paths, err := pki.Ensure(spec)
	if err != nil {
		return fmt.Errorf("generate certificates: %w", err)
	}
	entry, err := adminEntry(p.Name, p.APIServerURL(), paths)
	if err != nil {
		return err
	}
	if err := kubeconfig.Write(m.store.AdminKubeconfig(p.Name), entry); err != nil {
		return err
	}

	view := nodeView(d, m.store.ProfileDir(p.Name))
	server := p.APIServerURL()
	bind, port := "127.0.0.1", p.APIServerPort
	if view.NodeView != nil {
		server = "https://" + net.JoinHostPort(cp.IP, strconv.Itoa(view.APIServerPort))
		bind, port = "0.0.0.0", view.APIServerPort
	}
	kcDir := filepath.Join(m.store.ProfileDir(p.Name), "kubeconfigs")
	cmKC := filepath.Join(kcDir, "controller-manager.kubeconfig")
	schedKC := filepath.Join(kcDir, "scheduler.kubeconfig")
	cpAdminKC := filepath.Join(kcDir, "control-plane-admin.kubeconfig")
	if err := kubeconfig.WriteWithFiles(cmKC, "controller-manager", server, view.path(paths.CACert), view.path(paths.ControllerManagerCert), view.path(paths.ControllerManagerKey)); err != nil {
		return err
	}
	if err := kubeconfig.WriteWithFiles(schedKC, "scheduler", server, view.path(paths.CACert), view.path(paths.SchedulerCert), view.path(paths.SchedulerKey)); err != nil {
		return err
	}
	entry.Server = server
	if err := kubeconfig.Write(cpAdminKC, entry); err != nil {
		return err
	}
	// The manifests folder: made at every start; a node that is not the
	// host sees it inside the profile folder, or where the driver mounts
	// a folder of the user's choice.
	manifests := m.store.ManifestsDir(p)
	if err := os.MkdirAll(manifests, 0o755); err != nil {
		return fmt.Errorf("make the manifests folder: %w", err)
	}
	manifestsView := view.path(manifests)
	if view.NodeView != nil && manifestsView == manifests {
		manifestsView = view.ManifestsDir
	}
	var egress []string
	lbCIDR := nodeconfig.SimLoadBalancerCIDR
	if p.Subnet != "" {
		egress = []string{p.Subnet}
		layout, err := nodeconfig.SplitSubnet(p.Subnet)
		if err != nil {
			return err
		}
		lbCIDR = layout.LoadBalancers.String()
	}
	for _, n := range p.Nodes {
		dir := m.store.NodeDir(p.Name, n.Name)
		kubeletKC := filepath.Join(dir, "kubelet.kubeconfig")
		if err := kubeconfig.WriteWithFiles(kubeletKC, n.Name, server, view.path(paths.CACert), view.path(paths.KubeletClientCert(n.Name)), view.path(paths.KubeletClientKey(n.Name))); err != nil {
			return err
		}
		dataDir := filepath.Join(dir, "data")
		if view.NodeView != nil {
			dataDir = view.DataDir
		}
		cfg := &nodeconfig.Config{
			Cluster:     p.Name,
			Name:        n.Name,
			Role:        n.Role,
			IP:          n.IP,
			KubeletPort: n.KubeletPort,
			DataDir:     dataDir,
			PKIDir:      view.path(m.store.PKIDir(p.Name)),
			APIServer:   server,
			Kubeconfig:  view.path(kubeletKC),
			CPUMillis:   n.CPUMillis,
			MemoryBytes: n.MemoryBytes,
			MaxPods:     n.MaxPods,
			Runtime:     d.Info().Runtime,
		}
		if n.Autoscaled {
			cfg.Labels = map[string]string{nodeconfig.AutoscaledLabel: "true"}
		}
		if n.Role == nodeconfig.RoleControlPlane {
			cfg.ControlPlane = &nodeconfig.ControlPlane{
				BindAddress:                   bind,
				Port:                          port,
				ServiceCIDR:                   p.ServiceCIDR,
				PodCIDR:                       p.PodCIDR,
				DNSDomain:                     nodeconfig.DefaultDNSDomain,
				ControllerManagerKubeconfig:   view.path(cmKC),
				SchedulerKubeconfig:           view.path(schedKC),
				AdminKubeconfig:               view.path(cpAdminKC),
				NodeCIDRMaskSize:              p.NodeCIDRMaskSize(),
				NodeMonitorGracePeriodSeconds: p.NodeMonitorGracePeriodSeconds,
				PodEvictionSeconds:            p.PodEvictionSeconds,
				EgressAllowCIDRs:              egress,
				LoadBalancerCIDR:              lbCIDR,
				ManifestsDir:                  manifestsView,
				ListenAddress:                 p.ListenAddress,
			}
			if p.ListenAddress != "" {
				cfg.ControlPlane.JoinServer = p.JoinServer()
			}
		}
		if nc, ok := d.(drivers.NodeConfigurer); ok {
			nc.ConfigureNode(m.driverNode(p, n), cfg)
		}
		if err := nodeconfig.Save(filepath.Join(dir, "config.json"), cfg); err != nil {
			return err
		}
	}
	return nil
}

// hostView maps host paths in the profile to where a node sees them.
type hostView struct {
	*drivers.NodeView
	profileDir string
}

func nodeView(d drivers.Driver, profileDir string) hostView {
	return hostView{NodeView: d.Info().NodeView, profileDir: profileDir}
}

// path is hostPath as the node sees it.
func (v hostView) path(hostPath string) string {
	if v.NodeView == nil {
		return hostPath
	}
	rel, err := filepath.Rel(v.profileDir, hostPath)
	if err != nil || strings.HasPrefix(rel, "..") {
		return hostPath
	}
	return path.Join(v.ProfileDir, filepath.ToSlash(rel))
}

func adminEntry(name, server string, paths *pki.Paths) (kubeconfig.Entry, error) {
	ca, err := os.ReadFile(paths.CACert)
	if err != nil {
		return kubeconfig.Entry{}, fmt.Errorf("read CA: %w", err)
	}
	cert, err := os.ReadFile(paths.AdminCert)
	if err != nil {
		return kubeconfig.Entry{}, fmt.Errorf("read admin cert: %w", err)
	}
	key, err := os.ReadFile(paths.AdminKey)
	if err != nil {
		return kubeconfig.Entry{}, fmt.Errorf("read admin key: %w", err)
	}
	return kubeconfig.Entry{Name: name, Server: server, CAData: ca, ClientCert: cert, ClientKey: key}, nil
}

func (m *Manager) driverNode(p *Profile, n ProfileNode) drivers.Node {
	dir := m.store.NodeDir(p.Name, n.Name)
	return drivers.Node{
		Cluster: p.Name, Name: n.Name, Role: n.Role, Dir: dir, ConfigPath: filepath.Join(dir, "config.json"),
		ProfileDir: m.store.ProfileDir(p.Name), IP: n.IP, Subnet: p.Subnet, APIServerPort: p.APIServerPort,
		ServiceCIDR: p.ServiceCIDR, DNSDomain: nodeconfig.DefaultDNSDomain,
		ManifestsDir: p.ManifestsDir, PublishLocalhost: p.PublishLocalhost, ListenAddress: p.ListenAddress,
	}
}

// startNodes starts every node at once: agents retry until the apiserver answers.
func (m *Manager) startNodes(ctx context.Context, d drivers.Driver, p *Profile) error {
	return m.onNodes(p, p.Nodes, func(n drivers.Node) error { return d.StartNode(ctx, n) })
}

// workersThenControlPlane runs fn on every worker at once, then on the
// control plane, which keeps the API up while the workers go.
func (m *Manager) workersThenControlPlane(p *Profile, fn func(drivers.Node) error) error {
	cp := p.ControlPlane()
	workers := slices.DeleteFunc(slices.Clone(p.Nodes), func(n ProfileNode) bool { return n.Name == cp.Name })
	return errors.Join(m.onNodes(p, workers, fn), fn(m.driverNode(p, *cp)))
}

// onNodes runs fn on the given nodes concurrently and joins their errors.
func (m *Manager) onNodes(p *Profile, nodes []ProfileNode, fn func(drivers.Node) error) error {
	errs := make(chan error, len(nodes))
	for _, n := range nodes {
		go func() { errs <- fn(m.driverNode(p, n)) }()
	}
	var all []error
	for range nodes {
		if err := <-errs; err != nil {
			all = append(all, err)
		}
	}
	return errors.Join(all...)
}

func (m *Manager) mergeKubeconfig(p *Profile) error {
	paths := pki.Layout(m.store.PKIDir(p.Name))
	entry, err := adminEntry(p.Name, p.APIServerURL(), paths)
	if err != nil {
		return err
	}
	if err := kubeconfig.Merge(p.Kubeconfig, entry, true); err != nil {
		return fmt.Errorf("merge kubeconfig: %w", err)
	}
	return nil
}

// rollback undoes a failed start: a profile this call created is deleted
// entirely; an existing one is left stopped with all its data.
func (m *Manager) rollback(ctx context.Context, d drivers.Driver, p *Profile, created bool) error {
	if d == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	undo := d.StopNode
	if created {
		undo = d.DeleteNode
	}
	err := m.workersThenControlPlane(p, func(n drivers.Node) error { return undo(ctx, n) })
	if !created {
		return nil
	}
	if err == nil {
		err = m.deleteCluster(ctx, d, p.Name)
	}
	if err != nil {
		// The profile is what lets `minik delete` find what is left.
		return err
	}
	_ = kubeconfig.Remove(p.Kubeconfig, p.Name)
	_ = os.RemoveAll(m.store.ProfileDir(p.Name))
	return nil
}

// Stop stops every node of a profile, workers first.
func (m *Manager) Stop(ctx context.Context, name string) error {
	if err := ValidateName(name); err != nil {
		return err
	}
	// The agent first: it may hold the lock while it adds a node, and
	// must not add one to a cluster going away.
	if err := m.stopAgent(name); err != nil {
		return err
	}
	lock, err := m.lock(name)
	if err != nil {
		return err
	}
	defer lock.Unlock()
	p, err := m.store.Load(name)
	if err != nil {
		return err
	}
	d, err := m.drivers.Get(p.Driver)
	if err != nil {
		return err
	}
	done := m.report.Step(StepStopNodes)
	err = m.workersThenControlPlane(p, func(n drivers.Node) error { return d.StopNode(ctx, n) })
	done(err)
	return err
}

// Delete removes a profile: its nodes, its kubeconfig entries and its folder.
// A corrupt profile is removed as far as its folder allows.
func (m *Manager) Delete(ctx context.Context, name string) error {
	if err := ValidateName(name); err != nil {
		return err
	}
	if err := m.stopAgent(name); err != nil {
		return err
	}
	lock, err := m.lock(name)
	if err != nil {
		return err
	}
	defer lock.Unlock()
	p, err := m.store.Load(name)
	if errors.Is(err, ErrNotFound) {
		return err
	}
	done := m.report.Step(StepDeleteNodes)
	if err != nil {
		err = m.deleteCorrupt(ctx, name)
	} else {
		err = m.deleteProfile(ctx, p)
	}
	done(err)
	return err
}

func (m *Manager) deleteProfile(ctx context.Context, p *Profile) error {
	d, err := m.drivers.Get(p.Driver)
	if err != nil {
		return err
	}
	if err := m.workersThenControlPlane(p, func(n drivers.Node) error { return d.DeleteNode(ctx, n) }); err != nil {
		// Keep the profile so that a second delete can finish the job.
		return err
	}
	if err := m.deleteCluster(ctx, d, p.Name); err != nil {
		return err
	}
	if err := kubeconfig.Remove(p.Kubeconfig, p.Name); err != nil {
		return err
	}
	if err := os.RemoveAll(m.store.ProfileDir(p.Name)); err != nil {
		return fmt.Errorf("delete profile folder: %w", err)
	}
	return nil
}

// deleteCorrupt stops whatever nodes the folder still names, through every
// healthy driver, then removes the kubeconfig entries and the folder.
func (m *Manager) deleteCorrupt(ctx context.Context, name string) error {
	entries, _ := os.ReadDir(filepath.Join(m.store.ProfileDir(name), "nodes"))
	var errs []error
	for _, dn := range m.drivers.Names() {
		d, _ := m.drivers.Get(dn)
		if d.Health(ctx) != nil {
			continue
		}
		for _, e := range entries {
			dir := m.store.NodeDir(name, e.Name())
			n := drivers.Node{Cluster: name, Name: e.Name(), Dir: dir, ConfigPath: filepath.Join(dir, "config.json")}
			if err := d.DeleteNode(ctx, n); err != nil {
				errs = append(errs, err)
			}
		}
		if err := m.deleteCluster(ctx, d, name); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	if err := kubeconfig.Remove(m.kubeconfig, name); err != nil {
		return err
	}
	if err := os.RemoveAll(m.store.ProfileDir(name)); err != nil {
		return fmt.Errorf("delete profile folder: %w", err)
	}
	return nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// DefaultMaxPods is the kubelet's default pod limit per node.
const DefaultMaxPods = 110

// defaultCapacity gives each node this machine's CPUs, a fair share of its
// memory and the kubelet's default pod limit.
func defaultCapacity(nodes int) NodeResources {
	mem := totalMemory()
	if mem <= 0 {
		mem = 8 << 30
	}
	return NodeResources{CPUMillis: int64(runtime.NumCPU()) * 1000, MemoryBytes: mem / int64(nodes), MaxPods: DefaultMaxPods}
}

// updateEviction records changed eviction timing on an existing profile;
// it takes effect when the control plane starts.
func (m *Manager) updateEviction(p *Profile, o StartOptions) error {
	changed := false
	if s := int(o.NodeMonitorGracePeriod.Seconds()); s > 0 && s != p.NodeMonitorGracePeriodSeconds {
		p.NodeMonitorGracePeriodSeconds, changed = s, true
	}
	if s := int(o.PodEvictionTimeout.Seconds()); s > 0 && s != p.PodEvictionSeconds {
		p.PodEvictionSeconds, changed = s, true
	}
	if !changed {
		return nil
	}
	return m.store.Save(p)
}
