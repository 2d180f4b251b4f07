package docker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	remotecommand "k8s.io/cri-streaming/pkg/streaming/remotecommand"
	"k8s.io/klog/v2"
	utilexec "k8s.io/utils/exec"

	"minik.dev/minik/kubelet/engine"
	"minik.dev/minik/kubelet/podlogs"
	"minik.dev/minik/kubelet/runtime"
)

// containerID finds the engine's ID of a pod's container run.
func (m *Runtime) containerID(namespace, pod, container string, previous bool) (string, error) {
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

// Logs implements runtime.Runtime from the engine's log of the run. A run
// whose container is gone (a node restart removes them all) is read from
// the node's log folder, as the kubelet reads its files.
func (m *Runtime) Logs(ctx context.Context, pod *corev1.Pod, container string, o runtime.LogOptions, w io.Writer) error {
	id, err := m.containerID(pod.Namespace, pod.Name, container, o.Previous)
	if err == nil {
		err = m.engine.Logs(ctx, id, engine.LogOptions{
			Follow: o.Follow && !o.Previous, Tail: int(o.Tail), Since: o.Since, Timestamps: o.Timestamps,
		}, w, w)
		if !errors.Is(err, engine.ErrNotFound) {
			return err
		}
	}
	if r, ok := m.loggedRun(pod, container, o.Previous); ok {
		return m.logs.Read(r, podlogs.ReadOptions{Tail: int(o.Tail), Since: o.Since, Timestamps: o.Timestamps}, w)
	}
	return err
}

// loggedRun is the run of a container, current or previous, when its log
// file is there: the current run is the one that runs, or else the last
// one that did.
func (m *Runtime) loggedRun(pod *corev1.Pod, container string, previous bool) (podlogs.Run, bool) {
	rec := m.find(pod.Namespace, pod.Name)
	if m.logs == nil || rec == nil {
		return podlogs.Run{}, false
	}
	m.mu.Lock()
	c := rec.containers[container]
	n := -1
	if c != nil {
		n = c.attempt
		if c.id == "" {
			n--
		}
	}
	m.mu.Unlock()
	if previous {
		n--
	}
	r := podlogs.Run{Namespace: pod.Namespace, Pod: pod.Name, UID: string(pod.UID), Container: container, Restart: n}
	if n < 0 {
		return r, false
	}
	_, err := os.Stat(m.logs.Path(r))
	return r, err == nil
}

// copyLogs follows a container run's output into the node's log folder,
// as the kubelet's runtime writes it, until the run ends or its pod goes.
func (m *Runtime) copyLogs(rec *dockerPod, pod *corev1.Pod, spec *corev1.Container, attempt int, id string) {
	if m.logs == nil {
		return
	}
	r := podlogs.Run{Namespace: pod.Namespace, Pod: pod.Name, UID: string(pod.UID), Container: spec.Name, Restart: attempt, ID: id}
	w, err := m.logs.Open(r)
	if err != nil {
		klog.ErrorS(err, "keep container log", "pod", klog.KObj(pod), "container", spec.Name)
		return
	}
	// The same run number again (a node restart) appends what is new.
	since := m.logs.LastTime(r)
	if !since.IsZero() {
		since = since.Add(time.Nanosecond)
	}
	rec.logCopies.Add(1)
	go func() {
		defer rec.logCopies.Done()
		defer w.Close()
		o := engine.LogOptions{Follow: true, Timestamps: true, Tail: -1, Since: since}
		if err := m.engine.Logs(rec.ctx, id, o, w.Stream(podlogs.Stdout, spec.TTY), w.Stream(podlogs.Stderr, spec.TTY)); err != nil && rec.ctx.Err() == nil {
			klog.ErrorS(err, "copy container log", "pod", klog.KObj(pod), "container", spec.Name)
		}
	}()
}

// AttachContainer implements remotecommandserver.Attacher; name is
// "namespace/pod".
func (m *Runtime) AttachContainer(ctx context.Context, name, _ string, container string, in io.Reader, out, errw io.WriteCloser, tty bool, resize <-chan remotecommand.TerminalSize) error {
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
func (m *Runtime) ExecInContainer(ctx context.Context, name, _ string, container string, cmd []string, in io.Reader, out, errw io.WriteCloser, tty bool, resize <-chan remotecommand.TerminalSize, _ time.Duration) error {
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
func (m *Runtime) PortForward(ctx context.Context, name, _ string, port int32, stream io.ReadWriteCloser) error {
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
