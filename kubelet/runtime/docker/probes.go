package docker

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

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"minik.dev/minik/kubelet/runtime"
)

// startProbes runs a new container run's startup, liveness and readiness
// probes until the run ends. Results land in the container's record and
// wake the pod's sync when they change.
func (m *Runtime) startProbes(rec *dockerPod, pod *corev1.Pod, spec *corev1.Container, c *dockerContainer) {
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
				m.wake(key)
				return false
			}
			if final {
				c.restartRequested = "failed startup probe"
				m.wake(key)
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
					m.wake(key)
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
					m.wake(key)
				}
				return true
			})
		}()
	}
}

// probeLoop runs one probe on its schedule. report gets each result that
// crossed its threshold (final) or succeeded, and returns whether to go on.
func (m *Runtime) probeLoop(ctx context.Context, pod *corev1.Pod, spec *corev1.Container, id, ip, kind string, p *corev1.Probe, report func(ok, final bool) bool) {
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
		m.countProbe(pod, spec.Name, kind, err == nil)
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
func (m *Runtime) probeOnce(ctx context.Context, spec *corev1.Container, id, ip string, p *corev1.Probe, timeout time.Duration) error {
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
		return grpcProbe(ctx, net.JoinHostPort(ip, strconv.Itoa(int(p.GRPC.Port))), ptr.Deref(p.GRPC.Service, ""))
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

// countProbe records a probe's result for /metrics/probes.
func (m *Runtime) countProbe(pod *corev1.Pod, container, kind string, ok bool) {
	result := "successful"
	if !ok {
		result = "failed"
	}
	k := runtime.ProbeKey{Namespace: pod.Namespace, Pod: pod.Name, PodUID: string(pod.UID), Container: container, ProbeType: kind, Result: result}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.probes == nil {
		m.probes = map[runtime.ProbeKey]uint64{}
	}
	m.probes[k]++
}

// ProbeCounts implements runtime.Prober.
func (m *Runtime) ProbeCounts() map[runtime.ProbeKey]uint64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make(map[runtime.ProbeKey]uint64, len(m.probes))
	for k, v := range m.probes {
		out[k] = v
	}
	return out
}

// grpcProbe asks the gRPC Health Checking Protocol's Check of addr, in
// plain text as the kubelet does; only SERVING passes.
func grpcProbe(ctx context.Context, addr, service string) error {
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithUserAgent("kube-probe/1.37"))
	if err != nil {
		return err
	}
	defer conn.Close()
	resp, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{Service: service})
	if err != nil {
		return fmt.Errorf("gRPC probe of %s: %w", addr, err)
	}
	if resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		return fmt.Errorf("service unhealthy (responded with %q)", resp.GetStatus())
	}
	return nil
}
