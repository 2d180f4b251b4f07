package metricsapi

import (
	"math"
	"sort"
	"sync"
	"time"
)

// Usage is the resource use of a node or a container: CPU as the rate
// between two readings of its cumulative counter over Window, ending at
// Timestamp; memory as the working set at Timestamp.
type Usage struct {
	Timestamp    time.Time
	Window       time.Duration
	CPUNanoCores uint64
	MemoryBytes  uint64
}

// PodKey names a pod.
type PodKey struct {
	Namespace, Name string
}

// ContainerUsage is one container's Usage.
type ContainerUsage struct {
	Name string
	Usage
}

// PodUsage is the usage of a pod's running containers, sorted by name.
// Timestamp is the latest and Window the widest of theirs.
type PodUsage struct {
	Node       string
	Timestamp  time.Time
	Window     time.Duration
	Containers []ContainerUsage
}

// startSlack absorbs the rounding of container_start_time_seconds, a float
// of Unix seconds, between two scrapes of the same container run.
const startSlack = time.Millisecond

// Store holds the latest usage computed for every node that answered its
// last scrape. A node whose scrape fails loses its entry: its metrics are
// absent rather than stale, as with metrics-server.
type Store struct {
	mu    sync.RWMutex
	nodes map[string]*nodeEntry
}

type nodeEntry struct {
	last batch
	node *Usage
	pods map[PodKey]PodUsage
}

// NewStore returns an empty store.
func NewStore() *Store {
	return &Store{nodes: map[string]*nodeEntry{}}
}

// record computes node's usage from its new scrape and the previous one.
func (s *Store) record(node string, cur batch) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var prev *batch
	if e := s.nodes[node]; e != nil {
		prev = &e.last
	}
	s.nodes[node] = computeEntry(node, prev, cur)
}

// fail drops what is known of node: its kubelet did not answer.
func (s *Store) fail(node string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.nodes, node)
}

// retain drops every node not in keep (deleted Nodes).
func (s *Store) retain(keep map[string]bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for n := range s.nodes {
		if !keep[n] {
			delete(s.nodes, n)
		}
	}
}

// warming reports whether some node answered but has been scraped only
// once, so its CPU rate is still unknown.
func (s *Store) warming() bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	for _, e := range s.nodes {
		if e.node == nil {
			return true
		}
	}
	return false
}

// Node returns a node's usage.
func (s *Store) Node(name string) (Usage, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if e := s.nodes[name]; e != nil && e.node != nil {
		return *e.node, true
	}
	return Usage{}, false
}

// Nodes returns the usage of every node that has one.
func (s *Store) Nodes() map[string]Usage {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make(map[string]Usage, len(s.nodes))
	for n, e := range s.nodes {
		if e.node != nil {
			out[n] = *e.node
		}
	}
	return out
}

// Pods returns the usage of every pod that has one. A pod reported by two
// nodes (moved, its old kubelet not yet caught up) counts where it was
// seen last.
func (s *Store) Pods() map[PodKey]PodUsage {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := map[PodKey]PodUsage{}
	for _, e := range s.nodes {
		for k, p := range e.pods {
			if have, ok := out[k]; !ok || p.Timestamp.After(have.Timestamp) {
				out[k] = p
			}
		}
	}
	return out
}

// Pod returns one pod's usage.
func (s *Store) Pod(key PodKey) (PodUsage, bool) {
	p, ok := s.Pods()[key]
	return p, ok
}

func computeEntry(node string, prev *batch, cur batch) *nodeEntry {
	e := &nodeEntry{last: cur, pods: map[PodKey]PodUsage{}}
	if prev != nil && prev.hasNodeCPU && cur.hasNodeCPU && cur.hasNodeMem {
		if cpu, window, ok := rate(prev.node, cur.node); ok {
			e.node = &Usage{Timestamp: cur.node.at, Window: window, CPUNanoCores: cpu, MemoryBytes: cur.nodeMemory}
		}
	}
	for key, c := range cur.containers {
		var before *containerSample
		if prev != nil {
			if p, ok := prev.containers[key]; ok {
				before = &p
			}
		}
		u, ok := containerUsage(before, c)
		if !ok {
			continue
		}
		pk := PodKey{Namespace: key.Namespace, Name: key.Pod}
		p := e.pods[pk]
		p.Node = node
		p.Containers = append(p.Containers, ContainerUsage{Name: key.Container, Usage: u})
		if u.Timestamp.After(p.Timestamp) {
			p.Timestamp = u.Timestamp
		}
		p.Window = max(p.Window, u.Window)
		e.pods[pk] = p
	}
	for _, p := range e.pods {
		sort.Slice(p.Containers, func(i, j int) bool { return p.Containers[i].Name < p.Containers[j].Name })
	}
	return e
}

// containerUsage is the CPU rate between two scrapes of the same run of a
// container. A container seen for the first time (or restarted, or whose
// counter went back) is rated from its start, when its counter was zero, so
// a new pod has metrics after one scrape, as metrics-server does.
func containerUsage(prev *containerSample, cur containerSample) (Usage, bool) {
	if !cur.hasCPU || !cur.hasMem {
		return Usage{}, false
	}
	if prev != nil && prev.hasCPU && sameRun(prev.started, cur.started) {
		if cpu, window, ok := rate(prev.cpu, cur.cpu); ok {
			return Usage{Timestamp: cur.cpu.at, Window: window, CPUNanoCores: cpu, MemoryBytes: cur.memory}, true
		}
	}
	if cur.started.IsZero() {
		return Usage{}, false
	}
	cpu, window, ok := rate(cpuPoint{at: cur.started}, cur.cpu)
	if !ok {
		return Usage{}, false
	}
	return Usage{Timestamp: cur.cpu.at, Window: window, CPUNanoCores: cpu, MemoryBytes: cur.memory}, true
}

func sameRun(a, b time.Time) bool {
	d := a.Sub(b)
	return d < startSlack && d > -startSlack
}

// rate is the average use between two readings of a counter, in
// nano-cores; false when they are not in order or the counter was reset.
func rate(prev, cur cpuPoint) (uint64, time.Duration, bool) {
	window := cur.at.Sub(prev.at)
	if window <= 0 || cur.seconds < prev.seconds {
		return 0, 0, false
	}
	r := (cur.seconds - prev.seconds) / window.Seconds() * 1e9
	if r >= math.MaxUint64 {
		return math.MaxUint64, window, true
	}
	return uint64(math.Round(r)), window, true
}
