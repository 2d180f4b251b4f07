package sim

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"time"

	corev1 "k8s.io/api/core/v1"

	"minik.dev/minik/kubelet/runtime"
)

// MaxLogLines bounds what Logs returns: the last lines are kept.
const MaxLogLines = 10000

// LogLine is one line of a container's output. The kubelet prints Time as
// RFC3339Nano before Text when timestamps are requested.
type LogLine struct {
	Time time.Time
	Text string
}

// Logs returns the output of one run of a container up to now: the current
// run, or with previous the one before it. Like the kubelet, a container
// waiting to restart shows its last run as current. Each run prints
// "started container NAME" and the plan's log lines when it starts, then,
// with a log interval, "tick N from NAME" every interval while it runs.
func Logs(pod *corev1.Pod, plan Plan, container string, status corev1.PodStatus, previous bool, now time.Time) ([]LogLine, error) {
	if pod == nil {
		pod = &corev1.Pod{}
	}
	if !hasContainer(pod, container) {
		return nil, fmt.Errorf("container %q is not valid for pod %q", container, pod.Name)
	}
	cs := findStatus(status.InitContainerStatuses, container)
	if cs == nil {
		cs = findStatus(status.ContainerStatuses, container)
	}
	if cs == nil {
		cs = &corev1.ContainerStatus{}
	}

	// The kubelet's choice of container (validateContainerLogStatus).
	var started, finished time.Time // finished zero: still running
	last := cs.LastTerminationState.Terminated
	switch {
	case previous:
		if last == nil {
			return nil, fmt.Errorf("previous terminated container %q in pod %q not found", container, pod.Name)
		}
		started, finished = last.StartedAt.Time, last.FinishedAt.Time
	case cs.State.Running != nil:
		started = cs.State.Running.StartedAt.Time
	case cs.State.Terminated != nil:
		started, finished = cs.State.Terminated.StartedAt.Time, cs.State.Terminated.FinishedAt.Time
	case last != nil:
		started, finished = last.StartedAt.Time, last.FinishedAt.Time
	default:
		reason := ReasonContainerCreating
		if cs.State.Waiting != nil && cs.State.Waiting.Reason != "" {
			reason = cs.State.Waiting.Reason
		}
		return nil, fmt.Errorf("container %q in pod %q is waiting to start: %s", container, pod.Name, reason)
	}
	return runLogs(plan, container, started, finished, now.Round(0)), nil
}

func hasContainer(pod *corev1.Pod, name string) bool {
	for _, list := range [][]corev1.Container{pod.Spec.InitContainers, pod.Spec.Containers} {
		for i := range list {
			if list[i].Name == name {
				return true
			}
		}
	}
	return false
}

// runLogs computes the lines of a run that started at started and ended at
// finished (zero while running), as of now. Ticks are counted, not
// generated, so a long run with a short interval costs only the returned tail.
func runLogs(plan Plan, name string, started, finished, now time.Time) []LogLine {
	if now.Before(started) {
		return nil
	}
	header := make([]string, 0, 1+len(plan.Logs))
	header = append(header, "started container "+name)
	header = append(header, plan.Logs...)

	// Ticks at started + n*interval, n >= 1, while running (before finished) and by now.
	var ticks int64
	if iv := plan.LogInterval; iv > 0 {
		ticks = int64(now.Sub(started) / iv)
		if !finished.IsZero() {
			if d := finished.Sub(started); d <= 0 {
				ticks = 0
			} else {
				ticks = min(ticks, int64((d-1)/iv))
			}
		}
	}

	total := int64(len(header)) + ticks
	skip := max(total-MaxLogLines, 0)
	lines := make([]LogLine, 0, total-skip)
	for i := skip; i < int64(len(header)); i++ {
		lines = append(lines, LogLine{Time: started, Text: header[i]})
	}
	for n := max(skip-int64(len(header)), 0) + 1; n <= ticks; n++ {
		lines = append(lines, LogLine{
			Time: started.Add(time.Duration(n) * plan.LogInterval),
			Text: fmt.Sprintf("tick %d from %s", n, name),
		})
	}
	return lines
}

// followPoll is how often a followed log looks for new lines.
const followPoll = 200 * time.Millisecond

// Logs implements runtime.Runtime: the lines of the container's current
// (or previous) run so far; following goes on while the run does.
func (r *Runtime) Logs(ctx context.Context, pod *corev1.Pod, container string, o runtime.LogOptions, w io.Writer) error {
	apiPod, plan, status, ok := r.view(pod.UID)
	if !ok {
		return fmt.Errorf("pod %s/%s is not running on this node", pod.Namespace, pod.Name)
	}
	lines, err := Logs(apiPod, plan, container, status, o.Previous, r.now())
	if err != nil {
		return err
	}
	out := bufio.NewWriter(w)
	var last time.Time
	write := func(lines []LogLine) error {
		for _, l := range lines {
			if !o.Since.IsZero() && l.Time.Before(o.Since) {
				continue
			}
			if o.Timestamps {
				_, _ = out.WriteString(l.Time.UTC().Format(time.RFC3339Nano) + " ")
			}
			_, _ = out.WriteString(l.Text + "\n")
			last = l.Time
		}
		return out.Flush()
	}
	if o.Tail >= 0 && int64(len(lines)) > o.Tail {
		lines = lines[int64(len(lines))-o.Tail:]
	}
	sent := len(lines)
	if err := write(lines); err != nil || !o.Follow || o.Previous {
		return nil
	}
	restarts := restartCount(status, container)
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(followPoll):
		}
		apiPod, plan, status, ok = r.view(pod.UID)
		if !ok || restartCount(status, container) != restarts || !running(status, container) {
			return nil
		}
		all, err := Logs(apiPod, plan, container, status, false, r.now())
		if err != nil {
			return nil
		}
		var fresh []LogLine
		for i, l := range all {
			if l.Time.After(last) || (l.Time.Equal(last) && i >= sent) {
				fresh = append(fresh, l)
			}
		}
		sent = len(all)
		if err := write(fresh); err != nil {
			return nil
		}
	}
}

func restartCount(st corev1.PodStatus, container string) int32 {
	for _, c := range st.ContainerStatuses {
		if c.Name == container {
			return c.RestartCount
		}
	}
	return -1
}

func running(st corev1.PodStatus, container string) bool {
	for _, c := range append(append([]corev1.ContainerStatus{}, st.InitContainerStatuses...), st.ContainerStatuses...) {
		if c.Name == container {
			return c.State.Running != nil
		}
	}
	return false
}
