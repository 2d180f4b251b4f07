package sim

import (
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// DefaultGracePeriod is the API default of terminationGracePeriodSeconds.
const DefaultGracePeriod = 30 * time.Second

// Exit code of a container killed with SIGKILL because it outlived the grace period.
const exitCodeKilled = 137

// GracePeriod is how long the pod's containers may take to stop: the
// deletion's grace period if the pod is being deleted, else the spec's.
func GracePeriod(pod *corev1.Pod) time.Duration {
	switch {
	case pod == nil:
		return DefaultGracePeriod
	case pod.DeletionGracePeriodSeconds != nil:
		return time.Duration(max(*pod.DeletionGracePeriodSeconds, 0)) * time.Second
	case pod.Spec.TerminationGracePeriodSeconds != nil:
		return time.Duration(max(*pod.Spec.TerminationGracePeriodSeconds, 0)) * time.Second
	}
	return DefaultGracePeriod
}

// Terminating is the status of a pod being deleted, given current (its
// status when the deletion was requested, normally Status(..., deletionRequested)),
// and done, the instant its containers have stopped and the agent may remove
// the pod: deletionRequested + min(stop-delay, grace period), or
// deletionRequested itself when no container is running.
//
// Until done the status is current unchanged: the containers are still
// stopping and nothing restarts any more. From done on, running containers
// are Terminated: exit 0 "Completed" when stop-delay fits in the grace period
// (a process that handles SIGTERM and exits cleanly), else exit 137 "Error"
// (SIGKILL at the end of the grace period). A container waiting in back-off
// shows its last termination as its state. The phase becomes Succeeded if
// every app container ended with exit 0, else Failed (a terminal pod keeps
// its phase), and the sandbox and readiness conditions turn False.
func Terminating(pod *corev1.Pod, plan Plan, current corev1.PodStatus, deletionRequested, now time.Time) (corev1.PodStatus, time.Time) {
	deletionRequested, now = deletionRequested.Round(0), now.Round(0)
	st := current.DeepCopy()
	grace := GracePeriod(pod)
	done := deletionRequested
	if anyRunning(st) {
		done = deletionRequested.Add(min(max(plan.StopDelay, 0), grace))
	}
	if now.Before(done) {
		return *st, done
	}

	exitCode, reason := int32(0), ReasonCompleted
	if plan.StopDelay > grace {
		exitCode, reason = exitCodeKilled, ReasonError
	}
	stop := func(list []corev1.ContainerStatus) {
		for i := range list {
			cs := &list[i]
			switch {
			case cs.State.Running != nil:
				cs.State = corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
					ExitCode:    exitCode,
					Reason:      reason,
					StartedAt:   cs.State.Running.StartedAt,
					FinishedAt:  metav1.Time{Time: done},
					ContainerID: cs.ContainerID,
				}}
			case cs.State.Waiting != nil && cs.LastTerminationState.Terminated != nil:
				// No restart will come: the last run is the final state.
				cs.State = cs.LastTerminationState
				cs.LastTerminationState = corev1.ContainerState{}
			default:
				continue
			}
			cs.Ready = false
			cs.Started = boolPtr(false)
		}
	}
	stop(st.InitContainerStatuses)
	stop(st.ContainerStatuses)

	if st.Phase != corev1.PodSucceeded && st.Phase != corev1.PodFailed {
		st.Phase = corev1.PodSucceeded
		for _, cs := range st.ContainerStatuses {
			if cs.State.Terminated == nil || cs.State.Terminated.ExitCode != 0 {
				st.Phase = corev1.PodFailed
			}
		}
	}
	terminalReason := reasonPodCompleted
	if st.Phase == corev1.PodFailed {
		terminalReason = reasonPodFailed
	}
	for i := range st.Conditions {
		c := &st.Conditions[i]
		since := c.LastTransitionTime.Time
		if c.Status == corev1.ConditionTrue {
			since = done
		}
		switch c.Type {
		case corev1.PodReadyToStartContainers:
			if c.Status == corev1.ConditionTrue {
				setCondition(c, corev1.ConditionFalse, reasonSandboxNotReady, messageSandboxNotReady, since)
			}
		case corev1.ContainersReady, corev1.PodReady:
			setCondition(c, corev1.ConditionFalse, terminalReason, "", since)
		}
	}
	return *st, done
}

func anyRunning(st *corev1.PodStatus) bool {
	for _, list := range [][]corev1.ContainerStatus{st.InitContainerStatuses, st.ContainerStatuses} {
		for _, cs := range list {
			if cs.State.Running != nil {
				return true
			}
		}
	}
	return false
}
