package sim

import (
	"fmt"
	"sort"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// Event is one event the kubelet would record on the pod.
type Event struct {
	Type    string // corev1.EventTypeNormal or corev1.EventTypeWarning
	Reason  string
	Message string
}

// Event reasons, as the kubelet records them.
const (
	EventPulled  = "Pulled"
	EventCreated = "Created"
	EventStarted = "Started"
	EventBackOff = "BackOff"
	EventKilling = "Killing"
)

// Events lists what a kubelet would have reported between two statuses of
// the same pod, oldest first; old may be nil or the zero status. Transitions
// are found from restart counts and states, so it works across any gap. When
// several runs of one container fall between old and new, each kind of event
// is reported once for it: the event recorder would only have counted repeats.
//
// Killing is reported for a container that went from Running to Terminated
// after the deletion was requested (pod.DeletionTimestamp minus its grace
// period). Since Terminating does not change the status before the stop
// completes, an agent wanting it at deletion time can diff against the final
// status: Events(pod, cur, Terminating(pod, plan, cur, req, done)).
func Events(pod *corev1.Pod, old, new *corev1.PodStatus) []Event {
	if pod == nil || new == nil {
		return nil
	}
	if old == nil {
		old = &corev1.PodStatus{}
	}
	type timed struct {
		at time.Time
		ev Event
	}
	var out []timed
	add := func(at time.Time, typ, reason, message string) {
		out = append(out, timed{at, Event{Type: typ, Reason: reason, Message: message}})
	}

	lifecycle := func(specs []corev1.Container, olds, news []corev1.ContainerStatus) {
		for i := range specs {
			c := &specs[i]
			n := findStatus(news, c.Name)
			if n == nil {
				continue
			}
			o := findStatus(olds, c.Name)
			if o == nil {
				o = &corev1.ContainerStatus{}
			}
			if backOffs(n) > backOffs(o) {
				at := lastStart(n)
				if lt := n.LastTerminationState.Terminated; lt != nil {
					at = lt.FinishedAt.Time
				}
				add(at, corev1.EventTypeWarning, EventBackOff,
					fmt.Sprintf("Back-off restarting failed container %s in pod %s", c.Name, podRef(pod)))
			}
			if starts(n) > starts(o) {
				at := lastStart(n)
				add(at, corev1.EventTypeNormal, EventPulled, fmt.Sprintf("Container image %q already present on machine", c.Image))
				add(at, corev1.EventTypeNormal, EventCreated, fmt.Sprintf("Created container: %s", c.Name))
				add(at, corev1.EventTypeNormal, EventStarted, fmt.Sprintf("Started container %s", c.Name))
			}
		}
	}
	lifecycle(pod.Spec.InitContainers, old.InitContainerStatuses, new.InitContainerStatuses)
	lifecycle(pod.Spec.Containers, old.ContainerStatuses, new.ContainerStatuses)

	if requested, ok := deletionRequestedAt(pod); ok {
		killing := func(c *corev1.Container, olds, news []corev1.ContainerStatus) {
			o, n := findStatus(olds, c.Name), findStatus(news, c.Name)
			if o == nil || n == nil || o.State.Running == nil || n.State.Terminated == nil ||
				n.State.Terminated.FinishedAt.Time.Before(requested) {
				return
			}
			add(requested, corev1.EventTypeNormal, EventKilling, fmt.Sprintf("Stopping container %s", c.Name))
		}
		// The kubelet stops app containers first, then sidecars in reverse order.
		for i := range pod.Spec.Containers {
			killing(&pod.Spec.Containers[i], old.ContainerStatuses, new.ContainerStatuses)
		}
		for i := len(pod.Spec.InitContainers) - 1; i >= 0; i-- {
			killing(&pod.Spec.InitContainers[i], old.InitContainerStatuses, new.InitContainerStatuses)
		}
	}

	sort.SliceStable(out, func(i, j int) bool { return out[i].at.Before(out[j].at) })
	events := make([]Event, 0, len(out))
	for _, t := range out {
		events = append(events, t.ev)
	}
	return events
}

// deletionRequestedAt is when the pod's deletion was requested: the API sets
// DeletionTimestamp to that instant plus the grace period.
func deletionRequestedAt(pod *corev1.Pod) (time.Time, bool) {
	if pod.DeletionTimestamp == nil {
		return time.Time{}, false
	}
	t := pod.DeletionTimestamp.Time
	if pod.DeletionGracePeriodSeconds != nil {
		t = t.Add(-time.Duration(*pod.DeletionGracePeriodSeconds) * time.Second)
	}
	return t, true
}

func findStatus(list []corev1.ContainerStatus, name string) *corev1.ContainerStatus {
	for i := range list {
		if list[i].Name == name {
			return &list[i]
		}
	}
	return nil
}

// everStarted reports whether the status shows a run that has started.
func everStarted(cs *corev1.ContainerStatus) bool {
	return cs.State.Running != nil || cs.State.Terminated != nil ||
		cs.LastTerminationState.Terminated != nil || cs.RestartCount > 0
}

// starts counts the runs the container has started.
func starts(cs *corev1.ContainerStatus) int64 {
	if !everStarted(cs) {
		return 0
	}
	return int64(cs.RestartCount) + 1
}

// backOffs counts the crash-loop back-offs the container has entered: one
// before each restart, plus the current one.
func backOffs(cs *corev1.ContainerStatus) int64 {
	n := int64(cs.RestartCount)
	if inBackOff(cs) {
		n++
	}
	return n
}

func inBackOff(cs *corev1.ContainerStatus) bool {
	return cs.State.Waiting != nil && cs.State.Waiting.Reason == ReasonCrashLoopBackOff
}

// lastStart is when the latest run started (zero if none).
func lastStart(cs *corev1.ContainerStatus) time.Time {
	switch {
	case cs.State.Running != nil:
		return cs.State.Running.StartedAt.Time
	case cs.State.Terminated != nil:
		return cs.State.Terminated.StartedAt.Time
	case cs.LastTerminationState.Terminated != nil:
		return cs.LastTerminationState.Terminated.StartedAt.Time
	}
	return time.Time{}
}
