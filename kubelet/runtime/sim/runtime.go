package sim

import (
	"context"
	"slices"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/record"
	"k8s.io/kubernetes/pkg/apis/core/v1/helper/qos"

	"minik.dev/minik/kubelet/runtime"
)

// Runtime is the sim runtime: it runs no process, and reports for each pod
// the status its timeline gives at the current instant.
type Runtime struct {
	version string
	nodeIP  string
	podCIDR func(context.Context) (string, error)
	// ipam is made by Prepare, once the node has a podCIDR.
	ipam     *ipam
	recorder record.EventRecorder
	now      func() time.Time
	// volumes, when set, holds back the containers of a pod whose
	// volumes could not be set up.
	volumes Volumes

	mu   sync.Mutex
	pods map[types.UID]*simPod
}

// Volumes says whether a pod's volumes can be set up: the sources that
// the cluster issues (projected.Sources checks them). A simulated pod
// writes no files, but a source that a kubelet could not mount keeps
// its containers from starting here too.
type Volumes interface {
	Ready(ctx context.Context, pod *corev1.Pod) error
	// ForgetPod drops what was issued for a pod that is gone.
	ForgetPod(ctx context.Context, uid types.UID)
}

// Retries of a pod's volume set-up back off from mountRetry to
// maxMountRetry, as the kubelet's volume manager does.
const (
	mountRetry    = time.Second
	maxMountRetry = time.Minute
)

var _ runtime.Runtime = (*Runtime)(nil)

// simPod is what the runtime remembers of one pod.
type simPod struct {
	pod  *corev1.Pod
	plan Plan
	// status is the last status reported: events come from its changes,
	// logs and usage from what it says runs.
	status corev1.PodStatus
	// usageKey is the usage annotations the plan's CPU and memory come from.
	usageKey [2]string
	// counters integrate each running container's CPU use, by name.
	counters map[string]*cpuCounter
	// mounted is set once the pod's volumes were set up; mountRetry is
	// the wait before the next try until then.
	mounted    bool
	mountRetry time.Duration
}

// New returns a sim runtime for a node at nodeIP whose pods take their
// addresses from the node's podCIDR, which Prepare waits for with podCIDR;
// kubeletVersion goes into the runtime's version.
func New(nodeIP, kubeletVersion string, podCIDR func(context.Context) (string, error), recorder record.EventRecorder, volumes Volumes) *Runtime {
	return &Runtime{
		version: "sim://" + kubeletVersion, nodeIP: nodeIP, podCIDR: podCIDR, recorder: recorder,
		volumes: volumes, now: time.Now, pods: map[types.UID]*simPod{},
	}
}

// Name implements runtime.Runtime.
func (r *Runtime) Name() string { return "sim" }

// Version implements runtime.Runtime.
func (r *Runtime) Version(context.Context) (string, error) { return r.version, nil }

// Prepare implements runtime.Runtime: it waits for the node's podCIDR,
// and IPs already given out survive an agent restart.
func (r *Runtime) Prepare(ctx context.Context, pods []*corev1.Pod, _ func(string)) error {
	cidr, err := r.podCIDR(ctx)
	if err != nil {
		return err
	}
	if r.ipam, err = newIPAM(cidr); err != nil {
		return err
	}
	for _, p := range pods {
		if p.Status.PodIP != "" && !p.Spec.HostNetwork {
			r.ipam.Reserve(string(p.UID), p.Status.PodIP)
		}
	}
	return nil
}

// Run implements runtime.Runtime: the sim runtime has no background work.
func (r *Runtime) Run(ctx context.Context) { <-ctx.Done() }

// SyncPod implements runtime.Runtime.
func (r *Runtime) SyncPod(ctx context.Context, pod *corev1.Pod) (runtime.Result, error) {
	rec := r.record(pod)
	if pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
		r.ipam.Release(string(pod.UID))
		return runtime.Result{}, nil
	}
	now := r.now()
	// The API keeps StartTime to the second: anchor the timeline there so it
	// does not shift after the first write.
	start := now.Truncate(time.Second)
	if pod.Status.StartTime != nil {
		start = pod.Status.StartTime.Time
	}
	if !rec.mounted {
		if wait, unmounted := r.mount(ctx, pod, rec); unmounted {
			// The pod as it is before its sandbox: no IP, containers
			// being created.
			status, _ := Status(pod, rec.plan, start, start)
			status.HostIP, status.HostIPs = r.nodeIP, []corev1.HostIP{{IP: r.nodeIP}}
			status.QOSClass = qos.GetPodQOS(pod)
			r.report(pod, rec, status)
			return runtime.Result{Status: &status, Requeue: wait}, nil
		}
	}
	if name, err := ConfigError(pod); err != nil {
		return r.configFailed(pod, rec, start, name, err)
	}
	status, next := Status(pod, rec.plan, start, now)
	if err := r.setAddresses(pod, &status); err != nil {
		r.recorder.Event(pod, corev1.EventTypeWarning, "FailedCreatePodSandBox", err.Error())
		return runtime.Result{}, err
	}
	r.report(pod, rec, status)
	if status.Phase == corev1.PodSucceeded || status.Phase == corev1.PodFailed {
		r.ipam.Release(string(pod.UID))
	}
	return runtime.Result{Status: &status, Requeue: until(next, now)}, nil
}

// configFailed reports a pod whose container named name cannot be made:
// the pod stays Pending with that container waiting, as the kubelet keeps
// it, and a Failed event says why (once, not at every sync).
func (r *Runtime) configFailed(pod *corev1.Pod, rec *simPod, start time.Time, name string, cause error) (runtime.Result, error) {
	status, _ := Status(pod, rec.plan, start, start)
	if err := r.setAddresses(pod, &status); err != nil {
		r.recorder.Event(pod, corev1.EventTypeWarning, "FailedCreatePodSandBox", err.Error())
		return runtime.Result{}, err
	}
	waiting := &corev1.ContainerStateWaiting{Reason: ReasonConfigError, Message: cause.Error()}
	for _, list := range [][]corev1.ContainerStatus{status.InitContainerStatuses, status.ContainerStatuses} {
		for i := range list {
			if list[i].Name == name {
				list[i].State = corev1.ContainerState{Waiting: waiting}
			}
		}
	}
	r.mu.Lock()
	reported := slices.ContainsFunc(append(slices.Clone(rec.status.InitContainerStatuses), rec.status.ContainerStatuses...), func(cs corev1.ContainerStatus) bool {
		return cs.Name == name && cs.State.Waiting != nil && *cs.State.Waiting == *waiting
	})
	r.mu.Unlock()
	if !reported {
		r.recorder.Eventf(pod, corev1.EventTypeWarning, "Failed", "Error: %v", cause)
	}
	r.report(pod, rec, status)
	return runtime.Result{Status: &status}, nil
}

// mount sets up the pod's volumes: unmounted is true, with when to try
// again, while they cannot be, and the kubelet's FailedMount event says
// why.
func (r *Runtime) mount(ctx context.Context, pod *corev1.Pod, rec *simPod) (wait time.Duration, unmounted bool) {
	var err error
	if r.volumes != nil {
		err = r.volumes.Ready(ctx, pod)
	}
	if err != nil {
		r.recorder.Eventf(pod, corev1.EventTypeWarning, "FailedMount", "MountVolume.SetUp failed: %v", err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if err == nil {
		rec.mounted = true
		return 0, false
	}
	wait = max(rec.mountRetry, mountRetry)
	rec.mountRetry = min(wait*2, maxMountRetry)
	return wait, true
}

// KillPod implements runtime.Runtime: containers stop within the grace
// period, after the plan's stop delay.
func (r *Runtime) KillPod(_ context.Context, pod *corev1.Pod) (runtime.Result, error) {
	rec := r.record(pod)
	now := r.now()
	requested := pod.DeletionTimestamp.Time
	if g := pod.DeletionGracePeriodSeconds; g != nil {
		requested = requested.Add(-time.Duration(*g) * time.Second)
	}
	status, done := Terminating(pod, rec.plan, pod.Status, requested, now)
	r.report(pod, rec, status)
	if now.Before(done) {
		return runtime.Result{Status: &status, Requeue: until(done, now)}, nil
	}
	r.ipam.Release(string(pod.UID))
	return runtime.Result{}, nil
}

// until is how long from now to next, at least a millisecond; 0 when next
// is zero (nothing will change by itself).
func until(next, now time.Time) time.Duration {
	if next.IsZero() {
		return 0
	}
	return max(next.Sub(now), time.Millisecond)
}

// ForgetPod implements runtime.Runtime.
func (r *Runtime) ForgetPod(ctx context.Context, uid types.UID) error {
	if r.volumes != nil {
		r.volumes.ForgetPod(ctx, uid)
	}
	r.mu.Lock()
	delete(r.pods, uid)
	r.mu.Unlock()
	if r.ipam != nil {
		r.ipam.Release(string(uid))
	}
	return nil
}

// NodeUsage implements runtime.Runtime: a simulated node has no usage of
// its own to measure.
func (r *Runtime) NodeUsage() (nanoCores, memory uint64, ok bool) { return 0, 0, false }

// record returns the pod's record, making it on first sight; a pod seen
// again has its live usage annotations applied.
func (r *Runtime) record(pod *corev1.Pod) *simPod {
	r.mu.Lock()
	defer r.mu.Unlock()
	rec, ok := r.pods[pod.UID]
	if !ok {
		plan, errs := ParsePlan(pod)
		rec = &simPod{plan: plan, usageKey: usageKey(pod), status: pod.Status}
		r.pods[pod.UID] = rec
		for _, err := range errs {
			r.recorder.Event(pod, corev1.EventTypeWarning, "InvalidAnnotation", err.Error())
		}
	} else {
		r.updateUsage(rec, pod, r.now())
	}
	rec.pod = pod
	return rec
}

// report remembers the status the runtime now reports for a pod, and
// records the kubelet events of what changed since the last report.
func (r *Runtime) report(pod *corev1.Pod, rec *simPod, status corev1.PodStatus) {
	r.mu.Lock()
	prev := rec.status
	rec.status = status
	r.mu.Unlock()
	for _, ev := range Events(pod, &prev, &status) {
		r.recorder.Event(pod, ev.Type, ev.Reason, ev.Message)
	}
}

func (r *Runtime) setAddresses(pod *corev1.Pod, st *corev1.PodStatus) error {
	st.HostIP = r.nodeIP
	st.HostIPs = []corev1.HostIP{{IP: r.nodeIP}}
	ip := r.nodeIP
	if !pod.Spec.HostNetwork {
		var err error
		if ip, err = r.ipam.Allocate(string(pod.UID)); err != nil {
			return err
		}
	}
	st.PodIP = ip
	st.PodIPs = []corev1.PodIP{{IP: ip}}
	st.QOSClass = pod.Status.QOSClass
	if st.QOSClass == "" {
		st.QOSClass = qos.GetPodQOS(pod)
	}
	return nil
}

// view returns a copy of what the runtime knows of a pod.
func (r *Runtime) view(uid types.UID) (pod *corev1.Pod, plan Plan, status corev1.PodStatus, ok bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	rec, ok := r.pods[uid]
	if !ok {
		return nil, Plan{}, corev1.PodStatus{}, false
	}
	return rec.pod, rec.plan, rec.status, true
}
