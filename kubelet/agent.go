// Package kubelet is minik's node agent: it registers the node, keeps its
// Lease and status fresh so the control plane sees it Ready, runs the pods
// bound to it through one pod worker on the node's runtime (package
// runtime and its sim and docker sub-packages), serves the kubelet API,
// and on docker's control-plane node answers for Services and cluster DNS.
// RunHost runs many simulated nodes in one process.
package kubelet

import (
	"context"
	"fmt"
	"os"
	goruntime "runtime"
	"strings"
	"sync"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	apiruntime "k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/tools/record"
	watchtools "k8s.io/client-go/tools/watch"
	"k8s.io/client-go/util/certificate"
	"k8s.io/client-go/util/retry"
	"k8s.io/klog/v2"
	v1helper "k8s.io/kubernetes/pkg/apis/core/v1/helper"
	"k8s.io/utils/ptr"
	gwclient "sigs.k8s.io/gateway-api/pkg/client/clientset/versioned"

	"minik.dev/minik/kubelet/engine"
	"minik.dev/minik/kubelet/podroutes"
	"minik.dev/minik/kubelet/projected"
	"minik.dev/minik/kubelet/runtime"
	"minik.dev/minik/kubelet/runtime/docker"
	"minik.dev/minik/kubelet/runtime/sim"
	"minik.dev/minik/kubelet/services"
	containerimage "minik.dev/minik/node-image/container"
	"minik.dev/minik/nodeconfig"
	"minik.dev/minik/version"
)

// Timings of a real kubelet's defaults.
const (
	leaseDuration        = 40 * time.Second
	leaseRenewInterval   = 10 * time.Second
	statusReportInterval = time.Minute
	retryInterval        = 100 * time.Millisecond
)

// controllerManagedAttach is the annotation (volumeutil's) by which a node
// lets the attach-detach controller attach its volumes.
const controllerManagedAttach = "volumes.kubernetes.io/controller-managed-attach-detach"

// KubeletVersion is what the node reports; the control plane is the same release.
var KubeletVersion = "v1.37.2"

// Agent is one node's agent.
type Agent struct {
	cfg    *nodeconfig.Config
	client kubernetes.Interface
	// runtimeVersion is what the Node reports as its container runtime.
	runtimeVersion string
	// clientCerts renews a joined node's client certificate; nil on
	// nodes whose credentials minik wrote. stopClientCerts ends the
	// transport's watch of it.
	clientCerts     certificate.Manager
	stopClientCerts chan struct{}
	// leave removes what the runtime left on a joined machine once its
	// Node is deleted; nil when there is nothing to remove.
	leave func(context.Context) error
	// hostRoutes is the host's routing table as this node changes it;
	// nil: the table of the node's own network namespace.
	hostRoutes podroutes.Table
}

// New creates the agent from the node config.
func New(cfg *nodeconfig.Config) (*Agent, error) {
	rc, err := clientcmd.BuildConfigFromFlags("", cfg.Kubeconfig)
	if err != nil {
		return nil, fmt.Errorf("load node kubeconfig: %w", err)
	}
	rc.UserAgent = "minik-node/" + cfg.Name
	a := &Agent{cfg: cfg}
	if cfg.Joined {
		a.stopClientCerts = make(chan struct{})
		if rc, a.clientCerts, err = rotatingClientConfig(cfg, rc, a.stopClientCerts); err != nil {
			return nil, err
		}
	}
	// A node syncs hundreds of pods a second in scale tests.
	rc.QPS, rc.Burst = 1000, 2000
	if !cfg.Joined {
		// On the apiserver's machine, as upstream's scheduler and
		// controller-manager do: gzip only costs CPU on both ends, and each
		// watch stream's decompressor holds ~50 KiB in the agent.
		rc.DisableCompression = true
	}
	if a.client, err = kubernetes.NewForConfig(rc); err != nil {
		return nil, fmt.Errorf("create node client: %w", err)
	}
	return a, nil
}

// Run registers the node, keeps it alive and runs its pods until ctx is done.
func (a *Agent) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if a.clientCerts != nil {
		a.clientCerts.Start()
		defer a.clientCerts.Stop()
		defer close(a.stopClientCerts)
	}
	broadcaster := record.NewBroadcaster(record.WithContext(ctx))
	broadcaster.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: a.client.CoreV1().Events("")})
	defer broadcaster.Shutdown()
	recorder := broadcaster.NewRecorder(scheme.Scheme, corev1.EventSource{Component: "kubelet", Host: a.cfg.Name})

	rt, closeRuntime, err := a.newRuntime(ctx, recorder)
	if err != nil {
		return err
	}
	defer closeRuntime()
	if a.runtimeVersion, err = rt.Version(ctx); err != nil {
		return err
	}
	listener, err := listenKubelet(a.cfg)
	if err != nil {
		return err
	}
	defer listener.Close()
	if err := a.register(ctx); err != nil {
		return err
	}
	klog.InfoS("node registered", "node", a.cfg.Name)
	deleted := make(chan error, 1)
	if a.cfg.Joined {
		go func() {
			if err := a.watchDeletion(ctx); err != nil {
				deleted <- err
				cancel()
			}
		}()
	}
	if err := a.reportStatus(ctx); err != nil {
		klog.ErrorS(err, "report node status")
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Add(1)
	go func() {
		defer wg.Done()
		a.heartbeat(ctx)
	}()

	pods, factory, err := newPodWorker(a.client, a.cfg.Name, rt, recorder)
	if err != nil {
		return err
	}
	factory.Start(ctx.Done())
	defer factory.Shutdown()
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := pods.Run(ctx); err != nil && ctx.Err() == nil {
			klog.ErrorS(err, "run pods")
		}
	}()
	if svc := a.cfg.Services(); svc != nil && svc.ServeServices {
		if err := a.serveServices(ctx, &wg); err != nil {
			return err
		}
	} else if svc != nil {
		a.serveNodePorts(ctx, &wg)
	}
	if a.cfg.RouteJoinedPods {
		a.routeJoinedPods(ctx, &wg, recorder)
	}
	klog.InfoS("running pods", "node", a.cfg.Name, "runtime", rt.Name())
	// The kubelet API ending ends the node: without it logs and metrics fail.
	err = newServer(a.cfg, a.client, pods, rt).Serve(ctx, listener)
	select {
	case why := <-deleted:
		if a.leave != nil {
			// ctx is done: the clean-up has its own time.
			leaveCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
			defer cancel()
			if err := a.leave(leaveCtx); err != nil {
				klog.ErrorS(err, "clean up after the node's deletion")
			}
		}
		return why
	default:
		return err
	}
}

// newRuntime chooses the node's runtime from its (validated) config: the
// one place that knows which runtimes exist. close releases what it holds.
func (a *Agent) newRuntime(ctx context.Context, recorder record.EventRecorder) (runtime.Runtime, func(), error) {
	// Trust bundles and pod certificates, for every runtime's pods.
	sources := projected.New(ctx, a.client, a.cfg.Name, recorder)
	if a.cfg.Runtime == nodeconfig.RuntimeDocker {
		if a.cfg.Joined {
			// The sandbox image is this binary's, whichever ran join.
			a.cfg.Docker.SandboxImage = containerimage.Ref(version.Version)
		}
		eng, err := engine.New(ctx, a.cfg.Cluster, a.cfg.Name, *a.cfg.Docker)
		if err != nil {
			return nil, nil, err
		}
		rt := docker.New(eng, a.cfg, a.client, recorder, sources)
		if !a.cfg.Docker.HostIsNode {
			a.hostRoutes = engineRouteTable{engine: eng}
		}
		if a.cfg.Joined {
			j := &joinedDocker{Runtime: rt, engine: eng, podCIDR: a.waitPodCIDR, version: version.Version}
			a.leave = j.leave
			return j, func() { _ = eng.Close() }, nil
		}
		return rt, func() { _ = eng.Close() }, nil
	}
	if a.cfg.Runtime == nodeconfig.RuntimeRunc {
		eng, err := newRuncEngine(ctx, a.cfg, a.waitPodCIDR)
		if err != nil {
			return nil, nil, err
		}
		return docker.New(eng, a.cfg, a.client, recorder, sources), func() {}, nil
	}
	// Sim pods take their IPs from the node's podCIDR, which the
	// controller-manager assigns once the node is registered.
	return sim.New(a.cfg.IP, KubeletVersion, a.waitPodCIDR, recorder, sources), func() {}, nil
}

// serveServices answers for ClusterIPs and cluster DNS from this node. It
// acts for the whole cluster (it creates the DNS Service and watches every
// EndpointSlice), so it uses the control plane's admin credentials, not
// the node's.
func (a *Agent) serveServices(ctx context.Context, wg *sync.WaitGroup) error {
	if a.cfg.ControlPlane == nil {
		return fmt.Errorf("serve services: node %s is not the control plane", a.cfg.Name)
	}
	rc, err := clientcmd.BuildConfigFromFlags("", a.cfg.ControlPlane.AdminKubeconfig)
	if err != nil {
		return fmt.Errorf("load admin kubeconfig: %w", err)
	}
	rc.UserAgent = "minik-node/" + a.cfg.Name + "/services"
	client, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return fmt.Errorf("create services client: %w", err)
	}
	gw, err := gwclient.NewForConfig(rc)
	if err != nil {
		return fmt.Errorf("create gateway client: %w", err)
	}
	svc := a.cfg.Services()
	dnsIP, err := nodeconfig.ClusterDNSIP(svc.ServiceCIDR)
	if err != nil {
		return err
	}
	// The engine's own resolver, as every container on a user network
	// has; a runc node has none, so names outside the cluster fail.
	upstream := "127.0.0.11:53"
	if a.cfg.Runtime == nodeconfig.RuntimeRunc {
		upstream = ""
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		err := services.Run(ctx, services.Options{
			Client: client, NodeIP: a.cfg.IP, NodeName: a.cfg.Name, DNSIP: dnsIP.String(), Domain: svc.DNSDomain,
			Upstream: upstream,
			Gateway:  gw,
		})
		if err != nil {
			klog.ErrorS(err, "serve services")
		}
	}()
	return nil
}

// routeJoinedPods keeps this machine's routes to the pods of joined
// nodes while the node runs.
func (a *Agent) routeJoinedPods(ctx context.Context, wg *sync.WaitGroup, recorder record.EventRecorder) {
	wg.Add(1)
	go func() {
		defer wg.Done()
		table := a.hostRoutes
		if table == nil {
			table = podroutes.NewTable()
		}
		err := podroutes.Run(ctx, podroutes.Options{Client: a.client, Table: table, Recorder: recorder})
		if err != nil {
			klog.ErrorS(err, "route to joined nodes' pods")
		}
	}()
}

// serveNodePorts answers on this worker's NodePorts, with the node's own
// credentials (the control plane lets nodes read EndpointSlices).
func (a *Agent) serveNodePorts(ctx context.Context, wg *sync.WaitGroup) {
	wg.Add(1)
	go func() {
		defer wg.Done()
		err := services.Run(ctx, services.Options{Client: a.client, NodeIP: a.cfg.IP, NodeName: a.cfg.Name, NodePortsOnly: true})
		if err != nil {
			klog.ErrorS(err, "serve node ports")
		}
	}()
}

// heartbeat renews the Lease and re-reports status until ctx is done.
func (a *Agent) heartbeat(ctx context.Context) {
	lease := time.NewTimer(0)
	defer lease.Stop()
	status := time.NewTicker(statusReportInterval)
	defer status.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-lease.C:
			// Retry soon after a failure: right after the apiserver starts,
			// kube-node-lease may not exist yet.
			next := leaseRenewInterval
			if err := a.renewLease(ctx); err != nil {
				klog.V(2).InfoS("renew lease: retrying", "err", err)
				next = retryInterval * 2
			}
			lease.Reset(next)
		case <-status.C:
			if err := a.reportStatus(ctx); err != nil {
				klog.ErrorS(err, "report node status")
			}
		}
	}
}

// waitPodCIDR waits for kube-controller-manager to give the node a podCIDR.
// It watches the Node, as the kubelet's node informer does: polling with
// GETs cost the apiserver a request per node every retry while hundreds of
// nodes started at once.
func (a *Agent) waitPodCIDR(ctx context.Context) (string, error) {
	return waitPodCIDR(ctx, a.client, a.cfg.Name)
}

func waitPodCIDR(ctx context.Context, client kubernetes.Interface, node string) (string, error) {
	selector := fields.OneTermEqualSelector("metadata.name", node).String()
	// As client-go's informers do: a client that cannot stream a watch
	// list (a fake one) is listed instead.
	lw := cache.ToListWatcherWithWatchListSemantics(&cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (apiruntime.Object, error) {
			o.FieldSelector = selector
			return client.CoreV1().Nodes().List(ctx, o)
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			o.FieldSelector = selector
			return client.CoreV1().Nodes().Watch(ctx, o)
		},
	}, client)
	ev, err := watchtools.UntilWithSync(ctx, lw, &corev1.Node{}, nil, func(ev watch.Event) (bool, error) {
		n, ok := ev.Object.(*corev1.Node)
		return ok && n.Spec.PodCIDR != "", nil
	})
	if err != nil {
		return "", fmt.Errorf("wait for pod CIDR: %w", err)
	}
	return ev.Object.(*corev1.Node).Spec.PodCIDR, nil
}

// register creates the Node, retrying while the apiserver comes up.
func (a *Agent) register(ctx context.Context) error {
	node := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{
			Name:   a.cfg.Name,
			Labels: a.labels(),
			// As the kubelet's default: the attach-detach controller
			// attaches this node's volumes (and enforces ReadWriteOnce).
			Annotations: map[string]string{controllerManagedAttach: "true"},
		},
	}
	for {
		_, err := a.client.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{})
		if err == nil {
			return nil
		}
		if apierrors.IsAlreadyExists(err) {
			// A node registered by an older agent may lack the annotation.
			patch := fmt.Sprintf(`{"metadata":{"annotations":{%q:"true"}}}`, controllerManagedAttach)
			_, err = a.client.CoreV1().Nodes().Patch(ctx, a.cfg.Name, types.MergePatchType, []byte(patch), metav1.PatchOptions{})
			if err == nil {
				return nil
			}
		}
		klog.V(2).InfoS("register node: retrying", "err", err)
		select {
		case <-ctx.Done():
			return fmt.Errorf("register node %s: %w", a.cfg.Name, ctx.Err())
		case <-time.After(retryInterval):
		}
	}
}

func (a *Agent) labels() map[string]string {
	l := map[string]string{
		corev1.LabelHostname:   a.cfg.Name,
		corev1.LabelOSStable:   "linux",
		corev1.LabelArchStable: goruntime.GOARCH,
		"minik.dev/cluster":    a.cfg.Cluster,
	}
	for k, v := range a.cfg.Labels {
		l[k] = v
	}
	return l
}

// reportStatus writes capacity, addresses, node info and conditions.
// NodeRestriction admission compares taints before the apiserver checks
// the resourceVersion: when the node controller changes a taint between
// our read and our write, the write is Forbidden rather than a Conflict,
// so both mean "read again" (the agent itself never changes taints).
func (a *Agent) reportStatus(ctx context.Context) error {
	stale := func(err error) bool { return apierrors.IsConflict(err) || apierrors.IsForbidden(err) }
	return retry.OnError(retry.DefaultRetry, stale, func() error {
		node, err := a.client.CoreV1().Nodes().Get(ctx, a.cfg.Name, metav1.GetOptions{})
		if err != nil {
			return fmt.Errorf("get node: %w", err)
		}
		a.setStatus(&node.Status, metav1.Now())
		_, err = a.client.CoreV1().Nodes().UpdateStatus(ctx, node, metav1.UpdateOptions{})
		return err
	})
}

func (a *Agent) setStatus(st *corev1.NodeStatus, now metav1.Time) {
	capacity := corev1.ResourceList{
		corev1.ResourceCPU:              *resource.NewMilliQuantity(a.cfg.CPUMillis, resource.DecimalSI),
		corev1.ResourceMemory:           *resource.NewQuantity(a.cfg.MemoryBytes, resource.BinarySI),
		corev1.ResourcePods:             *resource.NewQuantity(int64(a.maxPods()), resource.DecimalSI),
		corev1.ResourceEphemeralStorage: *resource.NewQuantity(100<<30, resource.BinarySI),
	}
	// Extended resources someone else advertised (a device plugin's stand-in
	// patching node status, as the scheduler's specs do) stay, as with the
	// kubelet, which owns only the resources it measures.
	for name, q := range st.Capacity {
		if v1helper.IsExtendedResourceName(name) {
			capacity[name] = q
		}
	}
	st.Capacity = capacity
	st.Allocatable = capacity.DeepCopy()
	st.Addresses = []corev1.NodeAddress{
		{Type: corev1.NodeInternalIP, Address: a.cfg.IP},
		{Type: corev1.NodeHostName, Address: a.cfg.Name},
	}
	st.DaemonEndpoints.KubeletEndpoint.Port = int32(a.cfg.KubeletPort)
	st.NodeInfo = corev1.NodeSystemInfo{
		MachineID:               a.cfg.Cluster + "-" + a.cfg.Name,
		SystemUUID:              a.cfg.Cluster + "-" + a.cfg.Name,
		BootID:                  a.cfg.Cluster + "-" + a.cfg.Name,
		KernelVersion:           kernelVersion(),
		OSImage:                 "minik",
		ContainerRuntimeVersion: a.runtimeVersion,
		KubeletVersion:          KubeletVersion,
		OperatingSystem:         "linux",
		Architecture:            goruntime.GOARCH,
	}
	st.Conditions = mergeConditions(st.Conditions, []corev1.NodeCondition{
		{Type: corev1.NodeMemoryPressure, Status: corev1.ConditionFalse, Reason: "KubeletHasSufficientMemory", Message: "kubelet has sufficient memory available"},
		{Type: corev1.NodeDiskPressure, Status: corev1.ConditionFalse, Reason: "KubeletHasNoDiskPressure", Message: "kubelet has no disk pressure"},
		{Type: corev1.NodePIDPressure, Status: corev1.ConditionFalse, Reason: "KubeletHasSufficientPID", Message: "kubelet has sufficient PID available"},
		{Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "KubeletReady", Message: "kubelet is posting ready status"},
	}, now)
}

func (a *Agent) maxPods() int {
	if a.cfg.MaxPods > 0 {
		return a.cfg.MaxPods
	}
	return 110
}

// mergeConditions sets want on have, moving LastTransitionTime only when a
// condition's status changes, as the kubelet does.
func mergeConditions(have, want []corev1.NodeCondition, now metav1.Time) []corev1.NodeCondition {
	out := make([]corev1.NodeCondition, 0, len(want))
	for _, w := range want {
		w.LastHeartbeatTime = now
		w.LastTransitionTime = now
		for _, h := range have {
			if h.Type == w.Type && h.Status == w.Status {
				w.LastTransitionTime = h.LastTransitionTime
			}
		}
		out = append(out, w)
	}
	return out
}

// renewLease creates or renews the node's Lease in kube-node-lease.
func (a *Agent) renewLease(ctx context.Context) error {
	leases := a.client.CoordinationV1().Leases(corev1.NamespaceNodeLease)
	now := metav1.NewMicroTime(time.Now())
	lease, err := leases.Get(ctx, a.cfg.Name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		node, err := a.client.CoreV1().Nodes().Get(ctx, a.cfg.Name, metav1.GetOptions{})
		if err != nil {
			return fmt.Errorf("create lease: get node: %w", err)
		}
		lease = &coordinationv1.Lease{
			ObjectMeta: metav1.ObjectMeta{
				Name:      a.cfg.Name,
				Namespace: corev1.NamespaceNodeLease,
				OwnerReferences: []metav1.OwnerReference{{
					APIVersion: "v1", Kind: "Node", Name: node.Name, UID: node.UID,
				}},
			},
			Spec: coordinationv1.LeaseSpec{
				HolderIdentity:       ptr.To(a.cfg.Name),
				LeaseDurationSeconds: ptr.To(int32(leaseDuration.Seconds())),
				RenewTime:            &now,
			},
		}
		if _, err := leases.Create(ctx, lease, metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("create lease: %w", err)
		}
		return nil
	case err != nil:
		return fmt.Errorf("get lease: %w", err)
	default:
		lease.Spec.RenewTime = &now
		lease.Spec.HolderIdentity = ptr.To(a.cfg.Name)
		lease.Spec.LeaseDurationSeconds = ptr.To(int32(leaseDuration.Seconds()))
		if _, err := leases.Update(ctx, lease, metav1.UpdateOptions{}); err != nil {
			return fmt.Errorf("renew lease: %w", err)
		}
		return nil
	}
}

// kernelVersion is the release of the kernel the node runs on, as `uname
// -r` prints it (a VM node's own; the host's for process and container
// nodes), as the kubelet reports it; "minik" where there is none to read.
func kernelVersion() string {
	b, err := os.ReadFile("/proc/sys/kernel/osrelease")
	if err != nil || len(strings.TrimSpace(string(b))) == 0 {
		return "minik"
	}
	return strings.TrimSpace(string(b))
}
