package sim

import (
	"math"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// The kubelet's crash-loop back-off: 10s doubling up to 5m, and a container
// that ran for more than 10 minutes is considered stable, so its next
// back-off starts again from 10s.
const (
	initialBackOff    = 10 * time.Second
	maxBackOff        = 300 * time.Second
	backOffResetAfter = 600 * time.Second
)

// forever is the length of a run that never ends.
const forever = time.Duration(math.MaxInt64)

// delays are offsets from a container's start.
type delays struct {
	started time.Duration // Started becomes true (startup probe)
	ready   time.Duration // Ready becomes true (readiness probe, after startup)
}

func probeDelays(c *corev1.Container) delays {
	var d delays
	if c.StartupProbe != nil {
		d.started = seconds(c.StartupProbe.InitialDelaySeconds)
	}
	d.ready = d.started
	if c.ReadinessProbe != nil {
		// The readiness probe only counts once the startup probe succeeded.
		d.ready = max(d.started, seconds(c.ReadinessProbe.InitialDelaySeconds))
	}
	return d
}

func seconds(s int32) time.Duration {
	return time.Duration(max(s, 0)) * time.Second
}

func isSidecar(c *corev1.Container) bool {
	return c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways
}

// initSpan is the schedule of one init container.
type initSpan struct {
	sidecar bool
	start   time.Time
	end     time.Time // regular: exits 0
	started time.Time // sidecar: Started from here; the next init container starts then
	ready   time.Time // sidecar
}

// runModel describes the runs of app containers. Every app container of a pod
// shares the plan, so they all start, exit and restart together; only their
// probe delays differ.
type runModel struct {
	length   time.Duration // forever when a run never ends
	exitCode int32
	restarts bool // whether an exited run is followed by a back-off and another run
}

// backOff is the wait after run k (0-based) before run k+1 starts.
func (r runModel) backOff(k int64) time.Duration {
	if r.length > backOffResetAfter {
		return initialBackOff
	}
	b := initialBackOff
	for i := int64(0); i < k && b < maxBackOff; i++ {
		b *= 2
	}
	return min(b, maxBackOff)
}

// steady reports whether back-offs stay the same from run k on, so that the
// runs from there are periodic.
func (r runModel) steady(k int64) bool {
	return r.length > backOffResetAfter || r.backOff(k) == maxBackOff
}

// runAt returns the last run started by offset d >= 0 from the first start,
// and that run's start offset. The loop is bounded (back-off reaches its cap
// after a few runs); from there the runs are periodic and counted by
// division, so a pod crash-looping for months costs the same as a new one.
func (r runModel) runAt(d time.Duration) (int64, time.Duration) {
	if !r.restarts || r.length == forever {
		return 0, 0
	}
	var k int64
	var s time.Duration
	for {
		p := addSat(r.length, r.backOff(k))
		if r.steady(k) {
			n := int64((d - s) / p)
			return k + n, s + time.Duration(n)*p
		}
		if d-s < p {
			return k, s
		}
		s += p
		k++
	}
}

// addSat adds non-negative durations without overflowing.
func addSat(a, b time.Duration) time.Duration {
	if a > forever-b {
		return forever
	}
	return a + b
}

type runPhase int

const (
	runNotStarted runPhase = iota // app containers not created yet
	runRunning
	runBackOff // exited, waiting to restart
	runExited  // exited for good
)

// runState is where the app containers are at one instant.
type runState struct {
	phase   runPhase
	k       int64     // current (or last) run
	start   time.Time // of run k
	end     time.Time // of run k; unset when forever
	forever bool
	next    time.Time // start of run k+1 when restarting
}

// timeline is the whole schedule of one pod, derived from spec, plan and
// admission time.
type timeline struct {
	pod      *corev1.Pod
	plan     Plan
	start    time.Time
	sandbox  time.Time
	inits    []initSpan
	appStart time.Time
	apps     []delays
	// maxReady is the latest ready delay among app containers: all of them
	// are ready from run start + maxReady.
	maxReady time.Duration
	// sidecarsReady is when the last sidecar became ready (start if none);
	// sidecars count for ContainersReady too.
	sidecarsReady time.Time
	run           runModel
}

func newTimeline(pod *corev1.Pod, plan Plan, start time.Time) *timeline {
	tl := &timeline{pod: pod, plan: plan, start: start}
	tl.sandbox = start.Add(max(plan.StartDelay, 0))
	cursor := tl.sandbox
	tl.sidecarsReady = start
	for i := range pod.Spec.InitContainers {
		c := &pod.Spec.InitContainers[i]
		if isSidecar(c) {
			d := probeDelays(c)
			s := initSpan{sidecar: true, start: cursor, started: cursor.Add(d.started), ready: cursor.Add(d.ready)}
			if s.ready.After(tl.sidecarsReady) {
				tl.sidecarsReady = s.ready
			}
			tl.inits = append(tl.inits, s)
			cursor = s.started
			continue
		}
		s := initSpan{start: cursor, end: cursor.Add(max(plan.InitDuration, 0))}
		tl.inits = append(tl.inits, s)
		cursor = s.end
	}
	tl.appStart = cursor
	for i := range pod.Spec.Containers {
		d := probeDelays(&pod.Spec.Containers[i])
		tl.apps = append(tl.apps, d)
		tl.maxReady = max(tl.maxReady, d.ready)
	}

	policy := pod.Spec.RestartPolicy
	if policy == "" {
		policy = corev1.RestartPolicyAlways // the API default
	}
	switch {
	case plan.CrashAfter > 0:
		tl.run = runModel{length: plan.CrashAfter, exitCode: 1, restarts: policy != corev1.RestartPolicyNever}
	case policy == corev1.RestartPolicyAlways:
		tl.run = runModel{length: forever}
	default:
		tl.run = runModel{
			length:   max(plan.RunDuration, 0),
			exitCode: plan.ExitCode,
			restarts: policy == corev1.RestartPolicyOnFailure && plan.ExitCode != 0,
		}
	}
	return tl
}

// runStateAt locates the app containers' run at t.
func (tl *timeline) runStateAt(t time.Time) runState {
	if t.Before(tl.appStart) {
		return runState{phase: runNotStarted}
	}
	k, s := tl.run.runAt(t.Sub(tl.appStart))
	rs := runState{phase: runRunning, k: k, start: tl.appStart.Add(s)}
	if tl.run.length == forever {
		rs.forever = true
		return rs
	}
	rs.end = rs.start.Add(tl.run.length)
	if tl.run.restarts {
		rs.next = rs.end.Add(tl.run.backOff(k))
	}
	switch {
	case t.Before(rs.end):
	case tl.run.restarts:
		rs.phase = runBackOff
	default:
		rs.phase = runExited
	}
	return rs
}

// previousRun returns the start and end of run k-1, given run k's start.
func (tl *timeline) previousRun(rs runState) (time.Time, time.Time) {
	end := rs.start.Add(-tl.run.backOff(rs.k - 1))
	return end.Add(-tl.run.length), end
}

// terminal returns when the pod's app containers exit for good, if they do.
func (tl *timeline) terminal() (time.Time, bool) {
	if tl.run.restarts || tl.run.length == forever {
		return time.Time{}, false
	}
	return tl.appStart.Add(tl.run.length), true
}

// readyFrom is when all containers are ready in the run starting at runStart.
func (tl *timeline) readyFrom(runStart time.Time) time.Time {
	from := runStart.Add(tl.maxReady)
	if tl.sidecarsReady.After(from) {
		return tl.sidecarsReady
	}
	return from
}

// readyTransition is the last instant <= t at which "all containers ready"
// changed, or start if it never did. Every run has the same length and
// delays, and later runs start later, so if a run is never all-ready no
// earlier run was either: looking at the current and previous run suffices.
func (tl *timeline) readyTransition(t time.Time, rs runState) time.Time {
	switch rs.phase {
	case runRunning:
		from := tl.readyFrom(rs.start)
		if (rs.forever || from.Before(rs.end)) && !t.Before(from) {
			return from
		}
		if rs.k > 0 {
			prevStart, prevEnd := tl.previousRun(rs)
			if tl.readyFrom(prevStart).Before(prevEnd) {
				return prevEnd
			}
		}
	case runBackOff, runExited:
		if tl.readyFrom(rs.start).Before(rs.end) {
			return rs.end
		}
	}
	return tl.start
}

// nextChange is the earliest instant after t at which the status changes,
// or zero if it never will. Only instants with a visible change are
// candidates, so that the status at next-1ns still equals the one at t.
func (tl *timeline) nextChange(t time.Time, rs runState) time.Time {
	var next time.Time
	consider := func(c time.Time) {
		if c.After(t) && (next.IsZero() || c.Before(next)) {
			next = c
		}
	}
	consider(tl.sandbox)
	term, isTerm := tl.terminal()
	for _, s := range tl.inits {
		consider(s.start)
		if !s.sidecar {
			consider(s.end)
			continue
		}
		consider(s.started)
		if !isTerm || s.ready.Before(term) {
			consider(s.ready)
		}
	}
	consider(tl.appStart)
	switch rs.phase {
	case runRunning:
		for _, d := range tl.apps {
			for _, at := range []time.Time{rs.start.Add(d.started), rs.start.Add(d.ready)} {
				if rs.forever || at.Before(rs.end) {
					consider(at)
				}
			}
		}
		if !rs.forever {
			consider(rs.end)
		}
	case runBackOff:
		consider(rs.next)
	}
	return next
}
