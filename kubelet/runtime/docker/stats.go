package docker

import (
	"context"
	"time"

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
func (m *Runtime) sample(id string, cpu, mem uint64) {
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
			})
		}
	}
	return out
}
