package cluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"minik.dev/minik/drivers"
)

const pollInterval = 50 * time.Millisecond

// newAdminClient builds a client from the profile's admin kubeconfig.
func newAdminClient(path string) (kubernetes.Interface, error) {
	rc, err := clientcmd.BuildConfigFromFlags("", path)
	if err != nil {
		return nil, fmt.Errorf("load admin kubeconfig: %w", err)
	}
	rc.Timeout = 5 * time.Second
	rc.UserAgent = "minik"
	rc.QPS, rc.Burst = 100, 200
	client, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return nil, fmt.Errorf("create admin client: %w", err)
	}
	return client, nil
}

// waitAPIServer polls /readyz; a node that stops meanwhile fails the wait at
// once with the end of its log.
func (m *Manager) waitAPIServer(ctx context.Context, d drivers.Driver, p *Profile, client kubernetes.Interface, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var last error
	for i := 0; ; i++ {
		body, err := client.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx)
		if err == nil && bytes.Equal(bytes.TrimSpace(body), []byte("ok")) {
			return nil
		}
		last = err
		if i%10 == 0 {
			if err := m.checkNodesAlive(ctx, d, p); err != nil {
				return err
			}
		}
		select {
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return fmt.Errorf("wait for apiserver: not ready after %s (last error: %v); see %s", timeout, last, m.logHint(d, p, *p.ControlPlane()))
			}
			return fmt.Errorf("wait for apiserver: %w", ctx.Err())
		case <-time.After(pollInterval):
		}
	}
}

// waitReady waits for every node Ready and the default ServiceAccount.
func (m *Manager) waitReady(ctx context.Context, d drivers.Driver, p *Profile, client kubernetes.Interface, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var pending []string
	for i := 0; ; i++ {
		pending = m.notReady(ctx, p, client)
		if len(pending) == 0 {
			return nil
		}
		if i%10 == 0 {
			if err := m.checkNodesAlive(ctx, d, p); err != nil {
				return err
			}
		}
		select {
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return fmt.Errorf("wait for cluster: timed out after %s: %s", timeout, strings.Join(pending, "; "))
			}
			return fmt.Errorf("wait for cluster: %w", ctx.Err())
		case <-time.After(pollInterval):
		}
	}
}

// notReady lists what is not ready yet, in words a user can act on.
func (m *Manager) notReady(ctx context.Context, p *Profile, client kubernetes.Interface) []string {
	var pending []string
	nodes, err := client.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return []string{fmt.Sprintf("cannot list nodes: %v", err)}
	}
	seen := map[string]corev1.Node{}
	for _, n := range nodes.Items {
		seen[n.Name] = n
	}
	for _, want := range p.Nodes {
		n, ok := seen[want.Name]
		if !ok {
			pending = append(pending, fmt.Sprintf("node %s has not registered", want.Name))
			continue
		}
		if c := readyCondition(n); c == nil || c.Status != corev1.ConditionTrue {
			reason := "no Ready condition yet"
			if c != nil {
				reason = fmt.Sprintf("Ready=%s (%s: %s)", c.Status, c.Reason, c.Message)
			}
			pending = append(pending, fmt.Sprintf("node %s is not Ready: %s", want.Name, reason))
		}
	}
	_, err = client.CoreV1().ServiceAccounts(metav1.NamespaceDefault).Get(ctx, "default", metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		pending = append(pending, "the default ServiceAccount does not exist yet (kube-controller-manager creates it)")
	case err != nil:
		pending = append(pending, fmt.Sprintf("cannot read the default ServiceAccount: %v", err))
	}
	sort.Strings(pending)
	return pending
}

func readyCondition(n corev1.Node) *corev1.NodeCondition {
	for i := range n.Status.Conditions {
		if n.Status.Conditions[i].Type == corev1.NodeReady {
			return &n.Status.Conditions[i]
		}
	}
	return nil
}

// checkNodesAlive fails when a node that should run has stopped.
func (m *Manager) checkNodesAlive(ctx context.Context, d drivers.Driver, p *Profile) error {
	for _, n := range p.Nodes {
		st, err := d.NodeState(ctx, m.driverNode(p, n))
		if err != nil {
			return err
		}
		if st != drivers.StateRunning {
			return fmt.Errorf("node %s stopped while starting; %s", n.Name, m.logHint(d, p, n))
		}
	}
	return nil
}

// logHint points at a node's log and quotes its end, because a failed
// create removes the folder that holds it.
func (m *Manager) logHint(d drivers.Driver, p *Profile, n ProfileNode) string {
	ll, ok := d.(drivers.LogLocator)
	if !ok {
		return "its log is kept by the " + p.Driver + " driver"
	}
	path := ll.LogPath(m.driverNode(p, n))
	return "last lines of " + path + ":\n" + tail(path, 15)
}

func tail(path string, lines int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return "(no log: " + err.Error() + ")"
	}
	all := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(all) > lines {
		all = all[len(all)-lines:]
	}
	return "  " + strings.Join(all, "\n  ")
}
