package cluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"minik.dev/minik/drivers"
)

const pollInterval = 50 * time.Millisecond

// ErrWaitTimeout is returned (wrapped) when a wait for the apiserver, the
// cluster or a node runs out of time; the message says what is not ready.
var ErrWaitTimeout = errors.New("timed out")

// newAdminClient builds a client from the profile's admin kubeconfig.
func newAdminClient(path string) (kubernetes.Interface, error) {
	rc, err := adminRESTConfig(path)
	if err != nil {
		return nil, err
	}
	client, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return nil, fmt.Errorf("create admin client: %w", err)
	}
	return client, nil
}

// adminRESTConfig is the client config of the profile's admin kubeconfig.
func adminRESTConfig(path string) (*rest.Config, error) {
	rc, err := clientcmd.BuildConfigFromFlags("", path)
	if err != nil {
		return nil, fmt.Errorf("load admin kubeconfig: %w", err)
	}
	rc.Timeout = 5 * time.Second
	rc.UserAgent = "minik"
	rc.QPS, rc.Burst = 100, 200
	return rc, nil
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
			if err := m.checkNodesAlive(ctx, d, p, p.Nodes); err != nil {
				return err
			}
		}
		select {
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return fmt.Errorf("wait for apiserver: %w: not ready after %s (last error: %v); see %s", ErrWaitTimeout, timeout, last, m.logHint(ctx, d, p, *p.ControlPlane()))
			}
			return fmt.Errorf("wait for apiserver: %w", ctx.Err())
		case <-time.After(pollInterval):
		}
	}
}

// readiness says what a wait waits for.
type readiness struct {
	// what names the wait in errors: "cluster", "node dev-m02".
	what  string
	nodes []ProfileNode
	// since holds, for each node that was just (re)started, when: its Ready
	// condition counts only once a report since then confirms it, as its
	// Node may still say Ready from before it stopped.
	since map[string]time.Time
	// serviceAccount also waits for the default ServiceAccount.
	serviceAccount bool
}

// waitReady waits for every node Ready and the default ServiceAccount;
// since says which nodes were just started, and when.
func (m *Manager) waitReady(ctx context.Context, d drivers.Driver, p *Profile, client kubernetes.Interface, since map[string]time.Time, timeout time.Duration) error {
	return m.waitFor(ctx, d, p, client, readiness{what: "cluster", nodes: p.Nodes, since: since, serviceAccount: true}, timeout)
}

// waitFor waits until r holds; a node of r that stops meanwhile fails the
// wait at once with the end of its log.
func (m *Manager) waitFor(ctx context.Context, d drivers.Driver, p *Profile, client kubernetes.Interface, r readiness, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var pending []string
	for i := 0; ; i++ {
		pending = notReady(ctx, client, r)
		if len(pending) == 0 {
			return nil
		}
		if i%10 == 0 {
			if err := m.checkNodesAlive(ctx, d, p, r.nodes); err != nil {
				return err
			}
		}
		select {
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return fmt.Errorf("wait for %s: %w after %s: %s", r.what, ErrWaitTimeout, timeout, strings.Join(pending, "; "))
			}
			return fmt.Errorf("wait for %s: %w", r.what, ctx.Err())
		case <-time.After(pollInterval):
		}
	}
}

// notReady lists what is not ready yet, in words a user can act on.
func notReady(ctx context.Context, client kubernetes.Interface, r readiness) []string {
	var pending []string
	nodes, err := client.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return []string{fmt.Sprintf("cannot list nodes: %v", err)}
	}
	seen := map[string]corev1.Node{}
	for _, n := range nodes.Items {
		seen[n.Name] = n
	}
	for _, want := range r.nodes {
		n, ok := seen[want.Name]
		if !ok {
			pending = append(pending, fmt.Sprintf("node %s has not registered", want.Name))
			continue
		}
		c := readyCondition(n)
		switch {
		case c == nil:
			pending = append(pending, fmt.Sprintf("node %s is not Ready: no Ready condition yet", want.Name))
		case c.Status != corev1.ConditionTrue:
			pending = append(pending, fmt.Sprintf("node %s is not Ready: Ready=%s (%s: %s)", want.Name, c.Status, c.Reason, c.Message))
		case !reportedSince(ctx, client, n, c, r.since[want.Name]):
			pending = append(pending, fmt.Sprintf("node %s has not reported since it started", want.Name))
		case notReadyTainted(n):
			// The node lifecycle controller lifts this taint a moment after
			// Ready; until then the scheduler puts nothing on the node.
			pending = append(pending, fmt.Sprintf("node %s is Ready but still tainted %s", want.Name, corev1.TaintNodeNotReady))
		}
	}
	if r.serviceAccount {
		_, err = client.CoreV1().ServiceAccounts(metav1.NamespaceDefault).Get(ctx, "default", metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
			pending = append(pending, "the default ServiceAccount does not exist yet (kube-controller-manager creates it)")
		case err != nil:
			pending = append(pending, fmt.Sprintf("cannot read the default ServiceAccount: %v", err))
		}
	}
	sort.Strings(pending)
	return pending
}

func notReadyTainted(n corev1.Node) bool {
	for _, t := range n.Spec.Taints {
		if t.Key == corev1.TaintNodeNotReady || t.Key == corev1.TaintNodeUnreachable {
			return true
		}
	}
	return false
}

// reportedSince reports whether the node's agent confirmed it after since:
// by the Ready heartbeat (whole seconds) or by renewing its Lease.
func reportedSince(ctx context.Context, client kubernetes.Interface, n corev1.Node, ready *corev1.NodeCondition, since time.Time) bool {
	if since.IsZero() || !ready.LastHeartbeatTime.Time.Before(since.Truncate(time.Second)) {
		return true
	}
	lease, err := client.CoordinationV1().Leases(corev1.NamespaceNodeLease).Get(ctx, n.Name, metav1.GetOptions{})
	return err == nil && lease.Spec.RenewTime != nil && !lease.Spec.RenewTime.Time.Before(since.Truncate(time.Microsecond))
}

func readyCondition(n corev1.Node) *corev1.NodeCondition {
	for i := range n.Status.Conditions {
		if n.Status.Conditions[i].Type == corev1.NodeReady {
			return &n.Status.Conditions[i]
		}
	}
	return nil
}

// checkNodesAlive fails when one of nodes, which should run, has stopped.
func (m *Manager) checkNodesAlive(ctx context.Context, d drivers.Driver, p *Profile, nodes []ProfileNode) error {
	for _, n := range nodes {
		st, err := d.NodeState(ctx, m.driverNode(p, n))
		if err != nil {
			return err
		}
		if st != drivers.StateRunning {
			return fmt.Errorf("node %s stopped while starting; %s", n.Name, m.logHint(ctx, d, p, n))
		}
	}
	return nil
}

// logHint points at a node's log and quotes its end, because a failed
// create removes the folder or container that holds it.
func (m *Manager) logHint(ctx context.Context, d drivers.Driver, p *Profile, n ProfileNode) string {
	lt, ok := d.(drivers.LogTailer)
	if !ok {
		return "its log is kept by the " + p.Driver + " driver"
	}
	// ctx may have ended: that is often why the hint is wanted.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	return lt.TailNodeLog(ctx, m.driverNode(p, n), 15)
}
