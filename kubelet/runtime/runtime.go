// Package runtime is the node agent's one seam to what runs pods: the
// Runtime interface, shaped like the real kubelet's (level-triggered: sync a
// pod to its spec, kill it, forget it), and the optional Streaming
// capability. The runtimes themselves are its sub-packages (sim, docker);
// the agent is the only place that chooses one, and the pod worker and the
// kubelet API see only this interface.
package runtime

import (
	"context"
	"errors"
	"io"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/cri-streaming/pkg/streaming/portforward"
	"k8s.io/cri-streaming/pkg/streaming/remotecommand"
)

// Runtime runs the containers of the pods bound to one node. The pod
// worker calls SyncPod, KillPod and ForgetPod for one pod at a time (never
// two calls for the same pod at once); everything else may be called
// concurrently. Runtimes record their own kubelet events (Pulled, Created,
// Started, Killing, BackOff, ...) when they act on or observe a container.
type Runtime interface {
	// Name is the runtime's short name in messages: "sim", "docker".
	Name() string
	// Version is what the Node reports as its container runtime, such as
	// "docker://28.2.2".
	Version(ctx context.Context) (string, error)
	// Prepare readies the runtime before the first sync: pods are those
	// bound to the node now (some may have run before this agent started),
	// and wake asks the worker to sync a pod again soon, by its
	// "namespace/name" key, when something the runtime watches changes.
	Prepare(ctx context.Context, pods []*corev1.Pod, wake func(key string)) error
	// Run does the runtime's background work (engine events, stats,
	// clean-up) until ctx is done.
	Run(ctx context.Context)
	// SyncPod brings the pod's containers to what its spec asks and
	// returns its status. A pod that has finished (Succeeded or Failed)
	// keeps its stopped containers for their logs.
	SyncPod(ctx context.Context, pod *corev1.Pod) (Result, error)
	// KillPod stops the containers of a pod being deleted, within its
	// grace period, and removes them. While they stop, the Result has a
	// status to write and says when to look again; once they have
	// stopped, its Status is nil and the pod object may go.
	KillPod(ctx context.Context, pod *corev1.Pod) (Result, error)
	// ForgetPod removes whatever is left of a pod that is gone from the API.
	ForgetPod(ctx context.Context, uid types.UID) error
	// Usage is the use of every running container at now.
	Usage(now time.Time) []ContainerUsage
	// NodeUsage is the node's own use besides its pods', when the runtime
	// measures it (ok false: the agent uses a fixed estimate).
	NodeUsage() (nanoCores, memory uint64, ok bool)
	// Logs writes one container's log to w as o asks. An error before
	// anything was written is the caller's to report.
	Logs(ctx context.Context, pod *corev1.Pod, container string, o LogOptions, w io.Writer) error
}

// Result is what a sync or kill found.
type Result struct {
	// Status is the pod's status as the runtime sees it now; nil when
	// there is nothing to report.
	Status *corev1.PodStatus
	// Requeue is when to sync the pod again even if nothing changes; 0
	// waits for a change (or for the runtime's wake).
	Requeue time.Duration
}

// Streaming is the optional capability of runtimes whose containers are
// real processes: exec, attach and port-forward through the upstream
// streaming server. Pod names are passed as "namespace/name".
type Streaming interface {
	remotecommand.Executor
	remotecommand.Attacher
	portforward.PortForwarder
}

// LogOptions are the kubelet's /containerLogs parameters.
type LogOptions struct {
	Follow, Previous, Timestamps bool
	// Tail is how many lines to keep from the end; -1 for all.
	Tail int64
	// Since drops lines older than it, unless zero.
	Since time.Time
}

// ContainerUsage is one running container's use at one instant.
type ContainerUsage struct {
	Namespace, Pod, Container string
	CPUNanoCores              uint64
	// CPUUsageCoreNanoSeconds is cumulative and never goes back within a run.
	CPUUsageCoreNanoSeconds uint64
	MemoryWorkingSetBytes   uint64
	StartTime               time.Time
	// ID and Image name the container as cAdvisor labels it; what a
	// runtime does not know stays zero and is left out of /metrics/cadvisor.
	ID, Image        string
	MemoryUsageBytes uint64
	MemoryRSSBytes   uint64
	// FSReadBytes and FSWriteBytes are the container's block I/O.
	FSReadBytes, FSWriteBytes uint64
}

// NetworkStats is implemented by runtimes whose pods have real networks.
type NetworkStats interface {
	PodNetworks() []PodNetworkUsage
}

// PodNetworkUsage is one pod's network counters (its sandbox's interface).
type PodNetworkUsage struct {
	Namespace, Pod, SandboxID, Interface    string
	RxBytes, RxPackets, RxErrors, RxDropped uint64
	TxBytes, TxPackets, TxErrors, TxDropped uint64
}

// ImageLoader is implemented by runtimes whose node keeps its own images:
// LoadImage takes the images of a docker-save archive and returns their
// names.
type ImageLoader interface {
	LoadImage(ctx context.Context, r io.Reader) ([]string, error)
}

// ClaimVolumeRemover is implemented by runtimes whose node keeps claims'
// volumes on its own disk: RemoveClaimVolume deletes one and its data
// (one that is gone already is no error).
type ClaimVolumeRemover interface {
	RemoveClaimVolume(ctx context.Context, name string) error
}

// ErrNotSupported is wrapped by errors for what a runtime cannot do.
var ErrNotSupported = errors.New("not supported")

// ProbeKey names one series of the kubelet's prober_probe_total: a
// probe of a container and one of its results.
type ProbeKey struct {
	Namespace, Pod, PodUID, Container string
	// ProbeType is Liveness, Readiness or Startup.
	ProbeType string
	// Result is successful or failed.
	Result string
}

// Prober is implemented by runtimes that run probes: how many times each
// probe of a pod they run has had each result (a forgotten pod's go).
type Prober interface {
	ProbeCounts() map[ProbeKey]uint64
}
