package integration

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// otherMachine is a network namespace joined to this one by a veth pair:
// the host side has hostIP, the namespace nodeIP, on a /24 of their own.
type otherMachine struct {
	ns             string
	hostIP, nodeIP string
}

// newOtherMachine makes the namespace and removes it when the test ends.
func newOtherMachine(t *testing.T) otherMachine {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to create a network namespace for the other machine")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("needs ip (iproute2) to create a network namespace")
	}
	// Names and addresses from the pid: parallel runs do not collide.
	id := os.Getpid() % 200
	m := otherMachine{
		ns:     fmt.Sprintf("minik-join-%d", os.Getpid()),
		hostIP: fmt.Sprintf("10.213.%d.1", id),
		nodeIP: fmt.Sprintf("10.213.%d.2", id),
	}
	hostLink, nodeLink := fmt.Sprintf("mkj%dh", id), fmt.Sprintf("mkj%dn", id)
	ip := func(args ...string) {
		t.Helper()
		out, err := exec.Command("ip", args...).CombinedOutput()
		require.NoError(t, err, "ip %v: %s", args, out)
	}
	ip("netns", "add", m.ns)
	t.Cleanup(func() {
		_ = exec.Command("ip", "link", "del", hostLink).Run()
		_ = exec.Command("ip", "netns", "del", m.ns).Run()
	})
	ip("link", "add", hostLink, "type", "veth", "peer", "name", nodeLink)
	ip("link", "set", nodeLink, "netns", m.ns)
	ip("addr", "add", m.hostIP+"/24", "dev", hostLink)
	ip("link", "set", hostLink, "up")
	ip("-n", m.ns, "addr", "add", m.nodeIP+"/24", "dev", nodeLink)
	ip("-n", m.ns, "link", "set", nodeLink, "up")
	ip("-n", m.ns, "link", "set", "lo", "up")
	return m
}

// joinCommand is `minik node join-command -o json`.
type joinCommand struct {
	Server     string `json:"server"`
	Token      string `json:"token"`
	CACertHash string `json:"caCertHash"`
	Command    string `json:"command"`
}

// agent is a minik-node join running in the other machine.
type agent struct {
	cmd    *exec.Cmd
	stderr *bytes.Buffer
	done   chan error
}

// startJoin runs minik-node join in the namespace; the agent is killed
// when the test ends if it still runs.
func (m otherMachine) startJoin(t *testing.T, node string, args ...string) *agent {
	t.Helper()
	return m.startJoinWith(t, nil, node, args...)
}

// startJoinWith is startJoin with more environment variables. It enters
// only the namespace's network (nsenter), not a new mount namespace as
// `ip netns exec` does, so the machine's cgroups stay visible.
func (m otherMachine) startJoinWith(t *testing.T, env []string, node string, args ...string) *agent {
	t.Helper()
	cmd := exec.Command("nsenter", append([]string{"--net=/var/run/netns/" + m.ns, node, "join"}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	a := &agent{cmd: cmd, stderr: &bytes.Buffer{}, done: make(chan error, 1)}
	cmd.Stderr = a.stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	require.NoError(t, cmd.Start())
	go func() { a.done <- cmd.Wait() }()
	t.Cleanup(func() { a.stop() })
	return a
}

// stop kills the agent and waits for it.
func (a *agent) stop() {
	select {
	case err := <-a.done:
		a.done <- err
		return
	default:
	}
	_ = syscall.Kill(-a.cmd.Process.Pid, syscall.SIGKILL)
	a.done <- <-a.done
}

// join runs minik-node join in the namespace to its end: its exit code
// and stderr.
func (m otherMachine) join(t *testing.T, node string, args ...string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", m.ns, node, "join"}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	if exit, ok := err.(*exec.ExitError); ok {
		return exit.ExitCode(), stderr.String()
	}
	require.NoError(t, err)
	return 0, stderr.String()
}

// TestJoin joins a node from another machine (a network namespace) to a
// process-driver cluster that listens on the host side of the veth: TLS
// bootstrap through the upstream controllers, a pod on the node and its
// logs through the kubelet API, restarts of the agent and of the control
// plane, refusals of bad input with nothing left in the cluster, and
// `minik node delete`, which stops the remote agent.
func TestJoin(t *testing.T) {
	_, node := binaries(t)
	m := newOtherMachine(t)
	h := newHarness(t)
	const profile = "join"
	h.ok(6*time.Minute, "start", "-p", profile, "--listen-address", m.hostIP)
	client := clientFor(t, h.kubeconfig, profile)
	ctx := context.Background()

	// Without --listen-address nobody can join, and the flag is checked.
	require.Contains(t, h.fails("start", "-p", "other", "--listen-address", "192.0.2.77"), "no interface of this machine has it")
	require.Contains(t, h.fails("start", "-p", "other", "--listen-address", "0.0.0.0"), "not every address")
	require.Contains(t, h.fails("node", "join-command", "-p", profile, "--ttl", "10s"), "--ttl")

	var jc joinCommand
	require.NoError(t, json.Unmarshal([]byte(h.ok(time.Minute, "node", "join-command", "-p", profile, "-o", "json")), &jc))
	require.Equal(t, "https://"+m.hostIP+":", jc.Server[:len("https://"+m.hostIP+":")])
	require.Contains(t, jc.Command, "minik-node join --server "+jc.Server+" --token "+jc.Token+" --ca-cert-hash "+jc.CACertHash)

	dataDir := t.TempDir()
	base := []string{"--server", jc.Server, "--data-dir", filepath.Join(dataDir, "bad"), "--timeout", "5s"}
	t.Run("bad input leaves nothing in the cluster", func(t *testing.T) {
		expired := "0a1b2c.0123456789abcdef"
		h.ok(time.Minute, "kubectl", "-p", profile, "--", "create", "secret", "generic", "bootstrap-token-0a1b2c", "-n", "kube-system",
			"--type", "bootstrap.kubernetes.io/token", "--from-literal=token-id=0a1b2c", "--from-literal=token-secret=0123456789abcdef",
			"--from-literal=expiration=2020-01-01T00:00:00Z", "--from-literal=usage-bootstrap-authentication=true",
			"--from-literal=usage-bootstrap-signing=true")
		cases := []struct {
			name string
			args []string
			want string
		}{
			{"wrong CA hash", []string{"--token", jc.Token, "--ca-cert-hash", "sha256:" + strings.Repeat("0", 64), "--name", "bad-hash"}, "are pinned"},
			{"unknown token", []string{"--token", "zzzzzz.0123456789abcdef", "--ca-cert-hash", jc.CACertHash, "--name", "bad-token"}, "token ID \"zzzzzz\""},
			{"expired token", []string{"--token", expired, "--ca-cert-hash", jc.CACertHash, "--name", "bad-expired"}, "token ID \"0a1b2c\""},
			{"name taken", []string{"--token", jc.Token, "--ca-cert-hash", jc.CACertHash, "--name", profile}, "already has a node named " + profile},
			{"no hash", []string{"--token", jc.Token, "--name", "bad-nohash"}, "--ca-cert-hash must be"},
			{"bad name", []string{"--token", jc.Token, "--ca-cert-hash", jc.CACertHash, "--name", "Bad_Name"}, "not a DNS label"},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				code, stderr := m.join(t, node, append(append([]string{}, base...), c.args...)...)
				require.NotEqual(t, 0, code)
				require.Contains(t, stderr, c.want)
			})
		}
		code, stderr := m.join(t, node, "--server", "https://"+m.hostIP+":1", "--token", jc.Token, "--ca-cert-hash", jc.CACertHash,
			"--name", "bad-port", "--data-dir", filepath.Join(dataDir, "bad"))
		require.NotEqual(t, 0, code)
		require.Contains(t, stderr, "cannot reach the apiserver")

		nodes, err := client.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
		require.NoError(t, err)
		require.Len(t, nodes.Items, 1, "no node registered by a refused join")
		csrs, err := client.CertificatesV1().CertificateSigningRequests().List(ctx, metav1.ListOptions{})
		require.NoError(t, err)
		require.Empty(t, csrs.Items, "no certificate requested by a refused join")
	})

	// This machine's engine answers in the namespace too (its socket is a
	// file): the sim runtime is asked for. TestJoinDocker runs real pods.
	joinArgs := []string{"--server", jc.Server, "--token", jc.Token, "--ca-cert-hash", jc.CACertHash, "--name", "far", "--data-dir", filepath.Join(dataDir, "far"),
		"--runtime", "sim"}
	a := m.startJoin(t, node, joinArgs...)
	waitNodeReady(t, client, "far", a)

	far, err := client.CoreV1().Nodes().Get(ctx, "far", metav1.GetOptions{})
	require.NoError(t, err)
	require.Equal(t, "true", far.Labels["minik.dev/joined"])
	require.Contains(t, far.Status.Addresses, corev1.NodeAddress{Type: corev1.NodeInternalIP, Address: m.nodeIP})
	// Both certificates came through the CSR API and were issued.
	eventually(t, time.Minute, "client and serving certificates issued", func() (bool, string) {
		csrs, err := client.CertificatesV1().CertificateSigningRequests().List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, err.Error()
		}
		issued := map[string]bool{}
		for _, c := range csrs.Items {
			issued[c.Spec.SignerName] = len(c.Status.Certificate) > 0
		}
		want := map[string]bool{"kubernetes.io/kube-apiserver-client-kubelet": true, "kubernetes.io/kubelet-serving": true}
		return fmt.Sprint(issued) == fmt.Sprint(want), fmt.Sprint(issued)
	})

	nodes := h.nodeList(profile)
	require.Len(t, nodes, 2)
	require.Equal(t, "far", nodes[1].Name)
	require.Equal(t, "Joined", nodes[1].State)
	require.Equal(t, m.nodeIP, nodes[1].IP)
	require.Equal(t, "Ready", nodes[1].Ready)
	require.Contains(t, h.ok(time.Minute, "status", "-p", profile), "Joined (Ready, on ")

	// A pod on the joined node; its logs come from that node's kubelet API.
	h.ok(time.Minute, "kubectl", "-p", profile, "--", "run", "far-pod", "--image=busybox", "--restart=Never",
		`--overrides={"apiVersion":"v1","spec":{"nodeSelector":{"kubernetes.io/hostname":"far"}}}`, "--", "echo", "hi")
	logs := func() string {
		var out string
		eventually(t, 2*time.Minute, "logs of far-pod", func() (bool, string) {
			r := h.run(time.Minute, "kubectl", "-p", profile, "--", "logs", "far-pod")
			out = r.stdout
			return r.code == 0 && out != "", r.stderr
		})
		return out
	}
	require.NotEmpty(t, logs())
	pod, err := client.CoreV1().Pods("default").Get(ctx, "far-pod", metav1.GetOptions{})
	require.NoError(t, err)
	require.Equal(t, "far", pod.Spec.NodeName)

	// The agent restarts from its data folder: no token is needed again.
	// Its client certificate is made to have lived past its renewal time
	// and to expire 20 s from now: the agent renews it through a CSR of
	// its own and goes on with the new one once the old one has expired.
	a.stop()
	clientPair := filepath.Join(dataDir, "far", "pki", "kubelet-client-current.pem")
	oldNotAfter := expireClientPair(t, filepath.Join(h.home, "profiles", profile, "pki"), clientPair, 20*time.Second)
	a = m.startJoin(t, node, "--server", jc.Server, "--token", "aaaaaa.0000000000000000", "--ca-cert-hash", jc.CACertHash,
		"--name", "far", "--data-dir", filepath.Join(dataDir, "far"))
	waitNodeReady(t, client, "far", a)
	eventually(t, time.Minute, "the client certificate renewed", func() (bool, string) {
		notAfter := readCertFile(t, clientPair).NotAfter
		return time.Until(notAfter) > 300*24*time.Hour, "expires " + notAfter.String()
	})
	csrs, err := client.CertificatesV1().CertificateSigningRequests().List(ctx, metav1.ListOptions{})
	require.NoError(t, err)
	var renewals int
	for _, c := range csrs.Items {
		if c.Spec.SignerName == "kubernetes.io/kube-apiserver-client-kubelet" && c.Spec.Username == "system:node:far" && len(c.Status.Certificate) > 0 {
			renewals++
		}
	}
	require.Equal(t, 1, renewals, "one renewal, requested by the node itself and issued")
	eventually(t, time.Minute, "the node's lease renewed after its old certificate expired", func() (bool, string) {
		lease, err := client.CoordinationV1().Leases("kube-node-lease").Get(ctx, "far", metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		renewed := lease.Spec.RenewTime.Time
		return renewed.After(oldNotAfter.Add(time.Second)), "renewed " + renewed.String() + ", old certificate expired " + oldNotAfter.String()
	})
	// The control plane restarts; the joined node carries on.
	h.ok(2*time.Minute, "stop", "-p", profile)
	h.ok(6*time.Minute, "start", "-p", profile)
	client = clientFor(t, h.kubeconfig, profile)
	waitNodeReady(t, client, "far", a)
	require.NotEmpty(t, logs())

	// Deleting the node stops its agent, which removes its credentials.
	h.ok(2*time.Minute, "node", "delete", "far", "-p", profile)
	select {
	case err := <-a.done:
		a.done <- err
		require.NoError(t, err, "agent stderr: %s", a.stderr.String())
	case <-time.After(time.Minute):
		t.Fatalf("the agent still runs a minute after its node was deleted: %s", a.stderr.String())
	}
	require.Contains(t, a.stderr.String(), "was deleted from the cluster")
	_, err = os.Stat(filepath.Join(dataDir, "far", "config.json"))
	require.ErrorIs(t, err, os.ErrNotExist)
	_, err = client.CoreV1().Nodes().Get(ctx, "far", metav1.GetOptions{})
	require.True(t, apierrors.IsNotFound(err), "node far: %v", err)
	require.Len(t, h.nodeList(profile), 1)
}

// waitNodeReady waits for the Node Ready while the agent runs.
func waitNodeReady(t *testing.T, client kubernetes.Interface, name string, a *agent) {
	t.Helper()
	eventually(t, 2*time.Minute, "node "+name+" Ready", func() (bool, string) {
		select {
		case err := <-a.done:
			a.done <- err
			t.Fatalf("minik-node join exited: %v\n%s", err, a.stderr.String())
		default:
		}
		n, err := client.CoreV1().Nodes().Get(context.Background(), name, metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		for _, c := range n.Status.Conditions {
			if c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue {
				return true, ""
			}
		}
		return false, "not Ready: " + strconv.Itoa(len(n.Status.Conditions)) + " conditions"
	})
}

// expireClientPair rewrites a kubelet's client certificate pair (the
// certificate, then its key, in one file) so that its certificate, signed
// again by the cluster's CA, began two hours ago and expires in `left`:
// past the certificate manager's renewal time. It returns the new expiry.
func expireClientPair(t *testing.T, caDir, pair string, left time.Duration) time.Time {
	t.Helper()
	data, err := os.ReadFile(pair)
	require.NoError(t, err)
	certBlock, rest := pem.Decode(data)
	require.NotNil(t, certBlock)
	require.Equal(t, "CERTIFICATE", certBlock.Type)
	old, err := x509.ParseCertificate(certBlock.Bytes)
	require.NoError(t, err)
	tmpl := *old
	tmpl.NotBefore = time.Now().Add(-2 * time.Hour)
	tmpl.NotAfter = time.Now().Add(left).Truncate(time.Second)
	der, err := x509.CreateCertificate(nil, &tmpl, readCertFile(t, filepath.Join(caDir, "ca.crt")), old.PublicKey, readKeyFile(t, filepath.Join(caDir, "ca.key")))
	require.NoError(t, err)
	// Written through the symlink: the manager's file of the current pair.
	require.NoError(t, os.WriteFile(pair, append(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), rest...), 0o600))
	return tmpl.NotAfter
}
