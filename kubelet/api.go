package kubelet

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	statsapi "k8s.io/kubelet/pkg/apis/stats/v1alpha1"

	"minik.dev/minik/kubelet/runtime"
)

// containerLogs serves /containerLogs/{namespace}/{pod}/{container}.
func (s *server) containerLogs(w http.ResponseWriter, r *http.Request) {
	parts := strings.Split(strings.TrimPrefix(r.URL.Path, "/containerLogs/"), "/")
	if len(parts) != 3 || parts[0] == "" || parts[1] == "" || parts[2] == "" {
		http.Error(w, "expected /containerLogs/NAMESPACE/POD/CONTAINER", http.StatusBadRequest)
		return
	}
	ns, name, container := parts[0], parts[1], parts[2]
	q := r.URL.Query()
	follow := q.Get("follow") == "true"
	previous := q.Get("previous") == "true"
	timestamps := q.Get("timestamps") == "true"
	tail := int64(-1)
	if v := q.Get("tailLines"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			http.Error(w, "tailLines must be a non-negative integer", http.StatusBadRequest)
			return
		}
		tail = n
	}
	limit := int64(-1)
	if v := q.Get("limitBytes"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n <= 0 {
			http.Error(w, "limitBytes must be a positive integer", http.StatusBadRequest)
			return
		}
		limit = n
	}
	var since time.Time
	if v := q.Get("sinceSeconds"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n <= 0 {
			http.Error(w, "sinceSeconds must be a positive integer", http.StatusBadRequest)
			return
		}
		since = s.now().Add(-time.Duration(n) * time.Second)
	}
	if v := q.Get("sinceTime"); v != "" {
		t, err := time.Parse(time.RFC3339, v)
		if err != nil {
			http.Error(w, "sinceTime must be RFC3339", http.StatusBadRequest)
			return
		}
		since = t
	}

	view, ok := s.pods.lookup(ns, name)
	if !ok {
		http.Error(w, fmt.Sprintf("pod %s/%s not found on node %s", ns, name, s.cfg.Name), http.StatusNotFound)
		return
	}
	o := runtime.LogOptions{Follow: follow, Previous: previous, Timestamps: timestamps, Tail: tail, Since: since}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	out := &flushWriter{w: w, left: limit}
	out.flusher, _ = w.(http.Flusher)
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	out.full = cancel
	if err := s.runtime.Logs(ctx, view.pod, container, o, out); err != nil && !out.wrote && ctx.Err() == nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
	}
}

// flushWriter flushes every write and stops after limitBytes.
type flushWriter struct {
	w       io.Writer
	flusher http.Flusher
	left    int64 // -1 for no limit
	full    func()
	wrote   bool
}

func (f *flushWriter) Write(p []byte) (int, error) {
	n := len(p)
	if f.left >= 0 {
		if int64(len(p)) > f.left {
			p = p[:f.left]
		}
		f.left -= int64(len(p))
	}
	if len(p) > 0 {
		f.wrote = true
		if _, err := f.w.Write(p); err != nil {
			return 0, err
		}
		if f.flusher != nil {
			f.flusher.Flush()
		}
	}
	if f.left == 0 {
		f.full()
		return len(p), io.ErrShortWrite
	}
	return n, nil
}

// listPods serves /pods: the pods this node runs.
func (s *server) listPods(w http.ResponseWriter, _ *http.Request) {
	list := corev1.PodList{TypeMeta: metav1.TypeMeta{Kind: "PodList", APIVersion: "v1"}}
	for _, v := range s.pods.snapshot() {
		p := v.pod.DeepCopy()
		p.Status = v.status
		list.Items = append(list.Items, *p)
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(list)
}

// nodeUsage integrates the node's CPU over time, so its counter never goes
// back when a pod goes away.
type nodeUsage struct {
	mu         sync.Mutex
	last       time.Time
	cpuSeconds float64
}

// nodeBaseCPU and nodeBaseMemory are what the node itself uses besides pods.
const (
	nodeBaseNanoCores = 20_000_000 // 20m
	nodeBaseMemory    = 128 << 20
)

// nodeTotals returns the node's cumulative CPU seconds, current nano cores
// and working set.
func (s *server) nodeTotals(now time.Time, samples []runtime.ContainerUsage) (cpuSeconds float64, nanoCores, memory uint64) {
	nanoCores, memory = nodeBaseNanoCores, nodeBaseMemory
	if c, m, ok := s.runtime.NodeUsage(); ok {
		nanoCores, memory = c, m
	}
	for _, smp := range samples {
		nanoCores += smp.CPUNanoCores
		memory += smp.MemoryWorkingSetBytes
	}
	s.usage.mu.Lock()
	defer s.usage.mu.Unlock()
	if s.usage.last.IsZero() {
		s.usage.last = s.started
	}
	if now.After(s.usage.last) {
		s.usage.cpuSeconds += float64(nanoCores) / 1e9 * now.Sub(s.usage.last).Seconds()
		s.usage.last = now
	}
	return s.usage.cpuSeconds, nanoCores, memory
}

// resourceMetrics serves /metrics/resource in the Prometheus text format
// with the kubelet's metric names, which metrics-server reads.
func (s *server) resourceMetrics(w http.ResponseWriter, _ *http.Request) {
	// Counters are read at the instant the (millisecond) timestamps say, so
	// rates computed from them carry no rounding error.
	now := s.now().Truncate(time.Millisecond)
	ms := now.UnixMilli()
	samples := s.runtime.Usage(now)
	cpuSeconds, _, memory := s.nodeTotals(now, samples)
	w.Header().Set("Content-Type", "text/plain; version=0.0.4")
	b := bufio.NewWriter(w)
	defer b.Flush()
	fmt.Fprintf(b, "# HELP container_cpu_usage_seconds_total [STABLE] Cumulative cpu time consumed by the container in core-seconds\n# TYPE container_cpu_usage_seconds_total counter\n")
	for _, smp := range samples {
		fmt.Fprintf(b, "container_cpu_usage_seconds_total{container=%q,namespace=%q,pod=%q} %g %d\n", smp.Container, smp.Namespace, smp.Pod, float64(smp.CPUUsageCoreNanoSeconds)/1e9, ms)
	}
	fmt.Fprintf(b, "# HELP container_memory_working_set_bytes [STABLE] Current working set of the container in bytes\n# TYPE container_memory_working_set_bytes gauge\n")
	for _, smp := range samples {
		fmt.Fprintf(b, "container_memory_working_set_bytes{container=%q,namespace=%q,pod=%q} %d %d\n", smp.Container, smp.Namespace, smp.Pod, smp.MemoryWorkingSetBytes, ms)
	}
	fmt.Fprintf(b, "# HELP container_start_time_seconds [STABLE] Start time of the container since unix epoch in seconds\n# TYPE container_start_time_seconds gauge\n")
	for _, smp := range samples {
		fmt.Fprintf(b, "container_start_time_seconds{container=%q,namespace=%q,pod=%q} %g %d\n", smp.Container, smp.Namespace, smp.Pod, float64(smp.StartTime.UnixNano())/1e9, ms)
	}
	fmt.Fprintf(b, "# HELP node_cpu_usage_seconds_total [STABLE] Cumulative cpu time consumed by the node in core-seconds\n# TYPE node_cpu_usage_seconds_total counter\nnode_cpu_usage_seconds_total %g %d\n", cpuSeconds, ms)
	fmt.Fprintf(b, "# HELP node_memory_working_set_bytes [STABLE] Current working set of the node in bytes\n# TYPE node_memory_working_set_bytes gauge\nnode_memory_working_set_bytes %d %d\n", memory, ms)
	fmt.Fprintf(b, "# HELP scrape_error [ALPHA] 1 if there was an error while getting container metrics, 0 otherwise\n# TYPE scrape_error gauge\nscrape_error 0\n")
}

// statsSummary serves /stats/summary.
func (s *server) statsSummary(w http.ResponseWriter, _ *http.Request) {
	now := s.now()
	samples := s.runtime.Usage(now)
	cpuSeconds, nanoCores, memory := s.nodeTotals(now, samples)
	t := metav1.NewTime(now)
	u64 := func(v uint64) *uint64 { return &v }
	summary := statsapi.Summary{
		Node: statsapi.NodeStats{
			NodeName:  s.cfg.Name,
			StartTime: metav1.NewTime(s.started),
			CPU:       &statsapi.CPUStats{Time: t, UsageNanoCores: u64(nanoCores), UsageCoreNanoSeconds: u64(uint64(cpuSeconds * 1e9))},
			Memory:    &statsapi.MemoryStats{Time: t, WorkingSetBytes: u64(memory), UsageBytes: u64(memory)},
		},
		Pods: []statsapi.PodStats{},
	}
	byPod := map[string]*statsapi.PodStats{}
	for _, v := range s.pods.snapshot() {
		ps := statsapi.PodStats{PodRef: statsapi.PodReference{Name: v.pod.Name, Namespace: v.pod.Namespace, UID: string(v.pod.UID)}}
		if v.status.StartTime != nil {
			ps.StartTime = *v.status.StartTime
		}
		summary.Pods = append(summary.Pods, ps)
	}
	for i := range summary.Pods {
		byPod[summary.Pods[i].PodRef.Namespace+"/"+summary.Pods[i].PodRef.Name] = &summary.Pods[i]
	}
	for _, smp := range samples {
		ps := byPod[smp.Namespace+"/"+smp.Pod]
		if ps == nil {
			continue
		}
		ps.Containers = append(ps.Containers, statsapi.ContainerStats{
			Name:      smp.Container,
			StartTime: metav1.NewTime(smp.StartTime),
			CPU:       &statsapi.CPUStats{Time: t, UsageNanoCores: u64(smp.CPUNanoCores), UsageCoreNanoSeconds: u64(smp.CPUUsageCoreNanoSeconds)},
			Memory:    &statsapi.MemoryStats{Time: t, WorkingSetBytes: u64(smp.MemoryWorkingSetBytes)},
		})
	}
	for i := range summary.Pods {
		ps := &summary.Pods[i]
		var cpu, cum, mem uint64
		for _, c := range ps.Containers {
			cpu += *c.CPU.UsageNanoCores
			cum += *c.CPU.UsageCoreNanoSeconds
			mem += *c.Memory.WorkingSetBytes
		}
		ps.CPU = &statsapi.CPUStats{Time: t, UsageNanoCores: u64(cpu), UsageCoreNanoSeconds: u64(cum)}
		ps.Memory = &statsapi.MemoryStats{Time: t, WorkingSetBytes: u64(mem)}
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(summary)
}
