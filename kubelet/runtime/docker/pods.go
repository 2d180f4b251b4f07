package docker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/record"
	"k8s.io/klog/v2"
	"k8s.io/kubernetes/pkg/apis/core/v1/helper/qos"
	"k8s.io/utils/ptr"

	"minik.dev/minik/kubelet/engine"
	"minik.dev/minik/kubelet/hostports"
	"minik.dev/minik/kubelet/podlogs"
	"minik.dev/minik/kubelet/runtime"
	"minik.dev/minik/nodeconfig"
)

// Timings of the docker runtime, the real kubelet's where it has one.
const (
	// dockerResync re-reads running pods' containers: engine events are
	// hints, and a missed one must not leave a status stale for long.
	dockerResync = 5 * time.Second
	// Crash-loop back-off doubles from backOffInitial up to backOffMax and
	// is forgotten after a container has run for backOffReset.
	backOffInitial = 10 * time.Second
	backOffMax     = 5 * time.Minute
	backOffReset   = 10 * time.Minute
	// orphanSweep is how often the control-plane node removes the pod
	// containers of nodes whose container is gone.
	orphanSweep = 5 * time.Second
	// statsInterval is how often container usage is sampled.
	statsInterval = 5 * time.Second
	// volumePoll is how often a pod waiting for its volumes looks again.
	volumePoll = 250 * time.Millisecond
	// configRetry is how often a container whose configuration cannot be
	// made (CreateContainerConfigError) is tried again.
	configRetry = 10 * time.Second
)

// Runtime runs the pods bound to this node as containers of the engine
// that runs the node: a sandbox per pod holds the network namespace (its
// address on the cluster network is the pod IP), app containers join it.
type Runtime struct {
	cfg      *nodeconfig.Config
	client   kubernetes.Interface
	engine   Engine
	recorder record.EventRecorder
	now      func() time.Time
	// wake asks the pod worker to sync a pod again, by key.
	wake func(key string)

	mu   sync.Mutex
	pods map[types.UID]*dockerPod
	// byUID finds a pod's key from an engine event.
	byUID map[string]string
	stats map[string]containerStats // by container ID
	// logs is the node's log folder, nil when the node keeps none.
	logs *podlogs.Store
	// probes counts probe results for /metrics/probes.
	probes map[runtime.ProbeKey]uint64
	// credentials resolves the sources of projected volumes that the
	// cluster issues.
	credentials Credentials
	// hostPorts serves the pods' host ports on the node.
	hostPorts *hostports.Forwarder
}

// Credentials resolves the clusterTrustBundle and podCertificate sources
// of projected volumes (projected.Sources does, with the kubelet's
// managers).
type Credentials interface {
	// TrustBundle is the PEM anchors a source selects; empty when an
	// optional source selects none, an error when a required one does.
	TrustBundle(ctx context.Context, src *corev1.ClusterTrustBundleProjection) ([]byte, error)
	// PodCertificate is the key and chain of the podCertificate source at
	// index of a projected volume; an error until they are issued.
	PodCertificate(ctx context.Context, pod *corev1.Pod, volume string, index int) (key, chain []byte, err error)
	// ForgetPod drops what was issued for a pod that is gone.
	ForgetPod(ctx context.Context, uid types.UID)
}

var (
	_ runtime.Runtime   = (*Runtime)(nil)
	_ runtime.Streaming = (*Runtime)(nil)
	_ runtime.Prober    = (*Runtime)(nil)
)

// dockerPod is what the runtime knows of one pod between syncs. Only the
// pod's own sync (the worker runs one per pod) changes it, but the
// kubelet API and probes read it, under Runtime.mu.
type dockerPod struct {
	pod        *corev1.Pod
	sandboxID  string
	ip         string
	containers map[string]*dockerContainer
	// volumesAttached is set once every claim's volume is attached here.
	volumesAttached bool
	// cancel stops the pod's probes and log copies.
	cancel context.CancelFunc
	ctx    context.Context
	// logCopies are the pod's runs being copied to the log folder.
	logCopies sync.WaitGroup
	// fileVolumes are the pod's configMap, secret, downward API and
	// projected volumes, by name; fileSyncAt is when they are made
	// again, fileVolumeErr why the last time failed.
	fileVolumes   map[string]*fileVolume
	fileSyncAt    time.Time
	fileVolumeErr error
	// tokens are the service account tokens of projected volumes, by
	// volume and path, until they are due for renewal.
	tokens map[string]cachedToken
}

// dockerContainer is one container of a pod, across its restarts.
type dockerContainer struct {
	name    string
	init    bool
	id      string
	attempt int
	state   engine.State
	// previousID is the run before this one, kept for `logs --previous`.
	previousID string
	last       *corev1.ContainerStateTerminated
	// waiting is why the container does not run now (image pull errors,
	// back-off); empty once it runs.
	waitingReason, waitingMessage string
	backOff                       time.Duration
	retryAt                       time.Time
	pullFailures                  int
	// Probe results.
	started, ready bool
	// restartRequested is set by a failed liveness or startup probe.
	restartRequested string
	probeCancel      context.CancelFunc
	// target is the container whose processes an ephemeral container
	// sees (targetContainerName).
	target string
	// message is the termination message of the run messageOf (an ID),
	// read once it exited.
	message, messageOf string
	// applied are the resources the current run has, which an in-place
	// resize changes.
	applied *corev1.ResourceRequirements
}

type containerStats struct {
	at        time.Time
	cpuNanos  uint64
	nanoCores uint64
	memory    uint64
	engine    engine.Stats
}

// New returns the docker runtime of a node on eng, which stays the
// caller's to close.
func New(eng Engine, cfg *nodeconfig.Config, client kubernetes.Interface, recorder record.EventRecorder, credentials Credentials) *Runtime {
	var logs *podlogs.Store
	if cfg.LogDir != "" {
		logs = podlogs.New(cfg.LogDir, podlogs.Options{})
	}
	return &Runtime{
		logs:        logs,
		cfg:         cfg,
		client:      client,
		engine:      eng,
		recorder:    recorder,
		credentials: credentials,
		hostPorts:   hostports.New(),
		now:         time.Now,
		wake:        func(string) {},
		pods:        map[types.UID]*dockerPod{},
		byUID:       map[string]string{},
		stats:       map[string]containerStats{},
	}
}

// Name implements runtime.Runtime.
// It is the engine's kind: "docker", or "runc" for the runc engine.
func (m *Runtime) Name() string {
	if m.cfg.Runtime == nodeconfig.RuntimeRunc {
		return nodeconfig.RuntimeRunc
	}
	return "docker"
}

// LoadImage implements runtime.ImageLoader for engines that load images.
func (m *Runtime) LoadImage(ctx context.Context, r io.Reader) ([]string, error) {
	l, ok := m.engine.(runtime.ImageLoader)
	if !ok {
		return nil, fmt.Errorf("load images on node %s: %w: its pods use the engine's own images", m.cfg.Name, runtime.ErrNotSupported)
	}
	return l.LoadImage(ctx, r)
}

// Version implements runtime.Runtime.
func (m *Runtime) Version(ctx context.Context) (string, error) {
	v, err := m.engine.Version(ctx)
	if err != nil {
		return "", err
	}
	return m.Name() + "://" + v, nil
}

// Prepare implements runtime.Runtime. Containers left from before this
// agent started (a node restart) are gone with their network namespace:
// every pod starts afresh.
func (m *Runtime) Prepare(ctx context.Context, pods []*corev1.Pod, wake func(key string)) error {
	m.wake = wake
	if m.logs != nil {
		// Logs of pods deleted while the node was down go; the others
		// stay, as a node's do across a reboot.
		keep := map[string]bool{}
		for _, p := range pods {
			keep[string(p.UID)] = true
		}
		if err := m.logs.Prune(keep); err != nil {
			klog.ErrorS(err, "remove logs of pods that are gone")
		}
	}
	list, err := m.engine.List(ctx)
	if err != nil {
		klog.ErrorS(err, "list pod containers")
		return nil
	}
	uids := map[string]bool{}
	for _, c := range list {
		uids[c.PodUID] = true
	}
	for uid := range uids {
		if err := m.engine.RemovePod(ctx, uid); err != nil {
			klog.ErrorS(err, "remove stale pod containers", "uid", uid)
		}
	}
	return nil
}

// Run implements runtime.Runtime: engine events, usage samples and, on
// the control-plane node, the sweep of lost nodes' containers.
func (m *Runtime) Run(ctx context.Context) {
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Add(2)
	go func() {
		defer wg.Done()
		m.watchEngine(ctx)
	}()
	go func() {
		defer wg.Done()
		m.collectStats(ctx)
	}()
	if m.cfg.Role == nodeconfig.RoleControlPlane {
		m.sweepOrphans(ctx)
	}
}

// watchEngine turns container starts and deaths into syncs of their pods.
func (m *Runtime) watchEngine(ctx context.Context) {
	for ev := range m.engine.Events(ctx) {
		m.mu.Lock()
		key, ok := m.byUID[ev.PodUID]
		m.mu.Unlock()
		if ok {
			m.wake(key)
		}
	}
}

// sweepOrphans removes the pod containers of nodes that were lost (their
// node container killed or removed): nobody else would.
func (m *Runtime) sweepOrphans(ctx context.Context) {
	t := time.NewTicker(orphanSweep)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		n, err := m.engine.RemoveOrphans(ctx)
		switch {
		case err != nil && ctx.Err() == nil:
			klog.ErrorS(err, "remove containers of lost nodes")
		case n > 0:
			klog.InfoS("removed containers of lost nodes", "count", n)
		}
	}
}

// SyncPod implements runtime.Runtime: it makes the pod's sandbox, runs
// its containers as the restart policy says, and reports their status.
func (m *Runtime) SyncPod(ctx context.Context, pod *corev1.Pod) (runtime.Result, error) {
	rec := m.record(ctx, pod)
	if pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
		m.stopProbes(rec)
		m.hostPorts.Remove(string(pod.UID))
		return m.stopFinished(ctx, pod, rec), nil
	}
	if !rec.volumesAttached {
		ok, why, err := m.volumesAttached(ctx, pod)
		if err != nil || !ok {
			if why != "" {
				klog.V(2).InfoS("waiting for volumes", "pod", klog.KObj(pod), "reason", why)
			}
			status := m.podStatus(pod, rec)
			return runtime.Result{Status: &status, Requeue: volumePoll}, err
		}
		m.mu.Lock()
		rec.volumesAttached = true
		m.mu.Unlock()
	}
	if rec.sandboxID == "" {
		sysctls, err := podSysctls(pod)
		if err != nil {
			// Refused at admission, as the kubelet does: the pod fails.
			m.recorder.Eventf(pod, corev1.EventTypeWarning, "SysctlForbidden", "%v", err)
			status := m.podStatus(pod, rec)
			status.Phase, status.Reason, status.Message = corev1.PodFailed, "SysctlForbidden", "Pod was rejected: "+err.Error()
			return runtime.Result{Status: &status}, nil
		}
		spec := engine.SandboxSpec{Sysctls: sysctls, PodUID: string(pod.UID), Namespace: pod.Namespace, Name: pod.Name,
			Hostname: podHostname(pod), HostNetwork: pod.Spec.HostNetwork}
		m.podDNS(pod, &spec)
		m.podHosts(pod, &spec)
		// The sandbox mounts the volumes the node writes files into.
		files, err := m.ensureFileVolumes(ctx, pod, rec)
		if err != nil {
			return runtime.Result{}, err
		}
		spec.Volumes = append(spec.Volumes, files...)
		// The sandbox holds the pod's tmpfs volumes for the pod's life.
		for _, v := range pod.Spec.Volumes {
			if v.EmptyDir != nil && v.EmptyDir.Medium == corev1.StorageMediumMemory {
				name, err := m.engine.EnsureVolume(ctx, string(pod.UID), v.Name, emptyDir(v.EmptyDir))
				if err != nil {
					return runtime.Result{}, err
				}
				spec.Volumes = append(spec.Volumes, name)
			}
		}
		id, ip, err := m.engine.RunSandbox(ctx, spec)
		if err != nil {
			m.recorder.Eventf(pod, corev1.EventTypeWarning, "FailedCreatePodSandBox", "Failed to create pod sandbox: %v", err)
			return runtime.Result{}, err
		}
		if pod.Spec.HostNetwork {
			ip = m.cfg.IP
		}
		m.mu.Lock()
		rec.sandboxID, rec.ip = id, ip
		m.mu.Unlock()
	}
	if !pod.Spec.HostNetwork {
		// As a kubelet's runtime does, before the containers start.
		if err := m.hostPorts.Set(string(pod.UID), rec.ip, hostports.Mappings(pod)); err != nil {
			m.recorder.Eventf(pod, corev1.EventTypeWarning, "FailedCreatePodSandBox", "Failed to create pod sandbox: %v", err)
			return runtime.Result{}, err
		}
	}
	if err := m.syncFileVolumes(ctx, pod, rec); err != nil {
		klog.V(2).InfoS("write file volumes", "pod", klog.KObj(pod), "err", err)
	}
	next := m.runContainers(ctx, pod, rec)
	status := m.podStatus(pod, rec)
	if status.Phase == corev1.PodSucceeded || status.Phase == corev1.PodFailed {
		m.stopProbes(rec)
		m.hostPorts.Remove(string(pod.UID))
		return runtime.Result{Status: &status}, nil
	}
	// Looked at again by the next back-off's end, and at least every
	// dockerResync: engine events are hints, and file volumes follow
	// their sources.
	if next == 0 {
		next = dockerResync
	}
	return runtime.Result{Status: &status, Requeue: min(next, dockerResync)}, nil
}

// stopFinished stops what still runs of a pod that the API says has
// finished (failed past its deadline, say), keeping the containers for
// their logs, and reports their end; the phase stays the API's.
func (m *Runtime) stopFinished(ctx context.Context, pod *corev1.Pod, rec *dockerPod) runtime.Result {
	grace := time.Duration(ptr.Deref(pod.Spec.TerminationGracePeriodSeconds, 30)) * time.Second
	stopped := false
	for _, c := range m.containerList(rec) {
		if c.id == "" || !c.state.Running {
			continue
		}
		m.recorder.Eventf(pod, corev1.EventTypeNormal, "Killing", "Stopping container %s", c.name)
		if err := m.engine.Stop(ctx, c.id, grace); err != nil && !errors.Is(err, engine.ErrNotFound) {
			klog.ErrorS(err, "stop container of a finished pod", "pod", klog.KObj(pod), "container", c.name)
		}
		stopped = true
	}
	if !stopped {
		return runtime.Result{}
	}
	states := map[string]engine.State{}
	for _, c := range m.containerList(rec) {
		if c.id == "" {
			continue
		}
		if st, err := m.engine.Inspect(ctx, c.id); err == nil {
			states[c.name] = st
		}
	}
	m.mu.Lock()
	for name, st := range states {
		rec.containers[name].state = st
	}
	m.mu.Unlock()
	status := m.podStatus(pod, rec)
	status.Phase = pod.Status.Phase
	reason := "PodFailed"
	if status.Phase == corev1.PodSucceeded {
		reason = "PodCompleted"
	}
	for i := range status.Conditions {
		if t := status.Conditions[i].Type; t == corev1.PodReady || t == corev1.ContainersReady {
			status.Conditions[i].Status, status.Conditions[i].Reason = corev1.ConditionFalse, reason
		}
	}
	return runtime.Result{Status: &status}
}

// record returns the pod's record, making it on first sight.
func (m *Runtime) record(ctx context.Context, pod *corev1.Pod) *dockerPod {
	m.mu.Lock()
	defer m.mu.Unlock()
	rec, ok := m.pods[pod.UID]
	if !ok {
		pctx, cancel := context.WithCancel(ctx)
		rec = &dockerPod{containers: map[string]*dockerContainer{}, ctx: pctx, cancel: cancel,
			fileVolumes: map[string]*fileVolume{}, tokens: map[string]cachedToken{}}
		// A pod that ran before this agent started (a node restart)
		// keeps counting restarts from where its status left them.
		for _, st := range [][]corev1.ContainerStatus{pod.Status.InitContainerStatuses, pod.Status.ContainerStatuses} {
			for _, cs := range st {
				c := &dockerContainer{name: cs.Name, attempt: int(cs.RestartCount)}
				if cs.ContainerID != "" {
					c.attempt++
					c.last = cs.State.Terminated
				}
				rec.containers[cs.Name] = c
			}
		}
		m.pods[pod.UID] = rec
		m.byUID[string(pod.UID)] = pod.Namespace + "/" + pod.Name
	}
	rec.pod = pod
	return rec
}

// ForgetPod implements runtime.Runtime.
func (m *Runtime) ForgetPod(ctx context.Context, uid types.UID) error {
	return m.removePod(ctx, uid)
}

func (m *Runtime) removePod(ctx context.Context, uid types.UID) error {
	m.credentials.ForgetPod(ctx, uid)
	m.hostPorts.Remove(string(uid))
	m.mu.Lock()
	rec := m.pods[uid]
	for k := range m.probes {
		if k.PodUID == string(uid) {
			delete(m.probes, k)
		}
	}
	m.mu.Unlock()
	if rec != nil {
		rec.cancel()
	}
	if err := m.engine.RemovePod(ctx, string(uid)); err != nil {
		return fmt.Errorf("remove pod containers: %w", err)
	}
	if rec != nil && m.logs != nil {
		rec.logCopies.Wait()
		if err := m.logs.RemovePod(rec.pod.Namespace, rec.pod.Name, string(uid)); err != nil {
			return fmt.Errorf("remove pod logs: %w", err)
		}
	}
	m.mu.Lock()
	delete(m.pods, uid)
	delete(m.byUID, string(uid))
	m.mu.Unlock()
	return nil
}

// KillPod implements runtime.Runtime: it stops a deleted pod's containers
// within its grace period and removes them.
func (m *Runtime) KillPod(ctx context.Context, pod *corev1.Pod) (runtime.Result, error) {
	rec := m.record(ctx, pod)
	grace := time.Duration(ptr.Deref(pod.DeletionGracePeriodSeconds, 30)) * time.Second
	m.stopProbes(rec)
	grace = m.preStop(ctx, pod, rec, grace)
	var wg sync.WaitGroup
	for _, c := range m.containerList(rec) {
		if c.id == "" || !c.state.Running {
			continue
		}
		m.recorder.Eventf(pod, corev1.EventTypeNormal, "Killing", "Stopping container %s", c.name)
		wg.Add(1)
		go func(id string) {
			defer wg.Done()
			if err := m.engine.Stop(ctx, id, grace); err != nil && !errors.Is(err, engine.ErrNotFound) {
				klog.ErrorS(err, "stop container", "pod", klog.KObj(pod), "id", id)
			}
		}(c.id)
	}
	wg.Wait()
	return runtime.Result{}, m.removePod(ctx, pod.UID)
}

func (m *Runtime) stopProbes(rec *dockerPod) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, c := range rec.containers {
		if c.probeCancel != nil {
			c.probeCancel()
			c.probeCancel = nil
		}
	}
}

// containerList is a snapshot of the pod's container records.
func (m *Runtime) containerList(rec *dockerPod) []dockerContainer {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]dockerContainer, 0, len(rec.containers))
	for _, c := range rec.containers {
		out = append(out, *c)
	}
	return out
}

// container returns the record of a container, making it if needed.
func (m *Runtime) container(rec *dockerPod, name string, init bool) *dockerContainer {
	m.mu.Lock()
	defer m.mu.Unlock()
	c, ok := rec.containers[name]
	if !ok {
		c = &dockerContainer{name: name}
		rec.containers[name] = c
	}
	c.init = init
	return c
}

// runContainers runs init containers one after another, then the app
// containers, restarting what exited as the restart policy says. It
// returns when it next has something to do (a back-off ending).
func (m *Runtime) runContainers(ctx context.Context, pod *corev1.Pod, rec *dockerPod) time.Duration {
	next := time.Duration(0)
	soonest := func(d time.Duration) {
		if d > 0 && (next == 0 || d < next) {
			next = d
		}
	}
	for i := range pod.Spec.InitContainers {
		spec := &pod.Spec.InitContainers[i]
		c := m.container(rec, spec.Name, true)
		m.observe(ctx, pod, rec, c)
		sidecar := spec.RestartPolicy != nil && *spec.RestartPolicy == corev1.ContainerRestartPolicyAlways
		switch {
		case c.id == "" || (!c.state.Running && m.shouldRestart(pod, c, sidecar)):
			soonest(m.start(ctx, pod, rec, spec, c))
			if !sidecar {
				return next
			}
		case c.state.Running && sidecar:
			continue
		case c.state.Running:
			return next
		case c.state.ExitCode != 0:
			// Failed for good (restartPolicy Never): the pod fails.
			return next
		}
	}
	for i := range pod.Spec.Containers {
		spec := &pod.Spec.Containers[i]
		c := m.container(rec, spec.Name, false)
		m.observe(ctx, pod, rec, c)
		if m.resize(ctx, pod, spec, c) {
			m.observe(ctx, pod, rec, c)
		}
		if c.id == "" || (!c.state.Running && m.shouldRestart(pod, c, false)) {
			soonest(m.start(ctx, pod, rec, spec, c))
		}
	}
	// Ephemeral containers (kubectl debug) run once each, never again.
	for i := range pod.Spec.EphemeralContainers {
		ec := &pod.Spec.EphemeralContainers[i]
		spec := ephemeralSpec(ec)
		c := m.container(rec, spec.Name, false)
		m.mu.Lock()
		c.target = ec.TargetContainerName
		m.mu.Unlock()
		m.observe(ctx, pod, rec, c)
		if c.id == "" {
			soonest(m.start(ctx, pod, rec, spec, c))
		}
	}
	return next
}

// ephemeralSpec is an ephemeral container as the container it runs as
// (the two types have the same fields).
func ephemeralSpec(ec *corev1.EphemeralContainer) *corev1.Container {
	c := corev1.Container(ec.EphemeralContainerCommon)
	return &c
}

// shouldRestart says whether an exited container runs again.
func (m *Runtime) shouldRestart(pod *corev1.Pod, c *dockerContainer, always bool) bool {
	if always || c.restartRequested != "" {
		return true
	}
	switch pod.Spec.RestartPolicy {
	case corev1.RestartPolicyNever:
		return false
	case corev1.RestartPolicyOnFailure:
		return c.state.ExitCode != 0
	default:
		return !c.init || c.state.ExitCode != 0
	}
}

// observe refreshes a container's state from the engine and applies a
// probe's request to restart it.
func (m *Runtime) observe(ctx context.Context, pod *corev1.Pod, rec *dockerPod, c *dockerContainer) {
	if c.id == "" {
		return
	}
	if c.restartRequested != "" && c.state.Running {
		m.recorder.Eventf(pod, corev1.EventTypeNormal, "Killing", "Container %s %s, will be restarted", c.name, c.restartRequested)
		grace := time.Duration(ptr.Deref(pod.Spec.TerminationGracePeriodSeconds, 30)) * time.Second
		if spec := containerSpecOf(pod, c.name); spec != nil && spec.Lifecycle != nil && spec.Lifecycle.PreStop != nil {
			grace = m.runPreStop(ctx, pod, rec, spec, c.id, grace)
		}
		if err := m.engine.Stop(ctx, c.id, grace); err != nil {
			klog.ErrorS(err, "stop container for restart", "pod", klog.KObj(pod), "container", c.name)
		}
	}
	st, err := m.engine.Inspect(ctx, c.id)
	if errors.Is(err, engine.ErrNotFound) {
		// Removed behind our back: run it again.
		st = engine.State{Status: "exited", ExitCode: 137, Reason: "Error", FinishedAt: m.now()}
	} else if err != nil {
		return
	}
	var msg string
	readMessage := !st.Running && st.Status != "created" && c.messageOf != c.id
	if readMessage {
		msg = m.terminationMessage(ctx, pod, rec, c, st)
	}
	m.mu.Lock()
	if readMessage {
		c.message, c.messageOf = msg, c.id
	}
	wasRunning := c.state.Running
	c.state = st
	if !st.Running && c.probeCancel != nil {
		c.probeCancel()
		c.probeCancel = nil
		c.ready = false
	}
	m.mu.Unlock()
	if wasRunning && !st.Running && st.ExitCode != 0 && c.restartRequested == "" {
		klog.V(2).InfoS("container exited", "pod", klog.KObj(pod), "container", c.name, "exitCode", st.ExitCode)
	}
}

// start creates and starts a container run, unless it must wait for a
// back-off; it returns how long that wait is.
func (m *Runtime) start(ctx context.Context, pod *corev1.Pod, rec *dockerPod, spec *corev1.Container, c *dockerContainer) time.Duration {
	now := m.now()
	restart := c.id != ""
	if restart && c.restartRequested == "" {
		// A crash: back off, as the kubelet does, from the second on.
		if c.state.StartedAt.After(time.Time{}) && c.state.FinishedAt.Sub(c.state.StartedAt) > backOffReset {
			c.backOff = 0
		}
		if c.backOff > 0 && c.retryAt.IsZero() {
			c.retryAt = now.Add(c.backOff)
		}
		if now.Before(c.retryAt) {
			m.setWaiting(c, "CrashLoopBackOff", fmt.Sprintf("back-off %s restarting failed container=%s pod=%s_%s(%s)", c.backOff, c.name, pod.Name, pod.Namespace, pod.UID))
			return c.retryAt.Sub(now)
		}
	}
	if !c.retryAt.IsZero() && now.Before(c.retryAt) {
		return c.retryAt.Sub(now)
	}
	if _, ok, err := m.engine.ImagePresent(ctx, spec.Image); err != nil || !ok {
		if err == nil {
			err = m.engine.PullImage(ctx, spec.Image)
		}
		if err != nil {
			return m.pullFailed(pod, c, spec, err)
		}
	}
	if c.pullFailures > 0 || !restart {
		m.recorder.Eventf(pod, corev1.EventTypeNormal, "Pulled", "Container image %q already present on machine", spec.Image)
	}
	c.pullFailures = 0
	cs, err := m.containerSpec(ctx, pod, rec, spec, c)
	if err != nil {
		// What is wrong is in the pod or what it names (a missing
		// ConfigMap, an annotation): tried again on every change of the
		// pod, and every configRetry, without a back-off, as the kubelet.
		m.setWaiting(c, "CreateContainerConfigError", err.Error())
		m.recorder.Eventf(pod, corev1.EventTypeWarning, "Failed", "Error: %v", err)
		return configRetry
	}
	id, err := m.engine.CreateContainer(ctx, cs)
	if err != nil {
		m.setWaiting(c, "CreateContainerError", err.Error())
		m.recorder.Eventf(pod, corev1.EventTypeWarning, "Failed", "Error: %v", err)
		return m.retryLater(c)
	}
	m.recorder.Eventf(pod, corev1.EventTypeNormal, "Created", "Created container: %s", spec.Name)
	old := c.id
	m.mu.Lock()
	if restart {
		if c.state.Reason != "" || !c.state.FinishedAt.IsZero() {
			c.last = terminatedState(c)
		}
		c.attempt = cs.Attempt
	}
	c.previousID, c.id = old, id
	c.applied = spec.Resources.DeepCopy()
	c.state = engine.State{Status: "created"}
	c.restartRequested = ""
	c.started, c.ready = false, false
	m.mu.Unlock()
	if err := m.engine.Start(ctx, id); err != nil {
		m.recorder.Eventf(pod, corev1.EventTypeWarning, "Failed", "Error: %v", err)
		// The run ended before it began, as the kubelet reports it (exit
		// code 128, StartError): a container that will run again waits
		// in RunContainerError, then backs off; one that will not (a
		// Never pod's) has ended, and its pod fails.
		st := engine.State{Status: "exited", ExitCode: 128, Reason: engine.StartError, Error: err.Error()}
		if got, ierr := m.engine.Inspect(ctx, id); ierr == nil && got.Reason == engine.StartError {
			st = got
		}
		sidecar := c.init && spec.RestartPolicy != nil && *spec.RestartPolicy == corev1.ContainerRestartPolicyAlways
		m.mu.Lock()
		c.state, c.messageOf = st, id
		m.mu.Unlock()
		if m.shouldRestart(pod, c, sidecar) {
			m.setWaiting(c, "RunContainerError", err.Error())
		} else {
			m.setWaiting(c, "", "")
		}
		return m.retryLater(c)
	}
	m.recorder.Eventf(pod, corev1.EventTypeNormal, "Started", "Started container %s", spec.Name)
	m.copyLogs(rec, pod, spec, cs.Attempt, id)
	m.postStart(ctx, pod, rec, spec, id)
	if st, err := m.engine.Inspect(ctx, id); err == nil {
		// A run may be over already: its message is read now, as
		// the pod may finish with this status.
		var msg string
		exited := !st.Running && st.Status != "created"
		if exited {
			msg = m.terminationMessage(ctx, pod, rec, c, st)
		}
		m.mu.Lock()
		c.state = st
		if exited {
			c.message, c.messageOf = msg, id
		}
		m.mu.Unlock()
	}
	// Two runs back is no longer anyone's "previous"; a first run has
	// nothing older, and need not list the engine's containers.
	if restart {
		m.removeOlder(ctx, pod, c)
	}
	m.mu.Lock()
	c.waitingReason, c.waitingMessage = "", ""
	c.retryAt = time.Time{}
	if restart {
		c.backOff = min(max(c.backOff*2, backOffInitial), backOffMax)
	} else {
		c.backOff = 0
	}
	m.mu.Unlock()
	m.startProbes(rec, pod, spec, c)
	return 0
}

// removeOlder removes runs of a container older than the previous one.
func (m *Runtime) removeOlder(ctx context.Context, pod *corev1.Pod, c *dockerContainer) {
	list, err := m.engine.List(ctx)
	if err != nil {
		return
	}
	for _, pc := range list {
		if pc.PodUID == string(pod.UID) && pc.Container == c.name && pc.ID != c.id && pc.ID != c.previousID {
			_ = m.engine.Remove(ctx, pc.ID)
			if m.logs != nil {
				_ = m.logs.RemoveRun(podlogs.Run{Namespace: pod.Namespace, Pod: pod.Name, UID: string(pod.UID),
					Container: c.name, Restart: pc.Attempt, ID: pc.ID})
			}
		}
	}
}

func (m *Runtime) retryLater(c *dockerContainer) time.Duration {
	m.mu.Lock()
	defer m.mu.Unlock()
	c.backOff = min(max(c.backOff*2, backOffInitial), backOffMax)
	c.retryAt = m.now().Add(c.backOff)
	return c.backOff
}

// pullFailed reports a missing image as the kubelet does: ErrImagePull
// first, then ImagePullBackOff between retries.
func (m *Runtime) pullFailed(pod *corev1.Pod, c *dockerContainer, spec *corev1.Container, err error) time.Duration {
	c.pullFailures++
	reason := "ErrImagePull"
	if c.pullFailures > 1 {
		reason = "ImagePullBackOff"
		m.recorder.Eventf(pod, corev1.EventTypeNormal, "BackOff", "Back-off pulling image %q", spec.Image)
	}
	m.recorder.Eventf(pod, corev1.EventTypeWarning, "Failed", "Failed to pull image %q: %v", spec.Image, err)
	m.setWaiting(c, reason, fmt.Sprintf("Failed to pull image %q: %v", spec.Image, err))
	m.mu.Lock()
	defer m.mu.Unlock()
	c.retryAt = m.now().Add(min(backOffInitial<<min(c.pullFailures-1, 5), backOffMax))
	return c.retryAt.Sub(m.now())
}

func (m *Runtime) setWaiting(c *dockerContainer, reason, msg string) {
	m.mu.Lock()
	c.waitingReason, c.waitingMessage = reason, msg
	m.mu.Unlock()
}

func terminatedState(c *dockerContainer) *corev1.ContainerStateTerminated {
	id, st := c.id, c.state
	msg := st.Error
	if c.messageOf == id && c.message != "" {
		msg = c.message
	}
	reason := st.Reason
	if reason == "" {
		reason = "Error"
		if st.ExitCode == 0 {
			reason = "Completed"
		}
	}
	return &corev1.ContainerStateTerminated{
		ExitCode:    int32(st.ExitCode),
		Reason:      reason,
		Message:     msg,
		StartedAt:   metav1.NewTime(st.StartedAt),
		FinishedAt:  metav1.NewTime(st.FinishedAt),
		ContainerID: "docker://" + id,
	}
}

// podHosts puts into the pod's /etc/hosts what the kubelet's has: its
// HOSTNAME.SUBDOMAIN.NS.svc.DOMAIN name when it has a subdomain, and its
// hostAliases.
func (m *Runtime) podHosts(pod *corev1.Pod, spec *engine.SandboxSpec) {
	if svc := m.cfg.Services(); pod.Spec.Subdomain != "" && !pod.Spec.HostNetwork && svc != nil && svc.DNSDomain != "" {
		spec.Domainname = pod.Spec.Subdomain + "." + pod.Namespace + ".svc." + svc.DNSDomain
	}
	// One line per alias, its names separated by tabs, as the kubelet
	// writes them (the engine writes "IP<tab>NAME" for each entry).
	for _, a := range pod.Spec.HostAliases {
		if len(a.Hostnames) > 0 {
			spec.ExtraHosts = append(spec.ExtraHosts, strings.Join(a.Hostnames, "\t")+":"+a.IP)
		}
	}
}

// podDNS sets a pod's resolver as its dnsPolicy asks: the cluster DNS
// (ClusterFirst, the default), the engine's (Default), or only the pod's
// dnsConfig (None).
func (m *Runtime) podDNS(pod *corev1.Pod, spec *engine.SandboxSpec) {
	d := m.cfg.Services()
	if d == nil {
		d = &nodeconfig.ServiceNetwork{}
	}
	policy := pod.Spec.DNSPolicy
	if pod.Spec.HostNetwork && policy == corev1.DNSClusterFirst {
		policy = corev1.DNSDefault
	}
	if (policy == "" || policy == corev1.DNSClusterFirst || policy == corev1.DNSClusterFirstWithHostNet) && d.ServiceCIDR != "" {
		if ip, err := nodeconfig.ClusterDNSIP(d.ServiceCIDR); err == nil {
			domain := d.DNSDomain
			spec.DNS = []string{ip.String()}
			spec.DNSSearch = []string{pod.Namespace + ".svc." + domain, "svc." + domain, domain}
			spec.DNSOptions = []string{"ndots:5"}
		}
	}
	if c := pod.Spec.DNSConfig; c != nil {
		if policy == corev1.DNSNone {
			spec.DNS, spec.DNSSearch, spec.DNSOptions = nil, nil, nil
		}
		spec.DNS = append(spec.DNS, c.Nameservers...)
		spec.DNSSearch = append(spec.DNSSearch, c.Searches...)
		for _, o := range c.Options {
			if o.Value != nil {
				spec.DNSOptions = append(spec.DNSOptions, o.Name+":"+*o.Value)
			} else {
				spec.DNSOptions = append(spec.DNSOptions, o.Name)
			}
		}
	}
}

// hasDNS says whether the pod's sandbox was given DNS servers, search
// domains or options, whose resolv.conf the engine then wrote.
func (m *Runtime) hasDNS(pod *corev1.Pod) bool {
	var spec engine.SandboxSpec
	m.podDNS(pod, &spec)
	return engine.ResolvConf(spec) != nil
}

// podHostname is the pod's hostname as the kubelet sets it.
func podHostname(pod *corev1.Pod) string {
	h := pod.Name
	if pod.Spec.Hostname != "" {
		h = pod.Spec.Hostname
	}
	if len(h) > 63 {
		h = h[:63]
	}
	return h
}

// podStatus computes the pod's status from its containers.
func (m *Runtime) podStatus(pod *corev1.Pod, rec *dockerPod) corev1.PodStatus {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := metav1.NewTime(m.now().Truncate(time.Second))
	st := corev1.PodStatus{
		HostIP:    m.cfg.IP,
		HostIPs:   []corev1.HostIP{{IP: m.cfg.IP}},
		StartTime: pod.Status.StartTime,
		QOSClass:  pod.Status.QOSClass,
	}
	if st.StartTime == nil {
		st.StartTime = &now
	}
	if st.QOSClass == "" {
		st.QOSClass = qos.GetPodQOS(pod)
	}
	if rec.ip != "" {
		st.PodIP = rec.ip
		st.PodIPs = []corev1.PodIP{{IP: rec.ip}}
	}
	initDone := true
	initFailed := false
	// The containers each condition waits for, named in its message as
	// the kubelet names them.
	var incomplete, unready []string
	for i := range pod.Spec.InitContainers {
		spec := &pod.Spec.InitContainers[i]
		cs := m.containerStatus(spec, rec.containers[spec.Name], "PodInitializing")
		sidecar := spec.RestartPolicy != nil && *spec.RestartPolicy == corev1.ContainerRestartPolicyAlways
		switch {
		case sidecar && cs.State.Running != nil:
		case cs.State.Terminated != nil && cs.State.Terminated.ExitCode == 0:
		default:
			initDone = false
			incomplete = append(incomplete, spec.Name)
			if t := cs.State.Terminated; t != nil && pod.Spec.RestartPolicy == corev1.RestartPolicyNever {
				initFailed = true
			}
		}
		st.InitContainerStatuses = append(st.InitContainerStatuses, cs)
	}
	running, succeeded, failed, ready := 0, 0, 0, 0
	waitReason := "ContainerCreating"
	if !initDone {
		waitReason = "PodInitializing"
	}
	for i := range pod.Spec.Containers {
		spec := &pod.Spec.Containers[i]
		cs := m.containerStatus(spec, rec.containers[spec.Name], waitReason)
		switch {
		case cs.State.Running != nil:
			running++
		case cs.State.Terminated != nil && cs.State.Terminated.ExitCode == 0:
			succeeded++
		case cs.State.Terminated != nil:
			failed++
		case cs.LastTerminationState.Terminated != nil:
			// Waiting to restart: it counts as running for the phase.
			running++
		}
		if cs.Ready {
			ready++
		} else {
			unready = append(unready, spec.Name)
		}
		st.ContainerStatuses = append(st.ContainerStatuses, cs)
	}
	for i := range pod.Spec.EphemeralContainers {
		spec := ephemeralSpec(&pod.Spec.EphemeralContainers[i])
		cs := m.containerStatus(spec, rec.containers[spec.Name], "ContainerCreating")
		st.EphemeralContainerStatuses = append(st.EphemeralContainerStatuses, cs)
	}
	n := len(pod.Spec.Containers)
	switch {
	case initFailed:
		st.Phase = corev1.PodFailed
	case !initDone || rec.sandboxID == "":
		st.Phase = corev1.PodPending
	case running > 0:
		st.Phase = corev1.PodRunning
	case succeeded+failed == n && failed == 0:
		st.Phase = corev1.PodSucceeded
	case succeeded+failed == n:
		st.Phase = corev1.PodFailed
	default:
		st.Phase = corev1.PodPending
	}
	cond := func(t corev1.PodConditionType, ok bool, reason, message string) corev1.PodCondition {
		c := corev1.PodCondition{Type: t, Status: corev1.ConditionFalse, LastTransitionTime: now}
		if ok {
			c.Status = corev1.ConditionTrue
		} else {
			c.Reason, c.Message = reason, message
		}
		return c
	}
	allReady := ready == n && st.Phase == corev1.PodRunning
	if st.Phase == corev1.PodSucceeded || st.Phase == corev1.PodFailed {
		allReady = false
	}
	reason, message := "ContainersNotReady", ""
	if len(unready) > 0 {
		message = fmt.Sprintf("containers with unready status: [%s]", strings.Join(unready, " "))
	}
	if st.Phase == corev1.PodSucceeded {
		reason, message = "PodCompleted", ""
	}
	initMessage := ""
	if len(incomplete) > 0 {
		initMessage = fmt.Sprintf("containers with incomplete status: [%s]", strings.Join(incomplete, " "))
	}
	st.Conditions = []corev1.PodCondition{
		cond(corev1.PodReadyToStartContainers, rec.sandboxID != "", "", ""),
		cond(corev1.PodInitialized, initDone, "ContainersNotInitialized", initMessage),
		cond(corev1.ContainersReady, allReady, reason, message),
		cond(corev1.PodReady, allReady, reason, message),
	}
	return st
}

// containerStatus is one container's status; called with m.mu held.
func (m *Runtime) containerStatus(spec *corev1.Container, c *dockerContainer, waitReason string) corev1.ContainerStatus {
	cs := corev1.ContainerStatus{Name: spec.Name, Image: spec.Image, Started: ptr.To(false)}
	if c == nil {
		cs.State.Waiting = &corev1.ContainerStateWaiting{Reason: waitReason}
		return cs
	}
	cs.RestartCount = int32(c.attempt)
	cs.LastTerminationState.Terminated = c.last
	if c.id != "" {
		cs.ContainerID = "docker://" + c.id
		cs.ImageID = "docker://" + c.state.ImageID
	}
	if c.applied != nil {
		// The kubelet accepts every resize at once: what is allocated
		// is what the spec asks, what the run has is what was applied.
		cs.Resources = c.applied.DeepCopy()
		cs.AllocatedResources = spec.Resources.Requests.DeepCopy()
	}
	switch {
	case c.waitingReason != "":
		cs.State.Waiting = &corev1.ContainerStateWaiting{Reason: c.waitingReason, Message: c.waitingMessage}
		// A run that could not start has no end time, but ended.
		if c.id != "" && !c.state.Running && (!c.state.FinishedAt.IsZero() || c.state.Reason == engine.StartError) {
			cs.LastTerminationState.Terminated = terminatedState(c)
		}
	case c.id == "":
		cs.State.Waiting = &corev1.ContainerStateWaiting{Reason: waitReason}
	case c.init && c.state.Status != "created" && !c.state.Running && c.state.ExitCode == 0:
		// An init container that completed is ready, as the kubelet
		// reports it.
		cs.State.Terminated = terminatedState(c)
		cs.Ready = true
	case c.state.Running:
		cs.State.Running = &corev1.ContainerStateRunning{StartedAt: metav1.NewTime(c.state.StartedAt)}
		started := c.started || spec.StartupProbe == nil
		cs.Started = ptr.To(started)
		cs.Ready = started && (c.ready || spec.ReadinessProbe == nil)
	case c.state.Status == "created":
		cs.State.Waiting = &corev1.ContainerStateWaiting{Reason: waitReason}
	default:
		cs.State.Terminated = terminatedState(c)
	}
	if cs.ImageID == "docker://" {
		cs.ImageID = ""
	}
	return cs
}

func (m *Runtime) find(namespace, name string) *dockerPod {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, rec := range m.pods {
		if rec.pod != nil && rec.pod.Namespace == namespace && rec.pod.Name == name {
			return rec
		}
	}
	return nil
}
