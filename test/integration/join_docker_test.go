package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// farEngine is a Docker Engine of the other machine: a dockerd of its own
// (own data, state and socket) in the namespace's network, so the
// bridges and pods it makes are on that machine, behind its veth.
type farEngine struct {
	host string // DOCKER_HOST
}

// startEngine runs dockerd in the namespace until the test ends.
func (m otherMachine) startEngine(t *testing.T) farEngine {
	t.Helper()
	if _, err := exec.LookPath("dockerd"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("CI is set and dockerd is not installed: %v", err)
		}
		t.Skipf("needs dockerd for the other machine's engine: %v", err)
	}
	// A short path: the engine's sockets live under it.
	dir, err := os.MkdirTemp("", "mkjd")
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "daemon.json"), []byte("{}"), 0o600))
	e := farEngine{host: "unix://" + filepath.Join(dir, "docker.sock")}
	logFile, err := os.Create(filepath.Join(dir, "dockerd.log"))
	require.NoError(t, err)
	cmd := exec.Command("nsenter", "--net=/var/run/netns/"+m.ns, "dockerd",
		"--config-file", filepath.Join(dir, "daemon.json"), "--host", e.host,
		"--data-root", filepath.Join(dir, "root"), "--exec-root", filepath.Join(dir, "run"),
		"--pidfile", filepath.Join(dir, "dockerd.pid"), "--bridge", "none",
		"--storage-driver", "vfs", "--cgroup-parent", filepath.Base(dir))
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	require.NoError(t, cmd.Start())
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		// dockerd stops its containers and its containerd on SIGTERM.
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
		}
		logFile.Close()
		if t.Failed() {
			log, _ := os.ReadFile(filepath.Join(dir, "dockerd.log"))
			t.Logf("the other machine's dockerd:\n%s", tail(string(log), 40))
		}
		_ = os.RemoveAll(dir)
	})
	eventually(t, time.Minute, "the other machine's engine answers", func() (bool, string) {
		out, err := e.docker("version", "--format", "{{.Server.APIVersion}}")
		return err == nil, out
	})
	return e
}

func (e farEngine) docker(args ...string) (string, error) {
	cmd := exec.Command("docker", args...)
	cmd.Env = append(os.Environ(), "DOCKER_HOST="+e.host)
	out, err := cmd.CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

func (e farEngine) mustDocker(t *testing.T, args ...string) string {
	t.Helper()
	out, err := e.docker(args...)
	require.NoError(t, err, "docker %v on the other machine: %s", args, out)
	return out
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// TestJoinDocker joins a node whose machine (a network namespace) has a
// Docker Engine of its own to a cluster of each driver: the node runs real
// pods there, on a network of its podCIDR, and the cluster's machine
// routes to them through the node's address, so the host (and, on the
// docker driver, a pod of the cluster's own node) reaches a pod at its
// own IP; the pod's logs come through the node's kubelet API; deleting
// the node removes its pods, their network and the route.
func TestJoinDocker(t *testing.T) {
	_, _ = binaries(t)
	requireEngine(t)
	for _, driver := range []string{"process", "docker"} {
		t.Run(driver, func(t *testing.T) { testJoinDocker(t, driver) })
	}
}

func testJoinDocker(t *testing.T, driver string) {
	_, node := binaries(t)
	m := newOtherMachine(t)
	far := m.startEngine(t)

	// The workload, built into the other machine's engine as its user would.
	const app = "minik-test-app:far"
	far.mustDocker(t, "build", "-q", "-t", app, appContext(t))

	h := newHarness(t)
	profile := "joind-" + driver
	if driver == "docker" {
		keepNodeImages(t)
		removeCluster(t, h, profile)
	}
	h.ok(6*time.Minute, "start", "-p", profile, "--driver", driver, "--listen-address", m.hostIP)
	client := clientFor(t, h.kubeconfig, profile)
	ctx := context.Background()
	var jc joinCommand
	require.NoError(t, json.Unmarshal([]byte(h.ok(time.Minute, "node", "join-command", "-p", profile, "-o", "json")), &jc))

	// With no engine, --runtime docker is refused before anything is sent.
	noEngine := exec.Command("nsenter", "--net=/var/run/netns/"+m.ns, node, "join", "--server", jc.Server, "--token", jc.Token,
		"--ca-cert-hash", jc.CACertHash, "--name", "no-engine", "--data-dir", filepath.Join(t.TempDir(), "no-engine"), "--runtime", "docker")
	noEngine.Env = append(os.Environ(), "DOCKER_HOST=unix://"+filepath.Join(t.TempDir(), "none.sock"))
	out, err := noEngine.CombinedOutput()
	require.Error(t, err)
	stderr := string(out)
	require.Contains(t, stderr, "or join with --runtime sim")
	_, err = client.CoreV1().Nodes().Get(ctx, "no-engine", metav1.GetOptions{})
	require.True(t, apierrors.IsNotFound(err), "no node registered: %v", err)

	// As on a machine where the engine turned forwarding on: only what
	// is allowed is forwarded.
	out, err = exec.Command("nsenter", "--net=/var/run/netns/"+m.ns, "iptables", "-w", "-P", "FORWARD", "DROP").CombinedOutput()
	require.NoError(t, err, "%s", out)
	dataDir := filepath.Join(t.TempDir(), "far")
	a := m.startJoinWith(t, []string{"DOCKER_HOST=" + far.host}, node,
		"--server", jc.Server, "--token", jc.Token, "--ca-cert-hash", jc.CACertHash, "--name", "far", "--data-dir", dataDir)
	waitNodeReady(t, client, "far", a)
	farNode, err := client.CoreV1().Nodes().Get(ctx, "far", metav1.GetOptions{})
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(farNode.Status.NodeInfo.ContainerRuntimeVersion, "docker://"), farNode.Status.NodeInfo.ContainerRuntimeVersion)
	_, podCIDR, err := net.ParseCIDR(farNode.Spec.PodCIDR)
	require.NoError(t, err, "the node's podCIDR")

	// A server on the joined node, reached from this machine at its pod IP.
	h.ok(time.Minute, "kubectl", "-p", profile, "--", "run", "web", "--image="+app, "--image-pull-policy=Never",
		`--overrides={"apiVersion":"v1","spec":{"nodeSelector":{"kubernetes.io/hostname":"far"}}}`)
	var pod *corev1.Pod
	eventually(t, 3*time.Minute, "pod web Running on far", func() (bool, string) {
		pod, err = client.CoreV1().Pods("default").Get(ctx, "web", metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		return pod.Status.Phase == corev1.PodRunning && pod.Status.PodIP != "", fmt.Sprintf("%s %s %+v", pod.Status.Phase, pod.Status.PodIP, pod.Status.ContainerStatuses)
	})
	require.Equal(t, "far", pod.Spec.NodeName)
	require.True(t, podCIDR.Contains(net.ParseIP(pod.Status.PodIP)), "pod IP %s in the node's podCIDR %s", pod.Status.PodIP, podCIDR)
	// The pod runs in the other machine's engine, not in this one's.
	require.NotEmpty(t, far.mustDocker(t, "ps", "-q", "--filter", "label=dev.minik.node=far"))
	require.Empty(t, docker(t, "ps", "-q", "--filter", "label=dev.minik.node=far"))

	route := func() string {
		out, _ := exec.Command("ip", "route", "show", podCIDR.String()).CombinedOutput()
		return strings.TrimSpace(string(out))
	}
	eventually(t, time.Minute, "a route to far's pods", func() (bool, string) {
		r := route()
		return strings.Contains(r, "via "+m.nodeIP) && strings.Contains(r, "proto 77"), r
	})
	// reach GETs path from the pod web at its current IP, from this host.
	httpc := http.Client{Timeout: 5 * time.Second}
	reach := func(path string) {
		t.Helper()
		eventually(t, 2*time.Minute, "GET "+path+" from web", func() (bool, string) {
			p, err := client.CoreV1().Pods("default").Get(ctx, "web", metav1.GetOptions{})
			if err != nil {
				return false, err.Error()
			}
			if p.Status.Phase != corev1.PodRunning || p.Status.PodIP == "" {
				return false, fmt.Sprintf("%s %q", p.Status.Phase, p.Status.PodIP)
			}
			resp, err := httpc.Get("http://" + net.JoinHostPort(p.Status.PodIP, "8080") + path)
			if err != nil {
				return false, err.Error()
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			return resp.StatusCode == http.StatusOK, resp.Status + " " + string(body)
		})
	}
	reach("/from-the-host")
	// An in-cluster client on the joined node reaches the apiserver.
	h.ok(time.Minute, "kubectl", "-p", profile, "--", "run", "incluster", "--image="+app, "--image-pull-policy=Never", "--restart=Never",
		`--overrides={"apiVersion":"v1","spec":{"nodeSelector":{"kubernetes.io/hostname":"far"}}}`, "--", "apiserver")
	eventually(t, 2*time.Minute, "pod incluster Succeeded", func() (bool, string) {
		p, err := client.CoreV1().Pods("default").Get(ctx, "incluster", metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		return p.Status.Phase == corev1.PodSucceeded, fmt.Sprintf("%s %+v", p.Status.Phase, p.Status.ContainerStatuses)
	})
	require.Contains(t, h.ok(time.Minute, "kubectl", "-p", profile, "--", "logs", "incluster"), `"gitVersion"`)
	want := []string{"/from-the-host"}
	if driver == "docker" {
		// A pod of the cluster's own node reaches it too: through the
		// host, which the route helper gave the route.
		clientImage := buildApp(t)
		h.ok(time.Minute, "kubectl", "-p", profile, "--", "run", "client", "--image="+clientImage, "--image-pull-policy=Never", "--restart=Never",
			`--overrides={"apiVersion":"v1","spec":{"nodeSelector":{"kubernetes.io/hostname":"`+profile+`"}}}`,
			"--", "get", "http://"+net.JoinHostPort(pod.Status.PodIP, "8080")+"/from-a-pod")
		eventually(t, 2*time.Minute, "pod client Succeeded", func() (bool, string) {
			p, err := client.CoreV1().Pods("default").Get(ctx, "client", metav1.GetOptions{})
			if err != nil {
				return false, err.Error()
			}
			return p.Status.Phase == corev1.PodSucceeded, fmt.Sprintf("%s %+v", p.Status.Phase, p.Status.ContainerStatuses)
		})
		want = append(want, "/from-a-pod")
		require.NotEmpty(t, docker(t, "ps", "-q", "--filter", "label=dev.minik.kind=router", "--filter", "label=dev.minik.cluster="+profile))
	}
	eventually(t, time.Minute, "the requests in the pod's logs", func() (bool, string) {
		r := h.run(time.Minute, "kubectl", "-p", profile, "--", "logs", "web")
		for _, w := range want {
			if !strings.Contains(r.stdout, w) {
				return false, r.stdout + r.stderr
			}
		}
		return r.code == 0, r.stdout + r.stderr
	})

	// The agent restarts (its pods start afresh, as on a rebooted node),
	// then the control plane does (its routes go and come back): the pod
	// is reached again each time.
	a.stop()
	a = m.startJoinWith(t, []string{"DOCKER_HOST=" + far.host}, node,
		"--server", jc.Server, "--token", jc.Token, "--ca-cert-hash", jc.CACertHash, "--name", "far", "--data-dir", dataDir)
	waitNodeReady(t, client, "far", a)
	reach("/after-the-agent-restarted")
	h.ok(2*time.Minute, "stop", "-p", profile)
	require.NotContains(t, route(), "via "+m.nodeIP, "the route goes with the control plane")
	h.ok(6*time.Minute, "start", "-p", profile)
	client = clientFor(t, h.kubeconfig, profile)
	waitNodeReady(t, client, "far", a)
	reach("/after-the-control-plane-restarted")

	// Deleting the node stops the agent, which removes its pods and
	// network from its engine; the route goes with the Node.
	h.ok(2*time.Minute, "node", "delete", "far", "-p", profile)
	select {
	case err := <-a.done:
		a.done <- err
		require.NoError(t, err, "agent stderr: %s", a.stderr.String())
	case <-time.After(time.Minute):
		t.Fatalf("the agent still runs a minute after its node was deleted: %s", a.stderr.String())
	}
	require.Empty(t, far.mustDocker(t, "ps", "-aq", "--filter", "label=dev.minik.node=far"), "far's pods removed")
	require.Empty(t, far.mustDocker(t, "network", "ls", "-q", "--filter", "label=dev.minik.node=far"), "far's pod network removed")
	out, err = exec.Command("nsenter", "--net=/var/run/netns/"+m.ns, "iptables", "-w", "-S", "DOCKER-USER").CombinedOutput()
	require.NoError(t, err, "%s", out)
	require.NotContains(t, string(out), podCIDR.String(), "the forwarding rule removed")
	eventually(t, time.Minute, "the route to far's pods removed", func() (bool, string) {
		r := route()
		return r == "", r
	})
}
