// Package sim is minik's simulated container runtime: no process runs, so a
// pod's whole life is a deterministic function of its spec, its minik.dev/
// annotations, the instant the node admitted it and the current instant.
// The timeline functions (Status, Terminating, Events, Logs, ContainerUsage)
// read no clock, which makes them reproducible after an agent restart and
// testable; Runtime wraps them as the node agent's runtime.Runtime, with
// pod IPs from the node's podCIDR and CPU counters that never go back.
package sim

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

// Annotations read by ParsePlan.
const (
	AnnotationPrefix       = "minik.dev/"
	AnnotationStartDelay   = AnnotationPrefix + "start-delay"
	AnnotationInitDuration = AnnotationPrefix + "init-duration"
	AnnotationRunDuration  = AnnotationPrefix + "run-duration"
	AnnotationExitCode     = AnnotationPrefix + "exit-code"
	AnnotationCrashAfter   = AnnotationPrefix + "crash-after"
	AnnotationFail         = AnnotationPrefix + "fail"
	AnnotationCPU          = AnnotationPrefix + "cpu"
	AnnotationMemory       = AnnotationPrefix + "memory"
	AnnotationLogs         = AnnotationPrefix + "logs"
	AnnotationLogInterval  = AnnotationPrefix + "log-interval"
	AnnotationStopDelay    = AnnotationPrefix + "stop-delay"
)

// Defaults used when an annotation is absent or invalid.
const (
	DefaultStartDelay   = 300 * time.Millisecond
	DefaultInitDuration = 500 * time.Millisecond
	DefaultRunDuration  = 3 * time.Second
	// FailCrashAfter is what minik.dev/fail: "true" stands for.
	FailCrashAfter = time.Second
)

var (
	defaultCPU    = resource.MustParse("10m")
	defaultMemory = resource.MustParse("16Mi")
)

// Plan is what the annotations of one pod ask the simulated runtime to do.
// It applies to every container of the pod.
type Plan struct {
	// StartDelay is the time from admission until the sandbox is ready.
	StartDelay time.Duration
	// InitDuration is how long each regular init container runs (exit 0).
	InitDuration time.Duration
	// RunDuration is how long app containers of restartPolicy Never or
	// OnFailure pods run before exiting with ExitCode.
	RunDuration time.Duration
	// ExitCode is the exit code of app containers that end after RunDuration.
	ExitCode int32
	// CrashAfter, when positive, makes every run of an app container end
	// with exit code 1 after this long, whatever the restart policy; it
	// takes precedence over RunDuration and ExitCode.
	CrashAfter time.Duration
	// CPU and Memory are the per-container usage reported while running.
	CPU    resource.Quantity
	Memory resource.Quantity
	// Logs are printed once at every container start, after the
	// "started container NAME" line.
	Logs []string
	// LogInterval, when positive, adds a "tick N from NAME" line every
	// interval while a container runs.
	LogInterval time.Duration
	// StopDelay is how long containers take to stop after the pod is
	// deleted; the grace period caps it.
	StopDelay time.Duration
}

// DefaultPlan is the plan of a pod without annotations.
func DefaultPlan() Plan {
	return Plan{
		StartDelay:   DefaultStartDelay,
		InitDuration: DefaultInitDuration,
		RunDuration:  DefaultRunDuration,
		CPU:          defaultCPU.DeepCopy(),
		Memory:       defaultMemory.DeepCopy(),
	}
}

// AnnotationError reports one unusable annotation value. The pod still runs
// with the default for that key; the agent shows the error as a Warning event.
type AnnotationError struct {
	Key     string
	Value   string
	Problem string // e.g. "is not a quantity"
	Err     error  // the parser's error, if any
}

func (e *AnnotationError) Error() string {
	return fmt.Sprintf("annotation %s: %q %s", e.Key, e.Value, e.Problem)
}

func (e *AnnotationError) Unwrap() error { return e.Err }

// ParsePlan reads the pod's minik.dev/ annotations. It never fails: each bad
// value leaves the default for its key in place and adds one error, in a
// fixed key order so repeated calls report identically.
func ParsePlan(pod *corev1.Pod) (Plan, []error) {
	plan := DefaultPlan()
	if pod == nil {
		return plan, nil
	}
	a := pod.Annotations
	var errs []error
	bad := func(key, problem string, err error) {
		errs = append(errs, &AnnotationError{Key: key, Value: a[key], Problem: problem, Err: err})
	}
	duration := func(key string, dst *time.Duration, positive bool) {
		v, ok := a[key]
		if !ok {
			return
		}
		d, err := time.ParseDuration(strings.TrimSpace(v))
		switch {
		case err != nil:
			bad(key, "is not a duration", err)
		case d < 0:
			bad(key, "must not be negative", nil)
		case positive && d == 0:
			bad(key, "must be positive", nil)
		default:
			*dst = d
		}
	}
	quantity := func(key string, dst *resource.Quantity) {
		v, ok := a[key]
		if !ok {
			return
		}
		q, err := resource.ParseQuantity(strings.TrimSpace(v))
		switch {
		case err != nil:
			bad(key, "is not a quantity", err)
		case q.Sign() < 0:
			bad(key, "must not be negative", nil)
		default:
			*dst = q
		}
	}

	duration(AnnotationStartDelay, &plan.StartDelay, false)
	duration(AnnotationInitDuration, &plan.InitDuration, false)
	duration(AnnotationRunDuration, &plan.RunDuration, false)
	if v, ok := a[AnnotationExitCode]; ok {
		n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 32)
		switch {
		case err != nil:
			bad(AnnotationExitCode, "is not an integer", err)
		case n < 0 || n > 255:
			// Real exit statuses are one byte.
			bad(AnnotationExitCode, "must be between 0 and 255", nil)
		default:
			plan.ExitCode = int32(n)
		}
	}
	// fail is shorthand; an explicit crash-after below overrides it.
	if v, ok := a[AnnotationFail]; ok {
		b, err := strconv.ParseBool(strings.TrimSpace(v))
		switch {
		case err != nil:
			bad(AnnotationFail, "is not a boolean", err)
		case b:
			plan.CrashAfter = FailCrashAfter
		}
	}
	// Zero would be ambiguous between "crash at once" and "never".
	duration(AnnotationCrashAfter, &plan.CrashAfter, true)
	quantity(AnnotationCPU, &plan.CPU)
	quantity(AnnotationMemory, &plan.Memory)
	if v, ok := a[AnnotationLogs]; ok {
		plan.Logs = splitLines(v)
	}
	duration(AnnotationLogInterval, &plan.LogInterval, false)
	duration(AnnotationStopDelay, &plan.StopDelay, false)
	return plan, errs
}

// splitLines splits text into lines; a final newline does not add an empty line.
func splitLines(s string) []string {
	s = strings.TrimSuffix(strings.ReplaceAll(s, "\r\n", "\n"), "\n")
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}
