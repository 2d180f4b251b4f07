package docker

import (
	"context"
	"time"

	corev1 "k8s.io/api/core/v1"

	"minik.dev/minik/kubelet/engine"
	"minik.dev/minik/kubelet/runtime"
)

// collectStats samples every running container's usage now and then, so
// the kubelet API answers from memory.
func (m *Runtime) collectStats(ctx context.Context) {
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
				st, err := m.engine.Stats(ctx, c.id)
				if err != nil {
					continue
				}
				m.sample(c.id, st)
			}
			// The sandbox holds the pod's network: its counters are the pod's.
			if id := rec.sandboxID; id != "" {
				if st, err := m.engine.Stats(ctx, id); err == nil {
					ids[id] = true
					m.sample(id, st)
				}
			}
		}
		// The node's own container goes by the node's name.
		if st, err := m.engine.Stats(ctx, m.cfg.Name); err == nil {
			m.sample(m.cfg.Name, st)
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
func (m *Runtime) sample(id string, st engine.Stats) {
	now := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	prev, ok := m.stats[id]
	cpu := st.CPUNanos
	s := containerStats{at: now, cpuNanos: cpu, memory: st.WorkingSet, engine: st}
	if ok && now.After(prev.at) && cpu >= prev.cpuNanos {
		s.nanoCores = uint64(float64(cpu-prev.cpuNanos) / now.Sub(prev.at).Seconds())
	}
	m.stats[id] = s
}

// NodeUsage implements runtime.Runtime from the node container's stats.
func (m *Runtime) NodeUsage() (nanoCores, memory uint64, ok bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s, ok := m.stats[m.cfg.Name]
	if !ok {
		return 0, 0, false
	}
	return s.nanoCores, s.memory, true
}

func (m *Runtime) snapshotRecords() []*dockerPod {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]*dockerPod, 0, len(m.pods))
	for _, rec := range m.pods {
		out = append(out, rec)
	}
	return out
}

// Usage implements runtime.Runtime from the last samples.
func (m *Runtime) Usage(time.Time) []runtime.ContainerUsage {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []runtime.ContainerUsage
	for _, rec := range m.pods {
		if rec.pod == nil {
			continue
		}
		for _, c := range rec.containers {
			s, ok := m.stats[c.id]
			if c.id == "" || !ok || !c.state.Running {
				continue
			}
			out = append(out, runtime.ContainerUsage{
				Namespace: rec.pod.Namespace, Pod: rec.pod.Name, Container: c.name,
				CPUNanoCores: s.nanoCores, CPUUsageCoreNanoSeconds: s.cpuNanos,
				MemoryWorkingSetBytes: s.memory, StartTime: c.state.StartedAt,
				ID: c.id, Image: containerImage(rec.pod, c.name),
				MemoryUsageBytes: s.engine.MemoryUsage, MemoryRSSBytes: s.engine.RSS,
				FSReadBytes: s.engine.ReadBytes, FSWriteBytes: s.engine.WriteBytes,
			})
		}
	}
	return out
}

// PodNetworks implements runtime.NetworkStats from the sandboxes' samples.
func (m *Runtime) PodNetworks() []runtime.PodNetworkUsage {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []runtime.PodNetworkUsage
	for _, rec := range m.pods {
		s, ok := m.stats[rec.sandboxID]
		if rec.pod == nil || rec.sandboxID == "" || !ok || s.engine.Network == nil {
			continue
		}
		n := s.engine.Network
		out = append(out, runtime.PodNetworkUsage{
			Namespace: rec.pod.Namespace, Pod: rec.pod.Name, SandboxID: rec.sandboxID, Interface: "eth0",
			RxBytes: n.RxBytes, RxPackets: n.RxPackets, RxErrors: n.RxErrors, RxDropped: n.RxDropped,
			TxBytes: n.TxBytes, TxPackets: n.TxPackets, TxErrors: n.TxErrors, TxDropped: n.TxDropped,
		})
	}
	return out
}

// containerImage is the image the pod's spec gives the container.
func containerImage(pod *corev1.Pod, name string) string {
	for _, cs := range [][]corev1.Container{pod.Spec.InitContainers, pod.Spec.Containers} {
		for _, c := range cs {
			if c.Name == name {
				return c.Image
			}
		}
	}
	return ""
}
