package kubelet

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	remotecommand "k8s.io/cri-streaming/pkg/streaming/remotecommand"
	"k8s.io/klog/v2"
	utilexec "k8s.io/utils/exec"

	"minik.dev/minik/kubelet/engine"
)

// startProbes runs a new container run's startup, liveness and readiness
// probes until the run ends. Results land in the container's record and
// wake the pod's sync when they change.
func (m *dockerPods) startProbes(rec *dockerPod, pod *corev1.Pod, spec *corev1.Container, c *dockerContainer) {
	if spec.StartupProbe == nil && spec.LivenessProbe == nil && spec.ReadinessProbe == nil {
		return
	}
	ctx, cancel := context.WithCancel(rec.ctx)
	m.mu.Lock()
	if c.probeCancel != nil {
		c.probeCancel()
	}
	c.probeCancel = cancel
	id, ip := c.id, rec.ip
	m.mu.Unlock()
	key := pod.Namespace + "/" + pod.Name
	started := make(chan struct{})
	if spec.StartupProbe == nil {
		close(started)
	} else {
		go m.probeLoop(ctx, pod, spec, id, ip, "Startup", spec.StartupProbe, func(ok, final bool) bool {
			m.mu.Lock()
			defer m.mu.Unlock()
			if ok {
				c.started = true
				close(started)
				m.queue.Add(key)
				return false
			}
			if final {
				c.restartRequested = "failed startup probe"
				m.queue.Add(key)
				return false
			}
			return true
		})
	}
	if p := spec.LivenessProbe; p != nil {
		go func() {
			select {
			case <-ctx.Done():
				return
			case <-started:
			}
			m.probeLoop(ctx, pod, spec, id, ip, "Liveness", p, func(ok, final bool) bool {
				if !ok && final {
					m.mu.Lock()
					c.restartRequested = "failed liveness probe"
					m.mu.Unlock()
					m.queue.Add(key)
					return false
				}
				return true
			})
		}()
	}
	if p := spec.ReadinessProbe; p != nil {
		go func() {
			select {
			case <-ctx.Done():
				return
			case <-started:
			}
			m.probeLoop(ctx, pod, spec, id, ip, "Readiness", p, func(ok, final bool) bool {
				m.mu.Lock()
				changed := c.ready != ok && (ok || final)
				if changed {
					c.ready = ok
				}
				m.mu.Unlock()
				if changed {
					m.queue.Add(key)
				}
				return true
			})
		}()
	}
}

// probeLoop runs one probe on its schedule. report gets each result that
// crossed its threshold (final) or succeeded, and returns whether to go on.
func (m *dockerPods) probeLoop(ctx context.Context, pod *corev1.Pod, spec *corev1.Container, id, ip, kind string, p *corev1.Probe, report func(ok, final bool) bool) {
	period := time.Duration(max(p.PeriodSeconds, 1)) * time.Second
	timeout := time.Duration(max(p.TimeoutSeconds, 1)) * time.Second
	success, failure := max(p.SuccessThreshold, 1), max(p.FailureThreshold, 1)
	select {
	case <-ctx.Done():
		return
	case <-time.After(time.Duration(p.InitialDelaySeconds) * time.Second):
	}
	var oks, fails int32
	for {
		err := m.probeOnce(ctx, spec, id, ip, p, timeout)
		if ctx.Err() != nil {
			return
		}
		if err == nil {
			oks, fails = oks+1, 0
			if oks >= success && !report(true, true) {
				return
			}
		} else {
			oks, fails = 0, fails+1
			m.recorder.Eventf(pod, corev1.EventTypeWarning, "Unhealthy", "%s probe failed: %v", kind, err)
			if fails >= failure {
				if !report(false, true) {
					return
				}
				fails = 0
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(period):
		}
	}
}

// probeOnce runs a probe once: HTTP and TCP from this node to the pod IP
// (the node is on the cluster network), exec through the engine.
func (m *dockerPods) probeOnce(ctx context.Context, spec *corev1.Container, id, ip string, p *corev1.Probe, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	switch {
	case p.Exec != nil:
		var out bytes.Buffer
		code, err := m.engine.Exec(ctx, id, p.Exec.Command, nil, &out, &out, false, nil)
		if err != nil {
			return err
		}
		if code != 0 {
			return fmt.Errorf("command %q exited with %d: %s", strings.Join(p.Exec.Command, " "), code, strings.TrimSpace(out.String()))
		}
		return nil
	case p.HTTPGet != nil:
		g := p.HTTPGet
		port, err := probePort(spec, g.Port)
		if err != nil {
			return err
		}
		host := ip
		if g.Host != "" {
			host = g.Host
		}
		scheme := strings.ToLower(string(g.Scheme))
		if scheme == "" {
			scheme = "http"
		}
		url := scheme + "://" + net.JoinHostPort(host, strconv.Itoa(port)) + g.Path
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		for _, h := range g.HTTPHeaders {
			req.Header.Add(h.Name, h.Value)
		}
		req.Header.Set("User-Agent", "kube-probe/1.37")
		client := &http.Client{Transport: &http.Transport{
			// The kubelet does not verify probe certificates either.
			TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, //nolint:gosec
			Proxy:           nil,
		}}
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 10<<10))
		if resp.StatusCode < 200 || resp.StatusCode >= 400 {
			return fmt.Errorf("HTTP probe failed with statuscode: %d", resp.StatusCode)
		}
		return nil
	case p.TCPSocket != nil:
		port, err := probePort(spec, p.TCPSocket.Port)
		if err != nil {
			return err
		}
		host := ip
		if p.TCPSocket.Host != "" {
			host = p.TCPSocket.Host
		}
		var d net.Dialer
		conn, err := d.DialContext(ctx, "tcp", net.JoinHostPort(host, strconv.Itoa(port)))
		if err != nil {
			return err
		}
		return conn.Close()
	case p.GRPC != nil:
		return errors.New("gRPC probes are not supported by minik's docker runtime")
	}
	return errors.New("probe has no handler")
}

// probePort resolves a probe's port, which may name a container port.
func probePort(spec *corev1.Container, port intstr.IntOrString) (int, error) {
	if port.Type == intstr.Int {
		return port.IntValue(), nil
	}
	for _, p := range spec.Ports {
		if p.Name == port.StrVal {
			return int(p.ContainerPort), nil
		}
	}
	return 0, fmt.Errorf("container %s has no port named %q", spec.Name, port.StrVal)
}

// collectStats samples every running container's usage now and then, so
// the kubelet API answers from memory.
func (m *dockerPods) collectStats(ctx context.Context) {
	t := time.NewTicker(statsInterval)
	defer t.Stop()
	for {
		ids := map[string]bool{}
		for _, rec := range m.snapshotRecords() {
			for _, c := range m.containerList(rec) {
				if c.id == "" || !c.state.Running {
					continue
				}
				ids[c.id] = true
				cpu, mem, err := m.engine.Stats(ctx, c.id)
				if err != nil {
					continue
				}
				m.sample(c.id, cpu, mem)
			}
		}
		// The node's own container goes by the node's name.
		if cpu, mem, err := m.engine.Stats(ctx, m.cfg.Name); err == nil {
			m.sample(m.cfg.Name, cpu, mem)
			ids[m.cfg.Name] = true
		}
		m.mu.Lock()
		for id := range m.stats {
			if !ids[id] {
				delete(m.stats, id)
			}
		}
		m.mu.Unlock()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// sample records a container's counters and its CPU rate since the last.
func (m *dockerPods) sample(id string, cpu, mem uint64) {
	now := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	prev, ok := m.stats[id]
	s := containerStats{at: now, cpuNanos: cpu, memory: mem}
	if ok && now.After(prev.at) && cpu >= prev.cpuNanos {
		s.nanoCores = uint64(float64(cpu-prev.cpuNanos) / now.Sub(prev.at).Seconds())
	}
	m.stats[id] = s
}

// nodeUsage implements nodeUsageSource from the node container's stats.
func (m *dockerPods) nodeUsage() (nanoCores, memory uint64, ok bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s, ok := m.stats[m.cfg.Name]
	if !ok {
		return 0, 0, false
	}
	return s.nanoCores, s.memory, true
}

func (m *dockerPods) snapshotRecords() []*dockerPod {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]*dockerPod, 0, len(m.pods))
	for _, rec := range m.pods {
		out = append(out, rec)
	}
	return out
}

// usage implements podSource from the last samples.
func (m *dockerPods) usage(time.Time) []usageSample {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []usageSample
	for _, rec := range m.pods {
		if rec.pod == nil {
			continue
		}
		for _, c := range rec.containers {
			s, ok := m.stats[c.id]
			if c.id == "" || !ok || !c.state.Running {
				continue
			}
			smp := usageSample{namespace: rec.pod.Namespace, pod: rec.pod.Name, container: c.name}
			smp.usage.CPUNanoCores = s.nanoCores
			smp.usage.CPUUsageCoreNanoSeconds = s.cpuNanos
			smp.usage.MemoryWorkingSetBytes = s.memory
			smp.usage.StartTime = c.state.StartedAt
			out = append(out, smp)
		}
	}
	return out
}

// containerID finds the engine's ID of a pod's container run.
func (m *dockerPods) containerID(namespace, pod, container string, previous bool) (string, error) {
	rec := m.find(namespace, pod)
	if rec == nil {
		return "", fmt.Errorf("pod %s/%s not found on node %s", namespace, pod, m.cfg.Name)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	c := rec.containers[container]
	switch {
	case c == nil:
		return "", fmt.Errorf("container %q in pod %s/%s is not known on node %s", container, namespace, pod, m.cfg.Name)
	case previous && c.previousID == "":
		return "", fmt.Errorf("previous terminated container %q in pod %q not found", container, pod)
	case previous:
		return c.previousID, nil
	case c.id == "":
		return "", fmt.Errorf("container %q in pod %q is waiting to start: %s", container, pod, c.waitingReason)
	}
	return c.id, nil
}

// writeLogs implements containerStreams.
func (m *dockerPods) writeLogs(ctx context.Context, namespace, pod, container string, o logOptions, w io.Writer) error {
	id, err := m.containerID(namespace, pod, container, o.previous)
	if err != nil {
		return err
	}
	return m.engine.Logs(ctx, id, engine.LogOptions{
		Follow: o.follow && !o.previous, Tail: int(o.tail), Since: o.since, Timestamps: o.timestamps,
	}, w)
}

// AttachContainer implements remotecommandserver.Attacher; name is
// "namespace/pod".
func (m *dockerPods) AttachContainer(ctx context.Context, name, _ string, container string, in io.Reader, out, errw io.WriteCloser, tty bool, resize <-chan remotecommand.TerminalSize) error {
	ns, pod, _ := strings.Cut(name, "/")
	id, err := m.containerID(ns, pod, container, false)
	if err != nil {
		return err
	}
	return m.engine.Attach(ctx, id, in, out, errw, tty, engineSizes(ctx, resize))
}

// engineSizes relays terminal sizes to the engine's type.
func engineSizes(ctx context.Context, resize <-chan remotecommand.TerminalSize) chan engine.Size {
	if resize == nil {
		return nil
	}
	sizes := make(chan engine.Size)
	go func() {
		defer close(sizes)
		for s := range resize {
			select {
			case sizes <- engine.Size{Width: uint(s.Width), Height: uint(s.Height)}:
			case <-ctx.Done():
				return
			}
		}
	}()
	return sizes
}

// ExecInContainer implements remotecommandserver.Executor; name is
// "namespace/pod".
func (m *dockerPods) ExecInContainer(ctx context.Context, name, _ string, container string, cmd []string, in io.Reader, out, errw io.WriteCloser, tty bool, resize <-chan remotecommand.TerminalSize, _ time.Duration) error {
	ns, pod, _ := strings.Cut(name, "/")
	id, err := m.containerID(ns, pod, container, false)
	if err != nil {
		return err
	}
	sizes := engineSizes(ctx, resize)
	code, err := m.engine.Exec(ctx, id, cmd, in, out, errw, tty, sizes)
	if err != nil {
		return err
	}
	if code != 0 {
		return utilexec.CodeExitError{Err: fmt.Errorf("command terminated with exit code %d", code), Code: code}
	}
	klog.V(4).InfoS("exec done", "pod", name, "container", container)
	return nil
}

// PortForward implements portforward.PortForwarder: the node is on the
// cluster network, so it dials the pod IP itself. name is "namespace/pod".
func (m *dockerPods) PortForward(ctx context.Context, name, _ string, port int32, stream io.ReadWriteCloser) error {
	defer stream.Close()
	ns, pod, _ := strings.Cut(name, "/")
	rec := m.find(ns, pod)
	if rec == nil {
		return fmt.Errorf("pod %s not found on node %s", name, m.cfg.Name)
	}
	m.mu.Lock()
	ip := rec.ip
	m.mu.Unlock()
	if ip == "" {
		return fmt.Errorf("pod %s has no IP yet", name)
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", net.JoinHostPort(ip, strconv.Itoa(int(port))))
	if err != nil {
		return fmt.Errorf("forward to port %d of pod %s: %w", port, name, err)
	}
	defer conn.Close()
	done := make(chan struct{}, 2)
	go func() { _, _ = io.Copy(conn, stream); done <- struct{}{} }()
	go func() { _, _ = io.Copy(stream, conn); done <- struct{}{} }()
	select {
	case <-done:
	case <-ctx.Done():
	}
	return nil
}
