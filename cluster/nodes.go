package cluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/kubectl/pkg/drain"

	"minik.dev/minik/drivers"
	"minik.dev/minik/filelock"
	"minik.dev/minik/nodeconfig"
)

// Ready states of a node in a NodeInfo, as its Ready condition says.
const (
	NodeReady        = "Ready"
	NodeNotReady     = "NotReady"
	NodeReadyUnknown = "Unknown"
)

const (
	// kubeViewTimeout bounds how long Nodes waits for the apiserver.
	kubeViewTimeout = 2 * time.Second
	// drainTimeout bounds the eviction of a deleted node's pods.
	drainTimeout = 2 * time.Minute
	// cleanupTimeout bounds the removal of a node that failed to come up.
	cleanupTimeout = time.Minute
)

// ErrNodeNotFound is returned (wrapped) for a node name a profile does not hold.
var ErrNodeNotFound = errors.New("node not found")

// nodeNotFoundError names the nodes the profile does hold.
type nodeNotFoundError struct {
	node, profile string
	nodes         []string
}

func (e *nodeNotFoundError) Error() string {
	return fmt.Sprintf("node %q not found in profile %s; its nodes are: %s", e.node, e.profile, strings.Join(e.nodes, ", "))
}

func (e *nodeNotFoundError) Is(target error) bool { return target == ErrNodeNotFound }

// NodeInfo is one node as `minik node list -o json` prints it: the driver's
// view and, when the apiserver answers, the Kubernetes view.
type NodeInfo struct {
	Name string `json:"name"`
	Role string `json:"role"`
	// State is the driver's view: Running or Stopped.
	State string `json:"state"`
	IP    string `json:"ip"`
	// Ready is Ready, NotReady or Unknown; empty when the apiserver did not
	// answer or the node has not registered, like PodCIDR and Schedulable.
	Ready   string `json:"ready,omitempty"`
	PodCIDR string `json:"podCIDR,omitempty"`
	// Schedulable is false for a cordoned node.
	Schedulable *bool `json:"schedulable,omitempty"`
	// Host is the machine a joined node runs on (State Joined).
	Host string `json:"host,omitempty"`
	// Autoscaled: the autoscaler made this worker.
	Autoscaled bool `json:"autoscaled,omitempty"`
}

// Nodes lists a profile's nodes; the Kubernetes view is included when the
// apiserver answers within a short time.
func (m *Manager) Nodes(ctx context.Context, profile string) ([]NodeInfo, error) {
	p, d, lock, err := m.openProfile(profile)
	if err != nil {
		return nil, err
	}
	defer lock.Unlock()
	return m.nodeInfos(ctx, d, p), nil
}

// AddNode adds a worker to a running cluster, starts it and waits for it
// Ready as asked. A node that fails to come up is removed again.
func (m *Manager) AddNode(ctx context.Context, profile string, o AddNodeOptions) (*NodeInfo, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	role, err := addRole(o.Role)
	if err != nil {
		return nil, err
	}
	p, d, lock, err := m.openProfile(profile)
	if err != nil {
		return nil, err
	}
	defer lock.Unlock()
	if err := d.Health(ctx); err != nil {
		return nil, err
	}
	if err := m.requireRunning(ctx, d, p); err != nil {
		return nil, err
	}
	if len(p.Nodes) >= MaxNodes {
		return nil, fmt.Errorf("profile %s has %d nodes, the most minik supports", p.Name, len(p.Nodes))
	}
	client, err := newAdminClient(m.store.AdminKubeconfig(p.Name))
	if err != nil {
		return nil, err
	}

	done := m.report.Step(StepPrepareNode)
	n, err := m.newNode(ctx, d, p, client, role, o)
	done(err)
	if err != nil {
		return nil, err
	}
	if err := m.bringUpNode(ctx, d, p, n, o.Wait); err != nil {
		if cerr := m.removeFailedNode(ctx, d, p, n, client); cerr != nil {
			return nil, fmt.Errorf("%w; removing node %s failed too (%v): remove it with `minik node delete %s -p %s`", err, n.Name, cerr, n.Name, p.Name)
		}
		return nil, err
	}
	infos := m.nodeInfos(ctx, d, p)
	return &infos[slices.IndexFunc(infos, func(i NodeInfo) bool { return i.Name == n.Name })], nil
}

// StopNode stops one worker and keeps its state; `minik stop` stops a whole cluster.
func (m *Manager) StopNode(ctx context.Context, profile, node string) error {
	p, d, lock, err := m.openProfile(profile)
	if err != nil {
		return err
	}
	defer lock.Unlock()
	n, err := findNode(p, node)
	if err != nil {
		return err
	}
	if err := rejectControlPlane(p, n, "stop"); err != nil {
		return err
	}
	done := m.report.Step(StepStopNode)
	err = d.StopNode(ctx, m.driverNode(p, n))
	done(err)
	return err
}

// StartNode starts one stopped node of a running cluster and waits up to
// wait for it Ready (0: does not wait).
func (m *Manager) StartNode(ctx context.Context, profile, node string, wait time.Duration) error {
	if err := checkWait(wait); err != nil {
		return err
	}
	p, d, lock, err := m.openProfile(profile)
	if err != nil {
		return err
	}
	defer lock.Unlock()
	n, err := findNode(p, node)
	if err != nil {
		return err
	}
	if err := d.Health(ctx); err != nil {
		return err
	}
	if err := m.requireRunning(ctx, d, p); err != nil {
		return err
	}
	return m.bringUpNode(ctx, d, p, n, wait)
}

// DeleteNode removes one worker: it cordons and drains its Node, deletes
// the node and its Node object, and forgets it. A stopped cluster's node is
// removed without touching the API.
func (m *Manager) DeleteNode(ctx context.Context, profile, node string) error {
	p, d, lock, err := m.openProfile(profile)
	if err != nil {
		return err
	}
	defer lock.Unlock()
	n, err := findNode(p, node)
	if err != nil {
		if joined, client := m.findJoinedNode(ctx, d, p, node); joined != nil {
			return m.deleteJoinedNode(ctx, client, joined)
		}
		return err
	}
	if err := rejectControlPlane(p, n, "delete"); err != nil {
		return err
	}
	cpState, err := d.NodeState(ctx, m.driverNode(p, *p.ControlPlane()))
	if err != nil {
		return err
	}
	var client kubernetes.Interface
	if cpState == drivers.StateRunning {
		if client, err = newAdminClient(m.store.AdminKubeconfig(p.Name)); err != nil {
			return err
		}
		state, err := d.NodeState(ctx, m.driverNode(p, n))
		if err != nil {
			return err
		}
		evict := state == drivers.StateRunning
		if !evict {
			m.report.Note(fmt.Sprintf("node %s is stopped, so its pods are not evicted: Kubernetes deletes them once its Node is gone", n.Name))
		}
		done := m.report.Step(StepDrainNode)
		err = drainNode(ctx, client, n.Name, evict)
		done(err)
		if err != nil && evict {
			return fmt.Errorf("%w; to delete it without evicting its pods, stop it first (`minik node stop %s -p %s`)", err, n.Name, p.Name)
		}
		if err != nil {
			return err
		}
	} else {
		m.report.Note(fmt.Sprintf("cluster %s is stopped: node %s is removed without draining, and its Node object stays until `minik kubectl -p %s -- delete node %s`", p.Name, n.Name, p.Name, n.Name))
	}
	done := m.report.Step(StepDeleteNode)
	err = m.removeNode(ctx, d, p, n, client)
	done(err)
	return err
}

// findJoinedNode returns the Node called name when it joined from another
// machine and the cluster runs, with a client to act on it.
func (m *Manager) findJoinedNode(ctx context.Context, d drivers.Driver, p *Profile, name string) (*corev1.Node, kubernetes.Interface) {
	if m.requireRunning(ctx, d, p) != nil {
		return nil, nil
	}
	client, err := newAdminClient(m.store.AdminKubeconfig(p.Name))
	if err != nil {
		return nil, nil
	}
	n, err := client.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
	if err != nil || n.Labels[nodeconfig.JoinedLabel] != "true" {
		return nil, nil
	}
	return n, client
}

// openProfile takes the profile's lock and loads it and its driver.
func (m *Manager) openProfile(name string) (*Profile, drivers.Driver, *filelock.Lock, error) {
	if err := ValidateName(name); err != nil {
		return nil, nil, nil, err
	}
	lock, err := m.lock(name)
	if err != nil {
		return nil, nil, nil, err
	}
	p, err := m.store.Load(name)
	if err != nil {
		lock.Unlock()
		return nil, nil, nil, err
	}
	d, err := m.drivers.Get(p.Driver)
	if err != nil {
		lock.Unlock()
		return nil, nil, nil, err
	}
	return p, d, lock, nil
}

// requireRunning fails unless the profile's control plane runs.
func (m *Manager) requireRunning(ctx context.Context, d drivers.Driver, p *Profile) error {
	state, err := d.NodeState(ctx, m.driverNode(p, *p.ControlPlane()))
	if err != nil {
		return err
	}
	if state != drivers.StateRunning {
		return fmt.Errorf("cluster %s is not running; start it first with `minik start -p %s`", p.Name, p.Name)
	}
	return nil
}

// newNode chooses the new node's name, address and capacity and saves it in
// the profile. A Node object left in the API under that name by a node
// deleted while the cluster was stopped goes first.
func (m *Manager) newNode(ctx context.Context, d drivers.Driver, p *Profile, client kubernetes.Interface, role string, o AddNodeOptions) (ProfileNode, error) {
	taken, err := m.takenIPs()
	if err != nil {
		return ProfileNode{}, err
	}
	n := p.newNode(nextNodeName(p), role, "")
	n.Autoscaled = o.Autoscaled
	if o.CPUMillis > 0 {
		n.CPUMillis = o.CPUMillis
	}
	if o.MemoryBytes > 0 {
		n.MemoryBytes = o.MemoryBytes
	}
	if o.MaxPods > 0 {
		// The podCIDR size is cluster-wide and fixed when the controller
		// manager starts; refuse what it cannot hold.
		if mask := p.NodeCIDRMaskSize(); o.MaxPods > (1<<(32-mask))-3 {
			return ProfileNode{}, &InvalidOptionError{Field: "MaxPods", Value: strconv.Itoa(o.MaxPods),
				Reason: fmt.Sprintf("this cluster's node pod CIDRs (/%d) hold at most %d; create the cluster with a larger --max-pods", mask, (1<<(32-mask))-3)}
		}
		n.MaxPods = o.MaxPods
	}
	if n.IP, err = m.nodeIP(d, p, taken); err != nil {
		return ProfileNode{}, err
	}
	if err := deleteNodeObject(ctx, client, n.Name); err != nil {
		return ProfileNode{}, err
	}
	p.Nodes = append(p.Nodes, n)
	if err := m.store.Save(p); err != nil {
		p.Nodes = p.Nodes[:len(p.Nodes)-1]
		return ProfileNode{}, err
	}
	return n, nil
}

// bringUpNode writes the configs, starts n and waits up to wait for it Ready.
func (m *Manager) bringUpNode(ctx context.Context, d drivers.Driver, p *Profile, n ProfileNode, wait time.Duration) error {
	if err := m.prepare(ctx, d, p); err != nil {
		return err
	}
	done := m.report.Step(StepCertificates)
	err := m.writeConfigs(d, p)
	done(err)
	if err != nil {
		return err
	}
	state, err := d.NodeState(ctx, m.driverNode(p, n))
	if err != nil {
		return err
	}
	// A node that was not running must report after it starts: its Node
	// may still say Ready from before it stopped.
	since := map[string]time.Time{}
	if state != drivers.StateRunning {
		since[n.Name] = time.Now()
	}
	done = m.report.Step(StepStartNode)
	err = d.StartNode(ctx, m.driverNode(p, n))
	done(err)
	if err != nil || wait == 0 {
		return err
	}
	client, err := newAdminClient(m.store.AdminKubeconfig(p.Name))
	if err != nil {
		return err
	}
	done = m.report.Step(StepNodeReady)
	err = m.waitFor(ctx, d, p, client, readiness{what: "node " + n.Name, nodes: []ProfileNode{n}, since: since}, wait)
	done(err)
	return err
}

// removeFailedNode undoes AddNode, even when ctx is cancelled.
func (m *Manager) removeFailedNode(ctx context.Context, d drivers.Driver, p *Profile, n ProfileNode, client kubernetes.Interface) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
	defer cancel()
	return m.removeNode(ctx, d, p, n, client)
}

// removeNode deletes n through the driver, then its Node object unless
// client is nil, then its folder and its profile entry.
func (m *Manager) removeNode(ctx context.Context, d drivers.Driver, p *Profile, n ProfileNode, client kubernetes.Interface) error {
	// The agent goes first so that nothing recreates the Node or its Lease.
	if err := d.DeleteNode(ctx, m.driverNode(p, n)); err != nil {
		return err
	}
	if client != nil {
		if err := deleteNodeObject(ctx, client, n.Name); err != nil {
			return err
		}
	}
	if err := os.RemoveAll(m.store.NodeDir(p.Name, n.Name)); err != nil {
		return fmt.Errorf("delete node folder: %w", err)
	}
	p.Nodes = slices.DeleteFunc(p.Nodes, func(x ProfileNode) bool { return x.Name == n.Name })
	return m.store.Save(p)
}

// nodeInfos reports every node of p; the Kubernetes view needs a running
// control plane and an apiserver that answers within kubeViewTimeout.
func (m *Manager) nodeInfos(ctx context.Context, d drivers.Driver, p *Profile) []NodeInfo {
	infos := make([]NodeInfo, 0, len(p.Nodes))
	cpRunning := false
	for _, n := range p.Nodes {
		state, err := d.NodeState(ctx, m.driverNode(p, n))
		if err != nil {
			state = "Unknown"
		}
		if n.Role == nodeconfig.RoleControlPlane && state == drivers.StateRunning {
			cpRunning = true
		}
		infos = append(infos, NodeInfo{Name: n.Name, Role: n.Role, State: state, IP: n.IP, Autoscaled: n.Autoscaled})
	}
	if !cpRunning {
		return infos
	}
	nodes, err := m.listNodeObjects(ctx, p)
	if err != nil {
		m.report.Note(fmt.Sprintf("the apiserver of %s does not answer, so nodes show only the driver's view: %v", p.Name, err))
		return infos
	}
	for _, n := range joinedNodes(nodes) {
		if !slices.ContainsFunc(infos, func(i NodeInfo) bool { return i.Name == n.Name }) {
			infos = append(infos, joinedInfo(n))
		}
	}
	addKubeView(infos, nodes)
	return infos
}

func (m *Manager) listNodeObjects(ctx context.Context, p *Profile) ([]corev1.Node, error) {
	client, err := newAdminClient(m.store.AdminKubeconfig(p.Name))
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, kubeViewTimeout)
	defer cancel()
	list, err := client.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("list nodes: %w", err)
	}
	return list.Items, nil
}

// addKubeView fills in the Kubernetes view of the infos that have a Node.
func addKubeView(infos []NodeInfo, nodes []corev1.Node) {
	byName := make(map[string]corev1.Node, len(nodes))
	for _, n := range nodes {
		byName[n.Name] = n
	}
	for i := range infos {
		n, ok := byName[infos[i].Name]
		if !ok {
			continue
		}
		schedulable := !n.Spec.Unschedulable
		infos[i].Ready = readyState(n)
		infos[i].PodCIDR = n.Spec.PodCIDR
		infos[i].Schedulable = &schedulable
	}
}

func readyState(n corev1.Node) string {
	c := readyCondition(n)
	switch {
	case c == nil:
		return NodeReadyUnknown
	case c.Status == corev1.ConditionTrue:
		return NodeReady
	case c.Status == corev1.ConditionFalse:
		return NodeNotReady
	default:
		return NodeReadyUnknown
	}
}

// drainNode cordons the Node and, with evict, evicts its pods as
// `kubectl drain --force --ignore-daemonsets --delete-emptydir-data` does.
// A node that never registered has nothing to drain.
func drainNode(ctx context.Context, client kubernetes.Interface, name string, evict bool) error {
	node, err := client.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("get node %s: %w", name, err)
	}
	h := &drain.Helper{
		Ctx:                 ctx,
		Client:              client,
		Force:               true,
		IgnoreAllDaemonSets: true,
		DeleteEmptyDirData:  true,
		GracePeriodSeconds:  -1,
		Timeout:             drainTimeout,
		Out:                 io.Discard,
		ErrOut:              io.Discard,
	}
	if err := drain.RunCordonOrUncordon(h, node, true); err != nil {
		return fmt.Errorf("cordon node %s: %w", name, err)
	}
	if !evict {
		return nil
	}
	if err := drain.RunNodeDrain(h, name); err != nil {
		return fmt.Errorf("drain node %s: %w", name, err)
	}
	return nil
}

// deleteNodeObject deletes a Node and its Lease; missing ones are fine.
func deleteNodeObject(ctx context.Context, client kubernetes.Interface, name string) error {
	err := client.CoreV1().Nodes().Delete(ctx, name, metav1.DeleteOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("delete Node %s: %w", name, err)
	}
	err = client.CoordinationV1().Leases(corev1.NamespaceNodeLease).Delete(ctx, name, metav1.DeleteOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("delete Lease of node %s: %w", name, err)
	}
	return nil
}

// nextNodeName is the first of NAME-m02, NAME-m03, ... that no node of p
// has: names of deleted nodes are reused.
func nextNodeName(p *Profile) string {
	used := make(map[string]bool, len(p.Nodes))
	for _, n := range p.Nodes {
		used[n.Name] = true
	}
	for i := 1; ; i++ {
		if name := nodeName(p.Name, i); !used[name] {
			return name
		}
	}
}

// findNode returns p's node called name.
func findNode(p *Profile, name string) (ProfileNode, error) {
	names := make([]string, 0, len(p.Nodes))
	for _, n := range p.Nodes {
		if n.Name == name {
			return n, nil
		}
		names = append(names, n.Name)
	}
	return ProfileNode{}, &nodeNotFoundError{node: name, profile: p.Name, nodes: names}
}

// rejectControlPlane refuses to stop or delete the control-plane node alone:
// verb is the minik command that does it for the whole cluster.
func rejectControlPlane(p *Profile, n ProfileNode, verb string) error {
	if n.Role != nodeconfig.RoleControlPlane {
		return nil
	}
	return fmt.Errorf("node %s is the control plane; use `minik %s -p %s` to %s the cluster", n.Name, verb, p.Name, verb)
}
