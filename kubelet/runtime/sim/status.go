package sim

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// Container state reasons, as the kubelet reports them.
const (
	ReasonContainerCreating = "ContainerCreating"
	ReasonPodInitializing   = "PodInitializing"
	ReasonCrashLoopBackOff  = "CrashLoopBackOff"
	ReasonCompleted         = "Completed"
	ReasonError             = "Error"
)

// Pod condition reasons and messages, as the kubelet reports them.
const (
	reasonContainersNotReady       = "ContainersNotReady"
	reasonContainersNotInitialized = "ContainersNotInitialized"
	reasonReadinessGatesNotReady   = "ReadinessGatesNotReady"
	reasonPodCompleted             = "PodCompleted"
	reasonPodFailed                = "PodFailed"
	reasonSandboxNotReady          = "PodSandboxNotReady"
	messageNoSandbox               = "no pod sandbox exists"
	messageSandboxNotReady         = "pod sandbox is not ready"
)

// Status is the pod's status at now, for a pod admitted at start, and the
// earliest instant after now at which it will change (zero if never). It sets
// StartTime but leaves the IPs and QOSClass to the caller. Condition
// transition times are the simulated instants of the transitions, so calling
// again with the same arguments (e.g. after an agent restart) gives the same
// status.
//
// Pass start with whole seconds: the API stores StartTime at second
// precision, and a start read back from it must give the same timeline.
func Status(pod *corev1.Pod, plan Plan, start, now time.Time) (corev1.PodStatus, time.Time) {
	if pod == nil {
		pod = &corev1.Pod{}
	}
	// Monotonic readings would make equal instants compare unequal.
	start, now = start.Round(0), now.Round(0)
	tl := newTimeline(pod, plan, start)
	rs := tl.runStateAt(now)
	st := corev1.PodStatus{
		ObservedGeneration:    pod.Generation,
		StartTime:             &metav1.Time{Time: start},
		InitContainerStatuses: tl.initStatuses(now),
		ContainerStatuses:     tl.appStatuses(now, rs),
	}
	st.Phase = tl.phase(rs)
	st.Conditions = tl.conditions(now, rs, &st)
	return st, tl.nextChange(now, rs)
}

func (tl *timeline) phase(rs runState) corev1.PodPhase {
	switch rs.phase {
	case runNotStarted:
		return corev1.PodPending
	case runExited:
		// Every app container exits the same way, so all succeed or all fail.
		if tl.run.exitCode == 0 {
			return corev1.PodSucceeded
		}
		return corev1.PodFailed
	default:
		// Running, or restarting (back-off) under Always/OnFailure.
		return corev1.PodRunning
	}
}

func (tl *timeline) newContainerStatus(c *corev1.Container) corev1.ContainerStatus {
	return corev1.ContainerStatus{Name: c.Name, Image: c.Image, Started: boolPtr(false)}
}

// created fills what exists once the container of run k has been created,
// with the resources it runs with: the kubelet accepts every resize at
// once, so they are the spec's, and its requests are what is allocated.
func (tl *timeline) created(cs *corev1.ContainerStatus, k int64) {
	cs.RestartCount = int32(k)
	cs.ContainerID = ContainerID(tl.pod.UID, cs.Name, cs.RestartCount)
	cs.ImageID = ImageID(cs.Image)
	for _, list := range [][]corev1.Container{tl.pod.Spec.InitContainers, tl.pod.Spec.Containers} {
		for i := range list {
			if list[i].Name == cs.Name {
				cs.Resources = list[i].Resources.DeepCopy()
				cs.AllocatedResources = list[i].Resources.Requests.DeepCopy()
				return
			}
		}
	}
}

func (tl *timeline) terminated(cs *corev1.ContainerStatus, k int64, exitCode int32, started, finished time.Time) *corev1.ContainerStateTerminated {
	reason := ReasonCompleted
	if exitCode != 0 {
		reason = ReasonError
	}
	return &corev1.ContainerStateTerminated{
		ExitCode:    exitCode,
		Reason:      reason,
		StartedAt:   metav1.Time{Time: started},
		FinishedAt:  metav1.Time{Time: finished},
		ContainerID: ContainerID(tl.pod.UID, cs.Name, int32(k)),
	}
}

func (tl *timeline) initStatuses(t time.Time) []corev1.ContainerStatus {
	if len(tl.inits) == 0 {
		return nil
	}
	term, isTerm := tl.terminal()
	out := make([]corev1.ContainerStatus, 0, len(tl.inits))
	for i, s := range tl.inits {
		cs := tl.newContainerStatus(&tl.pod.Spec.InitContainers[i])
		switch {
		case t.Before(s.start):
			reason := ReasonPodInitializing
			if i == 0 && t.Before(tl.sandbox) {
				reason = ReasonContainerCreating
			}
			cs.State.Waiting = &corev1.ContainerStateWaiting{Reason: reason}
		case s.sidecar && isTerm && !t.Before(term):
			// Sidecars are stopped once the app containers are done.
			tl.created(&cs, 0)
			cs.State.Terminated = tl.terminated(&cs, 0, 0, s.start, term)
		case s.sidecar:
			tl.created(&cs, 0)
			cs.State.Running = &corev1.ContainerStateRunning{StartedAt: metav1.Time{Time: s.start}}
			cs.Started = boolPtr(!t.Before(s.started))
			cs.Ready = !t.Before(s.ready)
		case t.Before(s.end):
			tl.created(&cs, 0)
			cs.State.Running = &corev1.ContainerStateRunning{StartedAt: metav1.Time{Time: s.start}}
			cs.Started = boolPtr(true)
		default:
			tl.created(&cs, 0)
			cs.State.Terminated = tl.terminated(&cs, 0, 0, s.start, s.end)
			// The kubelet reports a successfully completed init container as ready.
			cs.Ready = true
		}
		out = append(out, cs)
	}
	return out
}

func (tl *timeline) appStatuses(t time.Time, rs runState) []corev1.ContainerStatus {
	if len(tl.apps) == 0 {
		return nil
	}
	waitReason := ReasonContainerCreating
	if len(tl.inits) > 0 {
		waitReason = ReasonPodInitializing
	}
	out := make([]corev1.ContainerStatus, 0, len(tl.apps))
	for i, d := range tl.apps {
		cs := tl.newContainerStatus(&tl.pod.Spec.Containers[i])
		switch rs.phase {
		case runNotStarted:
			cs.State.Waiting = &corev1.ContainerStateWaiting{Reason: waitReason}
		case runRunning:
			tl.created(&cs, rs.k)
			cs.State.Running = &corev1.ContainerStateRunning{StartedAt: metav1.Time{Time: rs.start}}
			if rs.k > 0 {
				ps, pe := tl.previousRun(rs)
				cs.LastTerminationState.Terminated = tl.terminated(&cs, rs.k-1, tl.run.exitCode, ps, pe)
			}
			cs.Started = boolPtr(!t.Before(rs.start.Add(d.started)))
			cs.Ready = !t.Before(rs.start.Add(d.ready))
		case runBackOff:
			tl.created(&cs, rs.k)
			cs.State.Waiting = &corev1.ContainerStateWaiting{
				Reason: ReasonCrashLoopBackOff,
				Message: fmt.Sprintf("back-off %s restarting failed container=%s pod=%s",
					tl.run.backOff(rs.k), cs.Name, podRef(tl.pod)),
			}
			cs.LastTerminationState.Terminated = tl.terminated(&cs, rs.k, tl.run.exitCode, rs.start, rs.end)
		case runExited:
			tl.created(&cs, rs.k)
			cs.State.Terminated = tl.terminated(&cs, rs.k, tl.run.exitCode, rs.start, rs.end)
		}
		out = append(out, cs)
	}
	return out
}

// conditions builds the kubelet-owned conditions in the kubelet's order,
// after the conditions other components own, which are kept as they are.
func (tl *timeline) conditions(t time.Time, rs runState, st *corev1.PodStatus) []corev1.PodCondition {
	gen := tl.pod.Generation
	var out []corev1.PodCondition
	var scheduled *corev1.PodCondition
	for _, c := range tl.pod.Status.Conditions {
		switch c.Type {
		case corev1.PodScheduled:
			scheduled = c.DeepCopy()
		case corev1.PodReadyToStartContainers, corev1.PodInitialized, corev1.ContainersReady, corev1.PodReady:
		default:
			out = append(out, c)
		}
	}
	gates := out // readiness gates refer to conditions owned by others

	sandbox := corev1.PodCondition{Type: corev1.PodReadyToStartContainers, ObservedGeneration: gen}
	term, isTerm := tl.terminal()
	switch {
	case t.Before(tl.sandbox):
		setCondition(&sandbox, corev1.ConditionFalse, reasonSandboxNotReady, messageNoSandbox, tl.start)
	case isTerm && !t.Before(term):
		// The kubelet removes the sandbox of a finished pod.
		setCondition(&sandbox, corev1.ConditionFalse, reasonSandboxNotReady, messageSandboxNotReady, term)
	default:
		setCondition(&sandbox, corev1.ConditionTrue, "", "", tl.sandbox)
	}

	initialized := corev1.PodCondition{Type: corev1.PodInitialized, ObservedGeneration: gen}
	if incomplete := incompleteInits(tl.pod, st.InitContainerStatuses); len(incomplete) > 0 {
		setCondition(&initialized, corev1.ConditionFalse, reasonContainersNotInitialized,
			fmt.Sprintf("containers with incomplete status: %s", incomplete), tl.start)
	} else {
		since := tl.appStart
		if len(tl.inits) == 0 {
			since = tl.start
		}
		reason := ""
		if st.Phase == corev1.PodSucceeded {
			reason = reasonPodCompleted
		}
		setCondition(&initialized, corev1.ConditionTrue, reason, "", since)
	}

	readySince := tl.readyTransition(t, rs)
	containersReady := corev1.PodCondition{Type: corev1.ContainersReady, ObservedGeneration: gen}
	switch st.Phase {
	case corev1.PodSucceeded:
		setCondition(&containersReady, corev1.ConditionFalse, reasonPodCompleted, "", readySince)
	case corev1.PodFailed:
		setCondition(&containersReady, corev1.ConditionFalse, reasonPodFailed, "", readySince)
	default:
		if unready := unreadyContainers(tl.pod, st); len(unready) > 0 {
			setCondition(&containersReady, corev1.ConditionFalse, reasonContainersNotReady,
				fmt.Sprintf("containers with unready status: %s", unready), readySince)
		} else {
			setCondition(&containersReady, corev1.ConditionTrue, "", "", readySince)
		}
	}

	ready := containersReady
	ready.Type = corev1.PodReady
	if containersReady.Status == corev1.ConditionTrue {
		tl.applyReadinessGates(&ready, gates)
	}

	if scheduled == nil {
		scheduled = &corev1.PodCondition{Type: corev1.PodScheduled, ObservedGeneration: gen}
		setCondition(scheduled, corev1.ConditionTrue, "", "", tl.start)
	}
	return append(out, sandbox, initialized, ready, containersReady, *scheduled)
}

// applyReadinessGates turns a True Ready condition False while a readiness
// gate is not True. Gate conditions change through the API, not on the
// simulated clock, so their own transition times are the best we know.
func (tl *timeline) applyReadinessGates(ready *corev1.PodCondition, conds []corev1.PodCondition) {
	var unready []string
	since := ready.LastTransitionTime.Time
	falseSince := tl.start
	for _, g := range tl.pod.Spec.ReadinessGates {
		var c *corev1.PodCondition
		for i := range conds {
			if conds[i].Type == g.ConditionType {
				c = &conds[i]
			}
		}
		switch {
		case c == nil:
			unready = append(unready, fmt.Sprintf("corresponding condition of pod readiness gate %q does not exist.", g.ConditionType))
		case c.Status != corev1.ConditionTrue:
			unready = append(unready, fmt.Sprintf("the status of pod readiness gate %q is not \"True\", but %v", g.ConditionType, c.Status))
			if c.LastTransitionTime.After(falseSince) {
				falseSince = c.LastTransitionTime.Time
			}
		case c.LastTransitionTime.After(since):
			since = c.LastTransitionTime.Time
		}
	}
	if len(unready) == 0 {
		ready.LastTransitionTime = metav1.Time{Time: since}
		return
	}
	setCondition(ready, corev1.ConditionFalse, reasonReadinessGatesNotReady, strings.Join(unready, ", "), falseSince)
}

func setCondition(c *corev1.PodCondition, status corev1.ConditionStatus, reason, message string, since time.Time) {
	c.Status, c.Reason, c.Message = status, reason, message
	c.LastTransitionTime = metav1.Time{Time: since}
}

// incompleteInits lists init containers that keep the pod from being
// initialized: regular ones not completed, sidecars not started.
func incompleteInits(pod *corev1.Pod, statuses []corev1.ContainerStatus) []string {
	var names []string
	for i := range statuses {
		cs := &statuses[i]
		sidecar := i < len(pod.Spec.InitContainers) && isSidecar(&pod.Spec.InitContainers[i])
		switch {
		case sidecar && cs.State.Terminated != nil:
			// Stopped because the pod is done, after it was initialized.
		case sidecar:
			if cs.Started == nil || !*cs.Started {
				names = append(names, cs.Name)
			}
		case !cs.Ready:
			names = append(names, cs.Name)
		}
	}
	return names
}

// unreadyContainers lists sidecars and app containers that are not ready.
func unreadyContainers(pod *corev1.Pod, st *corev1.PodStatus) []string {
	var names []string
	for i := range st.InitContainerStatuses {
		if i < len(pod.Spec.InitContainers) && isSidecar(&pod.Spec.InitContainers[i]) && !st.InitContainerStatuses[i].Ready {
			names = append(names, st.InitContainerStatuses[i].Name)
		}
	}
	for i := range st.ContainerStatuses {
		if !st.ContainerStatuses[i].Ready {
			names = append(names, st.ContainerStatuses[i].Name)
		}
	}
	return names
}

// ContainerID is the stable runtime ID of one run of a container.
func ContainerID(uid types.UID, name string, restartCount int32) string {
	return "sim://" + hash(string(uid)+"/"+name+"/"+strconv.Itoa(int(restartCount)))
}

// ImageID is the stable digest-like ID the simulated runtime reports for an image.
func ImageID(image string) string {
	return "sim://sha256:" + hash(image)
}

func hash(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

// podRef names a pod in back-off messages.
func podRef(pod *corev1.Pod) string {
	return fmt.Sprintf("%s(%s)", pod.Name, pod.UID)
}

func boolPtr(b bool) *bool { return &b }
