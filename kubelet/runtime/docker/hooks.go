package docker

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/klog/v2"
	"k8s.io/utils/ptr"

	"minik.dev/minik/kubelet/engine"
)

// runHook runs a container's postStart or preStop handler as the kubelet
// does: a command in the container, an HTTP GET (to the pod IP unless the
// handler names a host) or a sleep. A tcpSocket handler is deprecated and,
// as in the kubelet, does nothing.
func (m *Runtime) runHook(ctx context.Context, spec *corev1.Container, id, ip string, h *corev1.LifecycleHandler) error {
	switch {
	case h.Sleep != nil:
		t := time.NewTimer(time.Duration(h.Sleep.Seconds) * time.Second)
		defer t.Stop()
		select {
		case <-ctx.Done():
		case <-t.C:
		}
		return nil
	case h.Exec != nil || h.HTTPGet != nil:
		p := &corev1.Probe{ProbeHandler: corev1.ProbeHandler{Exec: h.Exec, HTTPGet: h.HTTPGet}}
		timeout := time.Minute
		if dl, ok := ctx.Deadline(); ok {
			timeout = time.Until(dl)
		}
		return m.probeOnce(ctx, spec, id, ip, p, timeout)
	case h.TCPSocket != nil:
		return nil
	}
	return errors.New("lifecycle hook has no handler")
}

// postStart runs a container's postStart hook right after it started; a
// hook that fails kills the container, which then restarts as the pod's
// restart policy says.
func (m *Runtime) postStart(ctx context.Context, pod *corev1.Pod, rec *dockerPod, spec *corev1.Container, id string) {
	if spec.Lifecycle == nil || spec.Lifecycle.PostStart == nil {
		return
	}
	m.mu.Lock()
	ip := rec.ip
	m.mu.Unlock()
	err := m.runHook(ctx, spec, id, ip, spec.Lifecycle.PostStart)
	if err == nil {
		return
	}
	m.recorder.Eventf(pod, corev1.EventTypeWarning, "FailedPostStartHook", "PostStart hook failed: %v", err)
	klog.V(2).InfoS("postStart hook failed", "pod", klog.KObj(pod), "container", spec.Name, "err", err)
	grace := time.Duration(ptr.Deref(pod.Spec.TerminationGracePeriodSeconds, 30)) * time.Second
	if err := m.engine.Stop(ctx, id, grace); err != nil && !errors.Is(err, engine.ErrNotFound) {
		klog.ErrorS(err, "stop container after its postStart hook failed", "pod", klog.KObj(pod), "container", spec.Name)
	}
}

// preStop runs the preStop hooks of the pod's running containers, all at
// once, within the grace period; it returns the grace that is left for
// stopping them.
func (m *Runtime) preStop(ctx context.Context, pod *corev1.Pod, rec *dockerPod, grace time.Duration) time.Duration {
	start := m.now()
	specs := map[string]*corev1.Container{}
	for i := range pod.Spec.Containers {
		specs[pod.Spec.Containers[i].Name] = &pod.Spec.Containers[i]
	}
	for i := range pod.Spec.InitContainers {
		specs[pod.Spec.InitContainers[i].Name] = &pod.Spec.InitContainers[i]
	}
	m.mu.Lock()
	ip := rec.ip
	m.mu.Unlock()
	hctx, cancel := context.WithTimeout(ctx, grace)
	defer cancel()
	var wg sync.WaitGroup
	for _, c := range m.containerList(rec) {
		spec := specs[c.name]
		if spec == nil || c.id == "" || !c.state.Running || spec.Lifecycle == nil || spec.Lifecycle.PreStop == nil {
			continue
		}
		wg.Add(1)
		go func(id string) {
			defer wg.Done()
			m.hookPreStop(hctx, pod, spec, id, ip)
		}(c.id)
	}
	wg.Wait()
	return graceLeft(grace, m.now().Sub(start))
}

// runPreStop runs one container's preStop hook before it is stopped to
// restart (a failed liveness probe, a resize), within grace, and returns
// the grace that is left.
func (m *Runtime) runPreStop(ctx context.Context, pod *corev1.Pod, rec *dockerPod, spec *corev1.Container, id string, grace time.Duration) time.Duration {
	start := m.now()
	m.mu.Lock()
	ip := rec.ip
	m.mu.Unlock()
	hctx, cancel := context.WithTimeout(ctx, grace)
	defer cancel()
	m.hookPreStop(hctx, pod, spec, id, ip)
	return graceLeft(grace, m.now().Sub(start))
}

func (m *Runtime) hookPreStop(ctx context.Context, pod *corev1.Pod, spec *corev1.Container, id, ip string) {
	if err := m.runHook(ctx, spec, id, ip, spec.Lifecycle.PreStop); err != nil {
		m.recorder.Eventf(pod, corev1.EventTypeWarning, "FailedPreStopHook", "PreStop hook failed: %v", err)
	}
}

// graceLeft is what is left of a grace period after its hooks ran; the
// kubelet leaves at least two seconds for the stop itself.
func graceLeft(grace, used time.Duration) time.Duration {
	return max(grace-used, 2*time.Second)
}

// Termination messages from the log, as the kubelet takes them for
// FallbackToLogsOnError: the last lines, up to a size.
const (
	fallbackLogLines = 80
	fallbackLogBytes = 2048
)

// terminationMessage is the message of a container run that exited: its
// termination-message file, or for FallbackToLogsOnError and a failure
// with an empty file, the end of its log.
func (m *Runtime) terminationMessage(ctx context.Context, pod *corev1.Pod, rec *dockerPod, c *dockerContainer, st engine.State) string {
	spec := containerSpecOf(pod, c.name)
	if spec == nil {
		return ""
	}
	m.mu.Lock()
	sandbox := rec.sandboxID
	m.mu.Unlock()
	msg := ""
	if spec.TerminationMessagePath != "" && sandbox != "" {
		var err error
		msg, err = m.engine.TerminationMessage(ctx, sandbox, string(pod.UID), c.name)
		if err != nil {
			klog.V(2).InfoS("read termination message", "pod", klog.KObj(pod), "container", c.name, "err", err)
		}
	}
	if msg == "" && st.ExitCode != 0 && spec.TerminationMessagePolicy == corev1.TerminationMessageFallbackToLogsOnError {
		var out bytes.Buffer
		if err := m.engine.Logs(ctx, c.id, engine.LogOptions{Tail: fallbackLogLines}, &out, &out); err == nil {
			b := out.Bytes()
			if len(b) > fallbackLogBytes {
				b = b[len(b)-fallbackLogBytes:]
			}
			msg = string(b)
		}
	}
	return msg
}

// containerSpecOf finds a container of the pod by name, of any kind.
func containerSpecOf(pod *corev1.Pod, name string) *corev1.Container {
	for i := range pod.Spec.Containers {
		if pod.Spec.Containers[i].Name == name {
			return &pod.Spec.Containers[i]
		}
	}
	for i := range pod.Spec.InitContainers {
		if pod.Spec.InitContainers[i].Name == name {
			return &pod.Spec.InitContainers[i]
		}
	}
	for i := range pod.Spec.EphemeralContainers {
		if pod.Spec.EphemeralContainers[i].Name == name {
			return ephemeralSpec(&pod.Spec.EphemeralContainers[i])
		}
	}
	return nil
}

// resize applies an in-place resize of a running container's resources:
// in place through the engine, or, where the container's resizePolicy
// says RestartContainer for a resource that changed, by a restart; it
// returns true when it asked for the restart (the caller stops the run).
func (m *Runtime) resize(ctx context.Context, pod *corev1.Pod, spec *corev1.Container, c *dockerContainer) bool {
	if c.id == "" || !c.state.Running || c.applied == nil || apiequality.Semantic.DeepEqual(*c.applied, spec.Resources) {
		return false
	}
	for _, name := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		if resourceChanged(*c.applied, spec.Resources, name) && resizeRestarts(spec, name) {
			m.mu.Lock()
			c.restartRequested = "must restart to resize its " + string(name)
			m.mu.Unlock()
			return true
		}
	}
	if err := m.engine.UpdateResources(ctx, c.id, containerResources(spec.Resources)); err != nil {
		m.recorder.Eventf(pod, corev1.EventTypeWarning, "ResizeFailed", "Resize of container %s failed: %v", spec.Name, err)
		return false
	}
	m.mu.Lock()
	c.applied = spec.Resources.DeepCopy()
	m.mu.Unlock()
	return false
}

func resourceChanged(a, b corev1.ResourceRequirements, name corev1.ResourceName) bool {
	ar, br := a.Requests[name], b.Requests[name]
	al, bl := a.Limits[name], b.Limits[name]
	return ar.Cmp(br) != 0 || al.Cmp(bl) != 0
}

// resizeRestarts says whether the container restarts to resize name.
func resizeRestarts(spec *corev1.Container, name corev1.ResourceName) bool {
	for _, p := range spec.ResizePolicy {
		if p.ResourceName == name {
			return p.RestartPolicy == corev1.RestartContainer
		}
	}
	return false
}
