package sim

import (
	"errors"
	"sort"
	"time"

	corev1 "k8s.io/api/core/v1"

	"minik.dev/minik/kubelet/runtime"
)

// cpuCounter integrates one container run's CPU use over time. The sim
// runtime's own counter is rate × uptime, which would jump (or go back)
// when a live annotation changes the rate; integrating keeps the counter
// monotonic and makes a rate computed between two scrapes the real one.
type cpuCounter struct {
	containerID string
	last        time.Time
	nanoCores   uint64
	total       uint64 // core-nanoseconds at last
}

// advance integrates the current rate up to now and then uses nanoCores.
func (c *cpuCounter) advance(now time.Time, nanoCores uint64) uint64 {
	if now.After(c.last) {
		c.total = Integrate(c.total, c.nanoCores, now.Sub(c.last))
		c.last = now
	}
	c.nanoCores = nanoCores
	return c.total
}

// usageAnnotations are the annotations a running pod may change live.
var usageAnnotations = []string{AnnotationCPU, AnnotationMemory}

// usageKey is what the usage annotations of pod say, to notice a change.
func usageKey(pod *corev1.Pod) [2]string {
	var k [2]string
	for i, a := range usageAnnotations {
		if v, ok := pod.Annotations[a]; ok {
			k[i] = "=" + v
		}
	}
	return k
}

// updateUsage applies changed usage annotations to a running pod: the rest
// of the plan (timings, exit codes) fixes the pod's timeline and stays as
// admitted. A value that does not parse keeps the previous one and becomes
// a Warning event. Called with r.mu held.
func (r *Runtime) updateUsage(rec *simPod, pod *corev1.Pod, now time.Time) {
	key := usageKey(pod)
	if key == rec.usageKey {
		return
	}
	rec.usageKey = key
	parsed, errs := ParsePlan(pod)
	bad := map[string]bool{}
	for _, err := range errs {
		var ae *AnnotationError
		if errors.As(err, &ae) && (ae.Key == AnnotationCPU || ae.Key == AnnotationMemory) {
			bad[ae.Key] = true
			r.recorder.Event(pod, corev1.EventTypeWarning, "InvalidAnnotation", err.Error())
		}
	}
	if !bad[AnnotationCPU] {
		rec.plan.CPU = parsed.CPU
	}
	if !bad[AnnotationMemory] {
		rec.plan.Memory = parsed.Memory
	}
	for _, c := range rec.counters {
		c.advance(now, rec.plan.CPUNanoCores())
	}
}

// Usage implements runtime.Runtime: every running container's synthesized
// use at now, with CPU counters that never go back.
func (r *Runtime) Usage(now time.Time) []runtime.ContainerUsage {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []runtime.ContainerUsage
	for _, rec := range r.pods {
		if rec.pod == nil {
			continue
		}
		seen := map[string]bool{}
		for _, cs := range rec.status.ContainerStatuses {
			u, ok := ContainerUsage(rec.plan, cs, now)
			if !ok {
				continue
			}
			seen[cs.Name] = true
			c := rec.counters[cs.Name]
			if c == nil || c.containerID != cs.ContainerID {
				// A new run: its use so far is what the sim runtime says.
				c = &cpuCounter{containerID: cs.ContainerID, last: now, nanoCores: u.CPUNanoCores, total: u.CPUUsageCoreNanoSeconds}
				if rec.counters == nil {
					rec.counters = map[string]*cpuCounter{}
				}
				rec.counters[cs.Name] = c
			}
			u.CPUUsageCoreNanoSeconds = max(c.advance(now, u.CPUNanoCores), 1)
			out = append(out, runtime.ContainerUsage{
				Namespace: rec.pod.Namespace, Pod: rec.pod.Name, Container: cs.Name,
				CPUNanoCores: u.CPUNanoCores, CPUUsageCoreNanoSeconds: u.CPUUsageCoreNanoSeconds,
				MemoryWorkingSetBytes: u.MemoryWorkingSetBytes, StartTime: u.StartTime,
				// A simulated container's memory is all working set.
				ID: cs.ContainerID, Image: cs.Image, MemoryUsageBytes: u.MemoryWorkingSetBytes,
			})
		}
		for name := range rec.counters {
			if !seen[name] {
				delete(rec.counters, name)
			}
		}
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.Namespace != b.Namespace {
			return a.Namespace < b.Namespace
		}
		if a.Pod != b.Pod {
			return a.Pod < b.Pod
		}
		return a.Container < b.Container
	})
	return out
}
