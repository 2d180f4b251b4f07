package sim

import (
	"errors"
	"fmt"
	"math"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// t0 is the admission instant of every test pod.
var t0 = time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC)

func at(d time.Duration) time.Time { return t0.Add(d) }

func ms(n int64) time.Duration { return time.Duration(n) * time.Millisecond }

const day = 24 * time.Hour

type podOpt func(*corev1.Pod)

func annotate(kv ...string) podOpt {
	return func(p *corev1.Pod) {
		for i := 0; i+1 < len(kv); i += 2 {
			p.Annotations[AnnotationPrefix+kv[i]] = kv[i+1]
		}
	}
}

func policy(rp corev1.RestartPolicy) podOpt {
	return func(p *corev1.Pod) { p.Spec.RestartPolicy = rp }
}

func containers(names ...string) podOpt {
	return func(p *corev1.Pod) {
		p.Spec.Containers = nil
		for _, n := range names {
			p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: n, Image: "img-" + n})
		}
	}
}

func inits(names ...string) podOpt {
	return func(p *corev1.Pod) {
		for _, n := range names {
			p.Spec.InitContainers = append(p.Spec.InitContainers, corev1.Container{Name: n, Image: "busybox:1.36"})
		}
	}
}

func sidecar(name string, startupDelay int32) podOpt {
	return func(p *corev1.Pod) {
		always := corev1.ContainerRestartPolicyAlways
		c := corev1.Container{Name: name, Image: "envoy:1", RestartPolicy: &always}
		if startupDelay > 0 {
			c.StartupProbe = &corev1.Probe{InitialDelaySeconds: startupDelay}
		}
		p.Spec.InitContainers = append(p.Spec.InitContainers, c)
	}
}

// probes sets probe delays (negative: no probe) on app container i.
func probes(i int, startup, readiness int32) podOpt {
	return func(p *corev1.Pod) {
		c := &p.Spec.Containers[i]
		if startup >= 0 {
			c.StartupProbe = &corev1.Probe{InitialDelaySeconds: startup}
		}
		if readiness >= 0 {
			c.ReadinessProbe = &corev1.Probe{InitialDelaySeconds: readiness}
		}
	}
}

func newPod(opts ...podOpt) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default", UID: "uid-1", Annotations: map[string]string{}},
		Spec: corev1.PodSpec{
			RestartPolicy: corev1.RestartPolicyAlways,
			Containers:    []corev1.Container{{Name: "app", Image: "nginx:1.27"}},
		},
	}
	for _, o := range opts {
		o(p)
	}
	return p
}

func planOf(t testing.TB, pod *corev1.Pod) Plan {
	t.Helper()
	plan, errs := ParsePlan(pod)
	require.Empty(t, errs)
	return plan
}

func statusAt(t testing.TB, pod *corev1.Pod, now time.Time) (corev1.PodStatus, time.Time) {
	t.Helper()
	return Status(pod, planOf(t, pod), t0, now)
}

func cond(t testing.TB, st corev1.PodStatus, typ corev1.PodConditionType) corev1.PodCondition {
	t.Helper()
	for _, c := range st.Conditions {
		if c.Type == typ {
			return c
		}
	}
	require.Failf(t, "condition missing", "%s not in %v", typ, st.Conditions)
	return corev1.PodCondition{}
}

// condSummary is "Status@offset" for each kubelet condition, in a fixed order.
func condSummary(t testing.TB, st corev1.PodStatus) string {
	t.Helper()
	var parts []string
	for _, typ := range []corev1.PodConditionType{corev1.PodReadyToStartContainers, corev1.PodInitialized, corev1.ContainersReady, corev1.PodReady} {
		c := cond(t, st, typ)
		parts = append(parts, fmt.Sprintf("%s@%v", c.Status, c.LastTransitionTime.Sub(t0)))
	}
	return strings.Join(parts, " ")
}

// stateSummary is a short description of a container's state.
func stateSummary(cs corev1.ContainerStatus) string {
	switch s := cs.State; {
	case s.Waiting != nil:
		return "Waiting:" + s.Waiting.Reason
	case s.Running != nil:
		return fmt.Sprintf("Running@%v", s.Running.StartedAt.Sub(t0))
	case s.Terminated != nil:
		return fmt.Sprintf("Terminated:%s:%d@%v-%v", s.Terminated.Reason, s.Terminated.ExitCode,
			s.Terminated.StartedAt.Sub(t0), s.Terminated.FinishedAt.Sub(t0))
	}
	return "none"
}

func TestParsePlan(t *testing.T) {
	t.Run("defaults", func(t *testing.T) {
		plan, errs := ParsePlan(newPod())
		require.Empty(t, errs)
		assert.Equal(t, DefaultPlan(), plan)
		assert.Equal(t, 300*time.Millisecond, plan.StartDelay)
		assert.Equal(t, 500*time.Millisecond, plan.InitDuration)
		assert.Equal(t, 3*time.Second, plan.RunDuration)
		assert.Equal(t, "10m", plan.CPU.String())
		assert.Equal(t, "16Mi", plan.Memory.String())
		assert.Zero(t, plan.CrashAfter)

		nilPlan, errs := ParsePlan(nil)
		require.Empty(t, errs)
		assert.Equal(t, DefaultPlan(), nilPlan)
	})

	t.Run("all valid", func(t *testing.T) {
		plan, errs := ParsePlan(newPod(annotate(
			"start-delay", "1s", "init-duration", "2s", "run-duration", "5m", "exit-code", " 3 ",
			"crash-after", "4s", "cpu", "250m", "memory", "64Mi", "logs", "hello\r\nworld\n",
			"log-interval", "100ms", "stop-delay", "7s", "unrelated", "x")))
		require.Empty(t, errs)
		assert.Equal(t, time.Second, plan.StartDelay)
		assert.Equal(t, 2*time.Second, plan.InitDuration)
		assert.Equal(t, 5*time.Minute, plan.RunDuration)
		assert.Equal(t, int32(3), plan.ExitCode)
		assert.Equal(t, 4*time.Second, plan.CrashAfter)
		assert.Equal(t, "250m", plan.CPU.String())
		assert.Equal(t, "64Mi", plan.Memory.String())
		assert.Equal(t, []string{"hello", "world"}, plan.Logs)
		assert.Equal(t, 100*time.Millisecond, plan.LogInterval)
		assert.Equal(t, 7*time.Second, plan.StopDelay)
	})

	t.Run("fail shorthand", func(t *testing.T) {
		for _, tc := range []struct {
			ann  []string
			want time.Duration
		}{
			{[]string{"fail", "true"}, time.Second},
			{[]string{"fail", "false"}, 0},
			{[]string{"fail", "true", "crash-after", "5s"}, 5 * time.Second},
			{[]string{"fail", "true", "crash-after", "soon"}, time.Second}, // bad crash-after keeps fail's
		} {
			plan, _ := ParsePlan(newPod(annotate(tc.ann...)))
			assert.Equal(t, tc.want, plan.CrashAfter, "%v", tc.ann)
		}
	})

	bad := []struct {
		key, value, msg string
		kept            func(Plan) any
		want            any
	}{
		{"start-delay", "soon", `annotation minik.dev/start-delay: "soon" is not a duration`,
			func(p Plan) any { return p.StartDelay }, DefaultStartDelay},
		{"start-delay", "-1s", `annotation minik.dev/start-delay: "-1s" must not be negative`,
			func(p Plan) any { return p.StartDelay }, DefaultStartDelay},
		{"init-duration", "5", `annotation minik.dev/init-duration: "5" is not a duration`,
			func(p Plan) any { return p.InitDuration }, DefaultInitDuration},
		{"run-duration", "-3s", `annotation minik.dev/run-duration: "-3s" must not be negative`,
			func(p Plan) any { return p.RunDuration }, DefaultRunDuration},
		{"exit-code", "three", `annotation minik.dev/exit-code: "three" is not an integer`,
			func(p Plan) any { return p.ExitCode }, int32(0)},
		{"exit-code", "-1", `annotation minik.dev/exit-code: "-1" must be between 0 and 255`,
			func(p Plan) any { return p.ExitCode }, int32(0)},
		{"exit-code", "256", `annotation minik.dev/exit-code: "256" must be between 0 and 255`,
			func(p Plan) any { return p.ExitCode }, int32(0)},
		{"crash-after", "0s", `annotation minik.dev/crash-after: "0s" must be positive`,
			func(p Plan) any { return p.CrashAfter }, time.Duration(0)},
		{"crash-after", "-2s", `annotation minik.dev/crash-after: "-2s" must not be negative`,
			func(p Plan) any { return p.CrashAfter }, time.Duration(0)},
		{"fail", "yes please", `annotation minik.dev/fail: "yes please" is not a boolean`,
			func(p Plan) any { return p.CrashAfter }, time.Duration(0)},
		{"cpu", "lots", `annotation minik.dev/cpu: "lots" is not a quantity`,
			func(p Plan) any { return p.CPU.String() }, "10m"},
		{"cpu", "-100m", `annotation minik.dev/cpu: "-100m" must not be negative`,
			func(p Plan) any { return p.CPU.String() }, "10m"},
		{"memory", "64MB!", `annotation minik.dev/memory: "64MB!" is not a quantity`,
			func(p Plan) any { return p.Memory.String() }, "16Mi"},
		{"log-interval", "often", `annotation minik.dev/log-interval: "often" is not a duration`,
			func(p Plan) any { return p.LogInterval }, time.Duration(0)},
		{"stop-delay", "-1ms", `annotation minik.dev/stop-delay: "-1ms" must not be negative`,
			func(p Plan) any { return p.StopDelay }, time.Duration(0)},
	}
	for _, tc := range bad {
		t.Run(tc.key+"="+tc.value, func(t *testing.T) {
			// Another valid annotation still applies.
			other, otherValue, otherKept := "log-interval", "9s", func(p Plan) time.Duration { return p.LogInterval }
			if tc.key == "log-interval" {
				other, otherKept = "stop-delay", func(p Plan) time.Duration { return p.StopDelay }
			}
			plan, errs := ParsePlan(newPod(annotate(tc.key, tc.value, other, otherValue)))
			require.Len(t, errs, 1)
			assert.EqualError(t, errs[0], tc.msg)
			var ae *AnnotationError
			require.ErrorAs(t, errs[0], &ae)
			assert.Equal(t, AnnotationPrefix+tc.key, ae.Key)
			assert.Equal(t, tc.value, ae.Value)
			assert.Equal(t, tc.want, tc.kept(plan))
			assert.Equal(t, 9*time.Second, otherKept(plan))
		})
	}

	t.Run("several errors in key order", func(t *testing.T) {
		_, errs := ParsePlan(newPod(annotate("stop-delay", "x", "cpu", "y", "start-delay", "z")))
		require.Len(t, errs, 3)
		assert.Contains(t, errs[0].Error(), "start-delay")
		assert.Contains(t, errs[1].Error(), "cpu")
		assert.Contains(t, errs[2].Error(), "stop-delay")
	})

	t.Run("parser error is wrapped", func(t *testing.T) {
		_, errs := ParsePlan(newPod(annotate("cpu", "lots")))
		require.Len(t, errs, 1)
		assert.ErrorIs(t, errs[0], resource.ErrFormatWrong)
	})
}

// step is the expected status at one instant of a timeline.
type step struct {
	at       time.Duration
	phase    corev1.PodPhase
	inits    []string // stateSummary of each init container
	apps     []string // stateSummary of each app container
	ready    []bool   // Ready of each app container
	started  []bool   // Started of each app container (nil: skip)
	restarts []int32  // RestartCount of each app container (nil: all zero)
	conds    string   // condSummary
	next     time.Duration
	never    bool // next is zero
}

func checkTimeline(t *testing.T, pod *corev1.Pod, steps []step) {
	t.Helper()
	for _, s := range steps {
		t.Run(s.at.String(), func(t *testing.T) {
			st, next := statusAt(t, pod, at(s.at))
			assert.Equal(t, s.phase, st.Phase)
			var inits, apps []string
			var ready, started []bool
			restarts := make([]int32, len(st.ContainerStatuses))
			for _, cs := range st.InitContainerStatuses {
				inits = append(inits, stateSummary(cs))
			}
			for i, cs := range st.ContainerStatuses {
				apps = append(apps, stateSummary(cs))
				ready = append(ready, cs.Ready)
				require.NotNil(t, cs.Started)
				started = append(started, *cs.Started)
				restarts[i] = cs.RestartCount
			}
			assert.Equal(t, s.inits, inits, "init containers")
			assert.Equal(t, s.apps, apps, "app containers")
			assert.Equal(t, s.ready, ready, "ready")
			if s.started != nil {
				assert.Equal(t, s.started, started, "started")
			}
			if s.restarts != nil {
				assert.Equal(t, s.restarts, restarts, "restarts")
			} else {
				assert.Equal(t, make([]int32, len(restarts)), restarts, "restarts")
			}
			assert.Equal(t, s.conds, condSummary(t, st), "conditions")
			if s.never {
				assert.True(t, next.IsZero(), "next = %v", next)
			} else {
				assert.Equal(t, at(s.next), next, "next")
			}
		})
	}
}

func TestStatusDeployment(t *testing.T) {
	checkTimeline(t, newPod(), []step{
		{at: -time.Second, phase: corev1.PodPending, apps: []string{"Waiting:ContainerCreating"}, ready: []bool{false},
			started: []bool{false}, conds: "False@0s True@0s False@0s False@0s", next: ms(300)},
		{at: 0, phase: corev1.PodPending, apps: []string{"Waiting:ContainerCreating"}, ready: []bool{false},
			started: []bool{false}, conds: "False@0s True@0s False@0s False@0s", next: ms(300)},
		{at: ms(299), phase: corev1.PodPending, apps: []string{"Waiting:ContainerCreating"}, ready: []bool{false},
			conds: "False@0s True@0s False@0s False@0s", next: ms(300)},
		{at: ms(300), phase: corev1.PodRunning, apps: []string{"Running@300ms"}, ready: []bool{true},
			started: []bool{true}, conds: "True@300ms True@0s True@300ms True@300ms", never: true},
		{at: 30 * day, phase: corev1.PodRunning, apps: []string{"Running@300ms"}, ready: []bool{true},
			conds: "True@300ms True@0s True@300ms True@300ms", never: true},
	})

	st, _ := statusAt(t, newPod(), at(0))
	assert.Equal(t, t0, st.StartTime.Time)
	assert.Empty(t, st.PodIP)
	assert.Empty(t, st.HostIP)
	assert.Empty(t, st.QOSClass)
	assert.Nil(t, st.InitContainerStatuses)
	c := cond(t, st, corev1.ContainersReady)
	assert.Equal(t, "ContainersNotReady", c.Reason)
	assert.Equal(t, "containers with unready status: [app]", c.Message)
	c = cond(t, st, corev1.PodReadyToStartContainers)
	assert.Equal(t, "PodSandboxNotReady", c.Reason)
	assert.Equal(t, corev1.ConditionTrue, cond(t, st, corev1.PodScheduled).Status)

	cs := st.ContainerStatuses[0]
	assert.Equal(t, "nginx:1.27", cs.Image)
	assert.Empty(t, cs.ImageID, "not created yet")
	assert.Empty(t, cs.ContainerID)

	st, _ = statusAt(t, newPod(), at(time.Second))
	cs = st.ContainerStatuses[0]
	assert.Regexp(t, regexp.MustCompile(`^sim://sha256:[0-9a-f]{64}$`), cs.ImageID)
	assert.Regexp(t, regexp.MustCompile(`^sim://[0-9a-f]{64}$`), cs.ContainerID)
	assert.Equal(t, ImageID("nginx:1.27"), cs.ImageID)
	assert.Equal(t, ContainerID("uid-1", "app", 0), cs.ContainerID)
	assert.NotEqual(t, ContainerID("uid-1", "app", 1), cs.ContainerID)
	assert.NotEqual(t, ContainerID("uid-2", "app", 0), cs.ContainerID)
	before, _ := statusAt(t, newPod(), at(0))
	assert.Nil(t, before.ContainerStatuses[0].Resources, "no resources before the container is made")

	// The resources a container runs with, and a resize applied at once.
	resized := newPod()
	resized.Spec.Containers[0].Resources = corev1.ResourceRequirements{
		Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m")},
		Limits:   corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("200m"), corev1.ResourceMemory: resource.MustParse("64Mi")},
	}
	rst, _ := statusAt(t, resized, at(time.Second))
	require.NotNil(t, rst.ContainerStatuses[0].Resources)
	assert.Equal(t, resized.Spec.Containers[0].Resources, *rst.ContainerStatuses[0].Resources)
	assert.Equal(t, resized.Spec.Containers[0].Resources.Requests, rst.ContainerStatuses[0].AllocatedResources)
	assert.NotNil(t, cs.Resources, "an empty spec gives empty resources, not none")
	// Conditions in the kubelet's order.
	var types []corev1.PodConditionType
	for _, c := range st.Conditions {
		types = append(types, c.Type)
	}
	assert.Equal(t, []corev1.PodConditionType{corev1.PodReadyToStartContainers, corev1.PodInitialized,
		corev1.PodReady, corev1.ContainersReady, corev1.PodScheduled}, types)
}

func TestStatusReadinessProbe(t *testing.T) {
	pod := newPod(containers("app", "metrics"), probes(0, -1, 5))
	checkTimeline(t, pod, []step{
		{at: ms(300), phase: corev1.PodRunning, apps: []string{"Running@300ms", "Running@300ms"},
			ready: []bool{false, true}, started: []bool{true, true},
			conds: "True@300ms True@0s False@0s False@0s", next: ms(5300)},
		{at: ms(5299), phase: corev1.PodRunning, apps: []string{"Running@300ms", "Running@300ms"},
			ready: []bool{false, true}, conds: "True@300ms True@0s False@0s False@0s", next: ms(5300)},
		{at: ms(5300), phase: corev1.PodRunning, apps: []string{"Running@300ms", "Running@300ms"},
			ready: []bool{true, true}, conds: "True@300ms True@0s True@5.3s True@5.3s", never: true},
	})
	st, _ := statusAt(t, pod, at(time.Second))
	assert.Equal(t, "containers with unready status: [app]", cond(t, st, corev1.PodReady).Message)

	// A probe without initialDelaySeconds is ready at start, as the API default is 0.
	st, _ = statusAt(t, newPod(probes(0, -1, 0)), at(ms(300)))
	assert.True(t, st.ContainerStatuses[0].Ready)
}

func TestStatusStartupProbe(t *testing.T) {
	t.Run("readiness shorter than startup", func(t *testing.T) {
		checkTimeline(t, newPod(probes(0, 3, 1)), []step{
			{at: ms(300), phase: corev1.PodRunning, apps: []string{"Running@300ms"}, ready: []bool{false},
				started: []bool{false}, conds: "True@300ms True@0s False@0s False@0s", next: ms(3300)},
			{at: ms(3300), phase: corev1.PodRunning, apps: []string{"Running@300ms"}, ready: []bool{true},
				started: []bool{true}, conds: "True@300ms True@0s True@3.3s True@3.3s", never: true},
		})
	})
	t.Run("readiness longer than startup", func(t *testing.T) {
		checkTimeline(t, newPod(probes(0, 2, 4)), []step{
			{at: ms(300), phase: corev1.PodRunning, apps: []string{"Running@300ms"}, ready: []bool{false},
				started: []bool{false}, conds: "True@300ms True@0s False@0s False@0s", next: ms(2300)},
			{at: ms(2300), phase: corev1.PodRunning, apps: []string{"Running@300ms"}, ready: []bool{false},
				started: []bool{true}, conds: "True@300ms True@0s False@0s False@0s", next: ms(4300)},
			{at: ms(4300), phase: corev1.PodRunning, apps: []string{"Running@300ms"}, ready: []bool{true},
				started: []bool{true}, conds: "True@300ms True@0s True@4.3s True@4.3s", never: true},
		})
	})
	t.Run("crashes before startup succeeds", func(t *testing.T) {
		pod := newPod(probes(0, 5, -1), annotate("crash-after", "2s"))
		checkTimeline(t, pod, []step{
			{at: ms(300), phase: corev1.PodRunning, apps: []string{"Running@300ms"}, ready: []bool{false},
				started: []bool{false}, conds: "True@300ms True@0s False@0s False@0s", next: ms(2300)},
			{at: ms(2300), phase: corev1.PodRunning, apps: []string{"Waiting:CrashLoopBackOff"}, ready: []bool{false},
				started: []bool{false}, conds: "True@300ms True@0s False@0s False@0s", next: ms(12300)},
		})
	})
}

func TestStatusInitContainers(t *testing.T) {
	pod := newPod(inits("init-a", "init-b"))
	checkTimeline(t, pod, []step{
		{at: 0, phase: corev1.PodPending, inits: []string{"Waiting:ContainerCreating", "Waiting:PodInitializing"},
			apps: []string{"Waiting:PodInitializing"}, ready: []bool{false},
			conds: "False@0s False@0s False@0s False@0s", next: ms(300)},
		{at: ms(300), phase: corev1.PodPending, inits: []string{"Running@300ms", "Waiting:PodInitializing"},
			apps: []string{"Waiting:PodInitializing"}, ready: []bool{false},
			conds: "True@300ms False@0s False@0s False@0s", next: ms(800)},
		{at: ms(800), phase: corev1.PodPending,
			inits: []string{"Terminated:Completed:0@300ms-800ms", "Running@800ms"},
			apps:  []string{"Waiting:PodInitializing"}, ready: []bool{false},
			conds: "True@300ms False@0s False@0s False@0s", next: ms(1300)},
		{at: ms(1300), phase: corev1.PodRunning,
			inits: []string{"Terminated:Completed:0@300ms-800ms", "Terminated:Completed:0@800ms-1.3s"},
			apps:  []string{"Running@1.3s"}, ready: []bool{true},
			conds: "True@300ms True@1.3s True@1.3s True@1.3s", never: true},
	})

	st, _ := statusAt(t, pod, at(0))
	c := cond(t, st, corev1.PodInitialized)
	assert.Equal(t, "ContainersNotInitialized", c.Reason)
	assert.Equal(t, "containers with incomplete status: [init-a init-b]", c.Message)

	st, _ = statusAt(t, pod, at(ms(900)))
	assert.Equal(t, "containers with incomplete status: [init-b]", cond(t, st, corev1.PodInitialized).Message)
	a, b := st.InitContainerStatuses[0], st.InitContainerStatuses[1]
	assert.True(t, a.Ready, "a completed init container is ready")
	assert.False(t, *a.Started)
	assert.False(t, b.Ready)
	assert.True(t, *b.Started)
	assert.Equal(t, "busybox:1.36", a.Image)
	assert.Equal(t, ContainerID("uid-1", "init-a", 0), a.State.Terminated.ContainerID)
}

func TestStatusSidecars(t *testing.T) {
	// proxy is a sidecar whose startup takes 1s; setup waits for it.
	pod := newPod(sidecar("proxy", 1), inits("setup"))
	checkTimeline(t, pod, []step{
		{at: 0, phase: corev1.PodPending, inits: []string{"Waiting:ContainerCreating", "Waiting:PodInitializing"},
			apps: []string{"Waiting:PodInitializing"}, ready: []bool{false},
			conds: "False@0s False@0s False@0s False@0s", next: ms(300)},
		{at: ms(300), phase: corev1.PodPending, inits: []string{"Running@300ms", "Waiting:PodInitializing"},
			apps: []string{"Waiting:PodInitializing"}, ready: []bool{false},
			conds: "True@300ms False@0s False@0s False@0s", next: ms(1300)},
		{at: ms(1300), phase: corev1.PodPending, inits: []string{"Running@300ms", "Running@1.3s"},
			apps: []string{"Waiting:PodInitializing"}, ready: []bool{false},
			conds: "True@300ms False@0s False@0s False@0s", next: ms(1800)},
		{at: ms(1800), phase: corev1.PodRunning,
			inits: []string{"Running@300ms", "Terminated:Completed:0@1.3s-1.8s"},
			apps:  []string{"Running@1.8s"}, ready: []bool{true},
			conds: "True@300ms True@1.8s True@1.8s True@1.8s", never: true},
	})

	t.Run("job stops its sidecar", func(t *testing.T) {
		job := newPod(sidecar("proxy", 0), policy(corev1.RestartPolicyNever))
		checkTimeline(t, job, []step{
			{at: ms(300), phase: corev1.PodRunning, inits: []string{"Running@300ms"},
				apps: []string{"Running@300ms"}, ready: []bool{true},
				conds: "True@300ms True@300ms True@300ms True@300ms", next: ms(3300)},
			{at: ms(3300), phase: corev1.PodSucceeded, inits: []string{"Terminated:Completed:0@300ms-3.3s"},
				apps: []string{"Terminated:Completed:0@300ms-3.3s"}, ready: []bool{false},
				conds: "False@3.3s True@300ms False@3.3s False@3.3s", never: true},
		})
	})

	t.Run("sidecar readiness counts", func(t *testing.T) {
		p := newPod(sidecar("proxy", 0))
		p.Spec.InitContainers[0].ReadinessProbe = &corev1.Probe{InitialDelaySeconds: 4}
		checkTimeline(t, p, []step{
			{at: ms(300), phase: corev1.PodRunning, inits: []string{"Running@300ms"},
				apps: []string{"Running@300ms"}, ready: []bool{true},
				conds: "True@300ms True@300ms False@0s False@0s", next: ms(4300)},
			{at: ms(4300), phase: corev1.PodRunning, inits: []string{"Running@300ms"},
				apps: []string{"Running@300ms"}, ready: []bool{true},
				conds: "True@300ms True@300ms True@4.3s True@4.3s", never: true},
		})
	})
}

func TestStatusJob(t *testing.T) {
	t.Run("succeeded", func(t *testing.T) {
		pod := newPod(policy(corev1.RestartPolicyNever), annotate("run-duration", "2s"))
		checkTimeline(t, pod, []step{
			{at: ms(300), phase: corev1.PodRunning, apps: []string{"Running@300ms"}, ready: []bool{true},
				conds: "True@300ms True@0s True@300ms True@300ms", next: ms(2300)},
			{at: ms(2299), phase: corev1.PodRunning, apps: []string{"Running@300ms"}, ready: []bool{true},
				conds: "True@300ms True@0s True@300ms True@300ms", next: ms(2300)},
			{at: ms(2300), phase: corev1.PodSucceeded, apps: []string{"Terminated:Completed:0@300ms-2.3s"},
				ready: []bool{false}, started: []bool{false},
				conds: "False@2.3s True@0s False@2.3s False@2.3s", never: true},
			{at: 400 * day, phase: corev1.PodSucceeded, apps: []string{"Terminated:Completed:0@300ms-2.3s"},
				ready: []bool{false}, conds: "False@2.3s True@0s False@2.3s False@2.3s", never: true},
		})
		st, _ := statusAt(t, pod, at(time.Minute))
		assert.Equal(t, "PodCompleted", cond(t, st, corev1.PodReady).Reason)
		assert.Equal(t, "PodCompleted", cond(t, st, corev1.ContainersReady).Reason)
		assert.Equal(t, "PodCompleted", cond(t, st, corev1.PodInitialized).Reason)
		assert.Equal(t, ContainerID("uid-1", "app", 0), st.ContainerStatuses[0].State.Terminated.ContainerID)
	})

	t.Run("OnFailure exit 0 succeeds", func(t *testing.T) {
		st, next := statusAt(t, newPod(policy(corev1.RestartPolicyOnFailure)), at(time.Hour))
		assert.Equal(t, corev1.PodSucceeded, st.Phase)
		assert.True(t, next.IsZero())
	})

	t.Run("exit code 3 under Never fails", func(t *testing.T) {
		pod := newPod(containers("a", "b"), policy(corev1.RestartPolicyNever), annotate("exit-code", "3"))
		checkTimeline(t, pod, []step{
			{at: ms(3300), phase: corev1.PodFailed,
				apps:  []string{"Terminated:Error:3@300ms-3.3s", "Terminated:Error:3@300ms-3.3s"},
				ready: []bool{false, false}, conds: "False@3.3s True@0s False@3.3s False@3.3s", never: true},
		})
		st, _ := statusAt(t, pod, at(time.Hour))
		assert.Equal(t, "PodFailed", cond(t, st, corev1.PodReady).Reason)
	})

	t.Run("crash under Never fails without restart", func(t *testing.T) {
		pod := newPod(policy(corev1.RestartPolicyNever), annotate("fail", "true"))
		checkTimeline(t, pod, []step{
			{at: ms(1300), phase: corev1.PodFailed, apps: []string{"Terminated:Error:1@300ms-1.3s"},
				ready: []bool{false}, conds: "False@1.3s True@0s False@1.3s False@1.3s", never: true},
			{at: day, phase: corev1.PodFailed, apps: []string{"Terminated:Error:1@300ms-1.3s"},
				ready: []bool{false}, conds: "False@1.3s True@0s False@1.3s False@1.3s", never: true},
		})
	})

	t.Run("OnFailure non-zero restarts with back-off", func(t *testing.T) {
		pod := newPod(policy(corev1.RestartPolicyOnFailure), annotate("exit-code", "2", "run-duration", "1s"))
		checkTimeline(t, pod, []step{
			{at: ms(1300), phase: corev1.PodRunning, apps: []string{"Waiting:CrashLoopBackOff"}, ready: []bool{false},
				conds: "True@300ms True@0s False@1.3s False@1.3s", next: ms(11300)},
			{at: ms(11300), phase: corev1.PodRunning, apps: []string{"Running@11.3s"}, ready: []bool{true},
				restarts: []int32{1}, conds: "True@300ms True@0s True@11.3s True@11.3s", next: ms(12300)},
			{at: ms(12300), phase: corev1.PodRunning, apps: []string{"Waiting:CrashLoopBackOff"}, ready: []bool{false},
				restarts: []int32{1}, conds: "True@300ms True@0s False@12.3s False@12.3s", next: ms(32300)},
		})
		st, _ := statusAt(t, pod, at(ms(11500)))
		last := st.ContainerStatuses[0].LastTerminationState.Terminated
		require.NotNil(t, last)
		assert.Equal(t, int32(2), last.ExitCode)
		assert.Equal(t, "Error", last.Reason)
		assert.Equal(t, ContainerID("uid-1", "app", 0), last.ContainerID)
		assert.Equal(t, ContainerID("uid-1", "app", 1), st.ContainerStatuses[0].ContainerID)
	})
}

// refRun is a naive model of a crash loop started at offset 0: the run in
// progress or last ended at d, walking run by run.
func refRun(d, length time.Duration) (k int32, start, end, next time.Duration) {
	b := initialBackOff
	for {
		end = start + length
		next = end + b
		if d < next {
			return k, start, end, next
		}
		start = next
		k++
		if length <= backOffResetAfter {
			b = min(2*b, maxBackOff)
		}
	}
}

func TestStatusCrashLoop(t *testing.T) {
	pod := newPod(annotate("fail", "true"))
	msg := func(b string) string { return "back-off " + b + " restarting failed container=app pod=web(uid-1)" }
	for _, tc := range []struct {
		at       time.Duration
		restarts int32
		state    string
		message  string
		last     string // LastTerminationState summary
		next     time.Duration
	}{
		{at: ms(1299), state: "Running@300ms", last: "none", next: ms(1300)},
		{at: ms(1300), state: "Waiting:CrashLoopBackOff", message: msg("10s"), last: "Terminated:Error:1@300ms-1.3s", next: ms(11300)},
		{at: ms(11300), restarts: 1, state: "Running@11.3s", last: "Terminated:Error:1@300ms-1.3s", next: ms(12300)},
		{at: ms(12300), restarts: 1, state: "Waiting:CrashLoopBackOff", message: msg("20s"), last: "Terminated:Error:1@11.3s-12.3s", next: ms(32300)},
		{at: ms(33300), restarts: 2, state: "Waiting:CrashLoopBackOff", message: msg("40s"), last: "Terminated:Error:1@32.3s-33.3s", next: ms(73300)},
		{at: ms(74300), restarts: 3, state: "Waiting:CrashLoopBackOff", message: msg("1m20s"), last: "Terminated:Error:1@1m13.3s-1m14.3s", next: ms(154300)},
		{at: ms(155300), restarts: 4, state: "Waiting:CrashLoopBackOff", message: msg("2m40s"), last: "Terminated:Error:1@2m34.3s-2m35.3s", next: ms(315300)},
		{at: ms(316300), restarts: 5, state: "Waiting:CrashLoopBackOff", message: msg("5m0s"), last: "Terminated:Error:1@5m15.3s-5m16.3s", next: ms(616300)},
		{at: ms(616300), restarts: 6, state: "Running@10m16.3s", last: "Terminated:Error:1@5m15.3s-5m16.3s", next: ms(617300)},
		{at: ms(917300), restarts: 7, state: "Running@15m17.3s", last: "Terminated:Error:1@10m16.3s-10m17.3s", next: ms(918300)},
		// 30 days in: run k starts at 315.3s + (k-5)*301s.
		{at: 30 * day, restarts: 8615, state: "Waiting:CrashLoopBackOff", message: msg("5m0s"),
			last: "Terminated:Error:1@719h58m45.3s-719h58m46.3s", next: ms(2592226300)},
	} {
		t.Run(tc.at.String(), func(t *testing.T) {
			st, next := statusAt(t, pod, at(tc.at))
			require.Len(t, st.ContainerStatuses, 1)
			cs := st.ContainerStatuses[0]
			assert.Equal(t, corev1.PodRunning, st.Phase, "a crash-looping pod stays Running")
			assert.Equal(t, tc.restarts, cs.RestartCount)
			assert.Equal(t, tc.state, stateSummary(cs))
			if cs.State.Waiting != nil {
				assert.Equal(t, tc.message, cs.State.Waiting.Message)
				assert.False(t, cs.Ready)
				assert.False(t, *cs.Started)
			} else {
				assert.True(t, cs.Ready)
			}
			last := "none"
			if cs.LastTerminationState.Terminated != nil {
				last = stateSummary(corev1.ContainerStatus{State: cs.LastTerminationState})
			}
			assert.Equal(t, tc.last, last)
			assert.Equal(t, at(tc.next), next)
			assert.Equal(t, ContainerID("uid-1", "app", tc.restarts), cs.ContainerID)
		})
	}

	t.Run("matches a naive model", func(t *testing.T) {
		for _, length := range []time.Duration{time.Second, 7 * time.Second, 20 * time.Minute} {
			p := newPod(annotate("crash-after", length.String()))
			plan := planOf(t, p)
			appStart := ms(300)
			for d := time.Duration(0); d < 6*time.Hour; d += 997 * time.Millisecond {
				st, next := Status(p, plan, t0, at(appStart+d))
				k, start, end, nextStart := refRun(d, length)
				cs := st.ContainerStatuses[0]
				require.Equal(t, k, cs.RestartCount, "length %v at %v", length, d)
				if d < end {
					require.NotNil(t, cs.State.Running, "length %v at %v", length, d)
					require.Equal(t, at(appStart+start), cs.State.Running.StartedAt.Time)
					require.Equal(t, at(appStart+end), next)
				} else {
					require.NotNil(t, cs.State.Waiting, "length %v at %v", length, d)
					require.Equal(t, at(appStart+nextStart), next)
					require.Equal(t, at(appStart+end), cs.LastTerminationState.Terminated.FinishedAt.Time)
				}
			}
		}
	})

	t.Run("long runs reset the back-off", func(t *testing.T) {
		st, _ := statusAt(t, newPod(annotate("crash-after", "20m")), at(ms(300)+2*20*time.Minute+10*time.Second))
		cs := st.ContainerStatuses[0]
		assert.Equal(t, int32(1), cs.RestartCount)
		require.NotNil(t, cs.State.Waiting)
		assert.Equal(t, msg("10s"), cs.State.Waiting.Message)
	})

	t.Run("months in stays fast", func(t *testing.T) {
		plan := planOf(t, pod)
		begin := time.Now()
		for i := range 1000 {
			st, _ := Status(pod, plan, t0, at(30*day+time.Duration(i)*time.Second))
			require.Greater(t, st.ContainerStatuses[0].RestartCount, int32(8000))
		}
		st, _ := Status(pod, plan, t0, at(100*365*day))
		assert.Greater(t, st.ContainerStatuses[0].RestartCount, int32(10_000_000))
		// Generous: O(1) per call is microseconds, even on a loaded machine.
		assert.Less(t, time.Since(begin), 5*time.Second)
	})
}

func TestStatusConditionsFromAPI(t *testing.T) {
	scheduled := corev1.PodCondition{Type: corev1.PodScheduled, Status: corev1.ConditionTrue,
		LastTransitionTime: metav1.Time{Time: t0.Add(-5 * time.Second)}}
	custom := corev1.PodCondition{Type: "example.com/Custom", Status: corev1.ConditionFalse}
	stale := corev1.PodCondition{Type: corev1.PodReady, Status: corev1.ConditionTrue}

	t.Run("kept and replaced", func(t *testing.T) {
		pod := newPod()
		pod.Generation = 4
		pod.Status.Conditions = []corev1.PodCondition{stale, scheduled, custom}
		st, _ := statusAt(t, pod, at(0))
		assert.Equal(t, custom, st.Conditions[0], "foreign conditions first, unchanged")
		assert.Equal(t, scheduled, cond(t, st, corev1.PodScheduled))
		assert.Equal(t, corev1.ConditionFalse, cond(t, st, corev1.PodReady).Status)
		assert.Len(t, st.Conditions, 6)
		assert.Equal(t, int64(4), st.ObservedGeneration)
		assert.Equal(t, int64(4), cond(t, st, corev1.PodReady).ObservedGeneration)
	})

	t.Run("readiness gates", func(t *testing.T) {
		pod := newPod()
		pod.Spec.ReadinessGates = []corev1.PodReadinessGate{{ConditionType: "example.com/lb"}}
		st, _ := statusAt(t, pod, at(time.Second))
		assert.Equal(t, corev1.ConditionTrue, cond(t, st, corev1.ContainersReady).Status)
		ready := cond(t, st, corev1.PodReady)
		assert.Equal(t, corev1.ConditionFalse, ready.Status)
		assert.Equal(t, "ReadinessGatesNotReady", ready.Reason)
		assert.Equal(t, `corresponding condition of pod readiness gate "example.com/lb" does not exist.`, ready.Message)

		pod.Status.Conditions = []corev1.PodCondition{{Type: "example.com/lb", Status: corev1.ConditionFalse}}
		st, _ = statusAt(t, pod, at(time.Second))
		assert.Equal(t, `the status of pod readiness gate "example.com/lb" is not "True", but False`,
			cond(t, st, corev1.PodReady).Message)

		gateTime := t0.Add(10 * time.Second)
		pod.Status.Conditions = []corev1.PodCondition{{Type: "example.com/lb", Status: corev1.ConditionTrue,
			LastTransitionTime: metav1.Time{Time: gateTime}}}
		st, _ = statusAt(t, pod, at(time.Minute))
		ready = cond(t, st, corev1.PodReady)
		assert.Equal(t, corev1.ConditionTrue, ready.Status)
		assert.Equal(t, gateTime, ready.LastTransitionTime.Time, "ready once the last of containers and gates was")
	})
}

// nextPods are the configurations whose timelines are walked through next.
func nextPods() map[string]*corev1.Pod {
	return map[string]*corev1.Pod{
		"deployment": newPod(),
		"probes":     newPod(containers("a", "b", "c"), probes(0, 2, 5), probes(1, -1, 3), probes(2, 1, -1)),
		"inits":      newPod(inits("i1", "i2", "i3")),
		"sidecars": newPod(sidecar("s1", 2), inits("i1"), sidecar("s2", 0),
			policy(corev1.RestartPolicyNever)),
		"job":           newPod(policy(corev1.RestartPolicyNever), probes(0, -1, 1)),
		"failed job":    newPod(policy(corev1.RestartPolicyNever), annotate("exit-code", "3")),
		"crash loop":    newPod(containers("a", "b"), probes(1, -1, 2), annotate("crash-after", "3s")),
		"never ready":   newPod(probes(0, -1, 10), annotate("crash-after", "3s")),
		"onfailure":     newPod(policy(corev1.RestartPolicyOnFailure), annotate("exit-code", "1", "run-duration", "2s")),
		"instant":       newPod(inits("i1", "i2"), annotate("start-delay", "0s", "init-duration", "0s")),
		"instant job":   newPod(policy(corev1.RestartPolicyNever), annotate("start-delay", "0s", "run-duration", "0s")),
		"instant crash": newPod(policy(corev1.RestartPolicyOnFailure), annotate("exit-code", "4", "run-duration", "0s")),
	}
}

// TestStatusNextIsExact walks each timeline along next: the status just
// before next equals the status at the previous instant and differs from the
// one at next, and every condition's transition time is a real transition.
func TestStatusNextIsExact(t *testing.T) {
	for name, pod := range nextPods() {
		t.Run(name, func(t *testing.T) {
			plan := planOf(t, pod)
			now := at(-time.Second)
			steps := 0
			for ; steps < 40; steps++ {
				st, next := Status(pod, plan, t0, now)
				checkTransitionTimes(t, pod, plan, st, now)
				if next.IsZero() {
					later, _ := Status(pod, plan, t0, now.Add(365*day))
					assert.Equal(t, st, later, "no next, yet the status changes")
					break
				}
				require.True(t, next.After(now), "next %v not after %v", next, now)
				before, nextBefore := Status(pod, plan, t0, next.Add(-1))
				assert.Equal(t, st, before, "status changed before next=%v", next.Sub(t0))
				assert.Equal(t, next, nextBefore)
				after, _ := Status(pod, plan, t0, next)
				assert.NotEqual(t, before, after, "nothing changed at next=%v", next.Sub(t0))
				now = next
			}
			assert.Greater(t, steps, 0)
		})
	}
}

func checkTransitionTimes(t *testing.T, pod *corev1.Pod, plan Plan, st corev1.PodStatus, now time.Time) {
	t.Helper()
	for _, c := range st.Conditions {
		if c.Type == corev1.PodScheduled {
			continue
		}
		ltt := c.LastTransitionTime.Time
		if now.Before(t0) {
			assert.Equal(t, t0, ltt)
			continue
		}
		require.False(t, ltt.After(now), "%s transition %v after now %v", c.Type, ltt.Sub(t0), now.Sub(t0))
		if ltt.Equal(t0) {
			continue
		}
		before, _ := Status(pod, plan, t0, ltt.Add(-1))
		atLTT, _ := Status(pod, plan, t0, ltt)
		assert.NotEqual(t, c.Status, cond(t, before, c.Type).Status, "%s did not change at %v", c.Type, ltt.Sub(t0))
		assert.Equal(t, c.Status, cond(t, atLTT, c.Type).Status, "%s at its transition %v", c.Type, ltt.Sub(t0))
	}
}

func TestStatusDeterministicAndRobust(t *testing.T) {
	pod := newPod(inits("i"), annotate("fail", "true"))
	plan := planOf(t, pod)
	a, na := Status(pod, plan, t0, at(time.Hour))
	b, nb := Status(pod.DeepCopy(), plan, t0, at(time.Hour))
	assert.Equal(t, a, b)
	assert.Equal(t, na, nb)

	// Monotonic clock readings do not leak into the result.
	now := time.Now()
	wall := now.Round(0)
	c, _ := Status(pod, plan, wall.Add(-time.Minute), now)
	d, _ := Status(pod, plan, wall.Add(-time.Minute), wall)
	assert.Equal(t, c, d)

	assert.NotPanics(t, func() {
		Status(nil, Plan{}, t0, at(time.Second))
		Status(&corev1.Pod{}, DefaultPlan(), t0, at(time.Second))
		Status(newPod(), Plan{StartDelay: -time.Second, InitDuration: -1, RunDuration: -1, CrashAfter: -1}, t0, at(time.Second))
		huge := newPod(policy(corev1.RestartPolicyOnFailure), annotate("run-duration", "2000000h", "exit-code", "1"))
		Status(huge, planOf(t, huge), t0, at(280*365*day))
		crash := newPod(annotate("crash-after", "2000000h"))
		Status(crash, planOf(t, crash), t0, at(280*365*day))
		Terminating(nil, Plan{}, corev1.PodStatus{}, t0, t0)
		Events(nil, nil, nil)
		Events(newPod(), nil, &corev1.PodStatus{})
		_, _ = Logs(nil, Plan{}, "x", corev1.PodStatus{}, false, t0)
	})
}

func TestTerminating(t *testing.T) {
	req := at(time.Minute)
	secs := func(n int64) *int64 { return &n }
	for _, tc := range []struct {
		name          string
		stopDelay     string
		specGrace     *int64
		deletionGrace *int64
		wantDone      time.Duration
		wantExit      int32
		wantReason    string
		wantPhase     corev1.PodPhase
	}{
		{name: "immediate", stopDelay: "0s", wantDone: 0, wantReason: "Completed", wantPhase: corev1.PodSucceeded},
		{name: "within default grace", stopDelay: "5s", wantDone: 5 * time.Second, wantReason: "Completed", wantPhase: corev1.PodSucceeded},
		{name: "beyond default grace", stopDelay: "1m", wantDone: 30 * time.Second, wantExit: 137, wantReason: "Error", wantPhase: corev1.PodFailed},
		{name: "spec grace caps", stopDelay: "20s", specGrace: secs(10), wantDone: 10 * time.Second, wantExit: 137, wantReason: "Error", wantPhase: corev1.PodFailed},
		{name: "spec grace fits", stopDelay: "20s", specGrace: secs(60), wantDone: 20 * time.Second, wantReason: "Completed", wantPhase: corev1.PodSucceeded},
		{name: "deletion grace wins", stopDelay: "5s", specGrace: secs(60), deletionGrace: secs(3), wantDone: 3 * time.Second, wantExit: 137, wantReason: "Error", wantPhase: corev1.PodFailed},
		{name: "grace zero", stopDelay: "5s", deletionGrace: secs(0), wantDone: 0, wantExit: 137, wantReason: "Error", wantPhase: corev1.PodFailed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pod := newPod(annotate("stop-delay", tc.stopDelay))
			pod.Spec.TerminationGracePeriodSeconds = tc.specGrace
			pod.DeletionGracePeriodSeconds = tc.deletionGrace
			plan := planOf(t, pod)
			cur, _ := Status(pod, plan, t0, req)
			require.Equal(t, corev1.PodRunning, cur.Phase)
			curCopy := cur.DeepCopy()

			if tc.wantDone > 0 {
				st, done := Terminating(pod, plan, cur, req, req.Add(tc.wantDone-1))
				assert.Equal(t, req.Add(tc.wantDone), done)
				assert.Equal(t, cur, st, "nothing visible changes while stopping")
			}
			st, done := Terminating(pod, plan, cur, req, req.Add(tc.wantDone))
			assert.Equal(t, req.Add(tc.wantDone), done)
			assert.Equal(t, *curCopy, cur, "current is not modified")
			assert.Equal(t, tc.wantPhase, st.Phase)
			cs := st.ContainerStatuses[0]
			require.NotNil(t, cs.State.Terminated)
			assert.Equal(t, tc.wantExit, cs.State.Terminated.ExitCode)
			assert.Equal(t, tc.wantReason, cs.State.Terminated.Reason)
			assert.Equal(t, at(ms(300)), cs.State.Terminated.StartedAt.Time)
			assert.Equal(t, done, cs.State.Terminated.FinishedAt.Time)
			assert.Equal(t, cur.ContainerStatuses[0].ContainerID, cs.State.Terminated.ContainerID)
			assert.False(t, cs.Ready)
			for _, typ := range []corev1.PodConditionType{corev1.PodReady, corev1.ContainersReady, corev1.PodReadyToStartContainers} {
				c := cond(t, st, typ)
				assert.Equal(t, corev1.ConditionFalse, c.Status, typ)
				assert.Equal(t, done, c.LastTransitionTime.Time, typ)
			}

			later, laterDone := Terminating(pod, plan, cur, req, req.Add(time.Hour))
			assert.Equal(t, st, later, "stable after done")
			assert.Equal(t, done, laterDone)
		})
	}

	t.Run("finished job needs no wait", func(t *testing.T) {
		pod := newPod(policy(corev1.RestartPolicyNever), annotate("stop-delay", "10s"))
		plan := planOf(t, pod)
		cur, _ := Status(pod, plan, t0, req)
		st, done := Terminating(pod, plan, cur, req, req)
		assert.Equal(t, req, done)
		assert.Equal(t, cur, st)
	})

	t.Run("crash loop shows its last run", func(t *testing.T) {
		pod := newPod(annotate("fail", "true", "stop-delay", "2s"))
		plan := planOf(t, pod)
		cur, _ := Status(pod, plan, t0, at(5*time.Second)) // in back-off after run 0
		require.NotNil(t, cur.ContainerStatuses[0].State.Waiting)
		st, done := Terminating(pod, plan, cur, at(5*time.Second), at(time.Minute))
		assert.Equal(t, at(5*time.Second), done, "nothing running to wait for")
		cs := st.ContainerStatuses[0]
		require.NotNil(t, cs.State.Terminated)
		assert.Equal(t, int32(1), cs.State.Terminated.ExitCode)
		assert.Nil(t, cs.LastTerminationState.Terminated)
		assert.Equal(t, corev1.PodFailed, st.Phase)
	})

	t.Run("pending pod", func(t *testing.T) {
		pod := newPod(inits("i"))
		plan := planOf(t, pod)
		cur, _ := Status(pod, plan, t0, at(0))
		st, done := Terminating(pod, plan, cur, at(0), at(0))
		assert.Equal(t, at(0), done)
		assert.Equal(t, "Waiting:PodInitializing", stateSummary(st.ContainerStatuses[0]))
		assert.Equal(t, corev1.PodFailed, st.Phase)
	})

	t.Run("init container and sidecar stop too", func(t *testing.T) {
		pod := newPod(sidecar("proxy", 0), inits("setup"))
		plan := planOf(t, pod)
		cur, _ := Status(pod, plan, t0, at(ms(500))) // proxy and setup running
		st, done := Terminating(pod, plan, cur, at(ms(500)), at(time.Minute))
		assert.Equal(t, at(ms(500)), done)
		for _, cs := range st.InitContainerStatuses {
			assert.NotNil(t, cs.State.Terminated, cs.Name)
		}
	})
}

func reasons(evs []Event) []string {
	var out []string
	for _, e := range evs {
		out = append(out, e.Reason)
	}
	return out
}

func TestEvents(t *testing.T) {
	t.Run("crash loop walk", func(t *testing.T) {
		pod := newPod(annotate("fail", "true"))
		plan := planOf(t, pod)
		var all []Event
		var prev corev1.PodStatus
		now := t0
		for range 12 {
			st, next := Status(pod, plan, t0, now)
			all = append(all, Events(pod, &prev, &st)...)
			assert.Empty(t, Events(pod, &st, &st), "no events without a change")
			prev = st
			now = next
		}
		start := []string{"Pulled", "Created", "Started"}
		var want []string
		want = append(want, start...)
		for range 5 {
			want = append(want, "BackOff")
			want = append(want, start...)
		}
		// 12 statuses: pending, then run/back-off pairs; the last is run 5.
		assert.Equal(t, want, reasons(all))
		assert.Equal(t, Event{Type: "Normal", Reason: "Pulled", Message: `Container image "nginx:1.27" already present on machine`}, all[0])
		assert.Equal(t, Event{Type: "Normal", Reason: "Created", Message: "Created container: app"}, all[1])
		assert.Equal(t, Event{Type: "Normal", Reason: "Started", Message: "Started container app"}, all[2])
		assert.Equal(t, Event{Type: "Warning", Reason: "BackOff", Message: "Back-off restarting failed container app in pod web(uid-1)"}, all[3])
	})

	t.Run("init containers in order", func(t *testing.T) {
		pod := newPod(inits("i1", "i2"), containers("a", "b"))
		plan := planOf(t, pod)
		var msgs []string
		var prev corev1.PodStatus
		now := t0
		for {
			st, next := Status(pod, plan, t0, now)
			for _, e := range Events(pod, &prev, &st) {
				if e.Reason == "Started" {
					msgs = append(msgs, e.Message)
				}
			}
			prev = st
			if next.IsZero() {
				break
			}
			now = next
		}
		assert.Equal(t, []string{"Started container i1", "Started container i2", "Started container a", "Started container b"}, msgs)

		// All at once, e.g. after an agent restart: still in the order they happened.
		final, _ := Status(pod, plan, t0, at(time.Hour))
		var started []string
		for _, e := range Events(pod, nil, &final) {
			if e.Reason == "Started" {
				started = append(started, e.Message)
			}
		}
		assert.Equal(t, msgs, started)
	})

	t.Run("long gap reports each kind once", func(t *testing.T) {
		pod := newPod(annotate("fail", "true"))
		plan := planOf(t, pod)
		early, _ := Status(pod, plan, t0, at(time.Second))
		late, _ := Status(pod, plan, t0, at(30*day))
		assert.Equal(t, []string{"Pulled", "Created", "Started", "BackOff"}, reasons(Events(pod, &early, &late)))
		running, _ := Status(pod, plan, t0, at(30*day+ms(226500)))
		require.NotNil(t, running.ContainerStatuses[0].State.Running)
		assert.Equal(t, []string{"Pulled", "Created", "Started"}, reasons(Events(pod, &late, &running)))
		assert.Equal(t, []string{"BackOff", "Pulled", "Created", "Started"}, reasons(Events(pod, &early, &running)))
	})

	t.Run("job completion reports nothing", func(t *testing.T) {
		pod := newPod(policy(corev1.RestartPolicyNever))
		plan := planOf(t, pod)
		running, _ := Status(pod, plan, t0, at(time.Second))
		done, _ := Status(pod, plan, t0, at(time.Hour))
		assert.Empty(t, Events(pod, &running, &done))
	})

	t.Run("killing on deletion", func(t *testing.T) {
		pod := newPod(containers("a", "b"), sidecar("proxy", 0), annotate("stop-delay", "3s"))
		plan := planOf(t, pod)
		req := at(time.Minute)
		pod.DeletionTimestamp = &metav1.Time{Time: req.Add(30 * time.Second)}
		pod.DeletionGracePeriodSeconds = func(n int64) *int64 { return &n }(30)
		cur, _ := Status(pod, plan, t0, req)
		stopping, done := Terminating(pod, plan, cur, req, req)
		assert.Empty(t, Events(pod, &cur, &stopping))
		final, _ := Terminating(pod, plan, cur, req, done)
		evs := Events(pod, &cur, &final)
		assert.Equal(t, []Event{
			{Type: "Normal", Reason: "Killing", Message: "Stopping container a"},
			{Type: "Normal", Reason: "Killing", Message: "Stopping container b"},
			{Type: "Normal", Reason: "Killing", Message: "Stopping container proxy"},
		}, evs)
	})
}

func texts(lines []LogLine) []string {
	var out []string
	for _, l := range lines {
		out = append(out, fmt.Sprintf("%v %s", l.Time.Sub(t0), l.Text))
	}
	return out
}

func TestLogs(t *testing.T) {
	t.Run("lines and ticks", func(t *testing.T) {
		pod := newPod(annotate("logs", "hello\nworld", "log-interval", "1s"))
		plan := planOf(t, pod)
		st, _ := Status(pod, plan, t0, at(ms(3300)))
		lines, err := Logs(pod, plan, "app", st, false, at(ms(3300)))
		require.NoError(t, err)
		assert.Equal(t, []string{
			"300ms started container app", "300ms hello", "300ms world",
			"1.3s tick 1 from app", "2.3s tick 2 from app", "3.3s tick 3 from app",
		}, texts(lines))

		lines, err = Logs(pod, plan, "app", st, false, at(ms(3299)))
		require.NoError(t, err)
		assert.Len(t, lines, 5, "a tick is printed at its instant, not before")
	})

	t.Run("no interval, no ticks", func(t *testing.T) {
		pod := newPod()
		plan := planOf(t, pod)
		st, _ := Status(pod, plan, t0, at(time.Hour))
		lines, err := Logs(pod, plan, "app", st, false, at(time.Hour))
		require.NoError(t, err)
		assert.Equal(t, []string{"300ms started container app"}, texts(lines))
	})

	t.Run("current and previous runs", func(t *testing.T) {
		pod := newPod(annotate("crash-after", "2500ms", "log-interval", "1s"))
		plan := planOf(t, pod)
		run0 := []string{"300ms started container app", "1.3s tick 1 from app", "2.3s tick 2 from app"}

		// In back-off, both current and previous are the run that just ended.
		st, _ := Status(pod, plan, t0, at(5*time.Second))
		cur, err := Logs(pod, plan, "app", st, false, at(5*time.Second))
		require.NoError(t, err)
		assert.Equal(t, run0, texts(cur))
		prev, err := Logs(pod, plan, "app", st, true, at(5*time.Second))
		require.NoError(t, err)
		assert.Equal(t, run0, texts(prev))

		// Run 1 started at 12.8s.
		now := at(ms(13900))
		st, _ = Status(pod, plan, t0, now)
		require.Equal(t, int32(1), st.ContainerStatuses[0].RestartCount)
		cur, err = Logs(pod, plan, "app", st, false, now)
		require.NoError(t, err)
		assert.Equal(t, []string{"12.8s started container app", "13.8s tick 1 from app"}, texts(cur))
		prev, err = Logs(pod, plan, "app", st, true, now)
		require.NoError(t, err)
		assert.Equal(t, run0, texts(prev))
	})

	t.Run("init container", func(t *testing.T) {
		pod := newPod(inits("setup"), annotate("logs", "hi"))
		plan := planOf(t, pod)
		st, _ := Status(pod, plan, t0, at(time.Minute))
		lines, err := Logs(pod, plan, "setup", st, false, at(time.Minute))
		require.NoError(t, err)
		assert.Equal(t, []string{"300ms started container setup", "300ms hi"}, texts(lines))
	})

	t.Run("errors", func(t *testing.T) {
		pod := newPod(inits("setup"))
		plan := planOf(t, pod)
		st, _ := Status(pod, plan, t0, at(0))
		_, err := Logs(pod, plan, "nope", st, false, at(0))
		assert.EqualError(t, err, `container "nope" is not valid for pod "web"`)
		_, err = Logs(pod, plan, "setup", st, false, at(0))
		assert.EqualError(t, err, `container "setup" in pod "web" is waiting to start: ContainerCreating`)
		_, err = Logs(pod, plan, "app", st, false, at(0))
		assert.EqualError(t, err, `container "app" in pod "web" is waiting to start: PodInitializing`)
		_, err = Logs(pod, plan, "app", corev1.PodStatus{}, false, at(0))
		assert.EqualError(t, err, `container "app" in pod "web" is waiting to start: ContainerCreating`)
		st, _ = Status(pod, plan, t0, at(time.Minute))
		_, err = Logs(pod, plan, "app", st, true, at(time.Minute))
		assert.EqualError(t, err, `previous terminated container "app" in pod "web" not found`)
	})

	t.Run("bounded", func(t *testing.T) {
		pod := newPod(annotate("log-interval", "1ms"))
		plan := planOf(t, pod)
		now := at(30 * day)
		st, _ := Status(pod, plan, t0, now)
		lines, err := Logs(pod, plan, "app", st, false, now)
		require.NoError(t, err)
		require.Len(t, lines, MaxLogLines)
		ticks := int64((30*day - ms(300)) / time.Millisecond)
		assert.Equal(t, fmt.Sprintf("tick %d from app", ticks), lines[len(lines)-1].Text)
		assert.Equal(t, fmt.Sprintf("tick %d from app", ticks-MaxLogLines+1), lines[0].Text)
		for i := 1; i < len(lines); i++ {
			require.True(t, lines[i].Time.After(lines[i-1].Time))
		}

		many := make([]string, MaxLogLines+5)
		for i := range many {
			many[i] = fmt.Sprintf("line %d", i)
		}
		plan.Logs = many
		plan.LogInterval = 0
		lines, err = Logs(pod, plan, "app", st, false, now)
		require.NoError(t, err)
		require.Len(t, lines, MaxLogLines)
		assert.Equal(t, "line 5", lines[0].Text)
	})
}

func TestContainerUsage(t *testing.T) {
	running := func(started time.Time) corev1.ContainerStatus {
		return corev1.ContainerStatus{State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{
			StartedAt: metav1.Time{Time: started}}}}
	}
	plan := DefaultPlan()
	plan.CPU = resource.MustParse("250m")
	plan.Memory = resource.MustParse("64Mi")

	t.Run("not running", func(t *testing.T) {
		for _, cs := range []corev1.ContainerStatus{
			{},
			{State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff"}}},
			{State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{}}},
		} {
			_, ok := ContainerUsage(plan, cs, t0)
			assert.False(t, ok)
		}
	})

	t.Run("rate times uptime", func(t *testing.T) {
		u, ok := ContainerUsage(plan, running(t0), at(2*time.Second))
		require.True(t, ok)
		assert.Equal(t, Usage{
			CPUNanoCores:            250_000_000,
			CPUUsageCoreNanoSeconds: 500_000_000,
			MemoryWorkingSetBytes:   64 << 20,
			StartTime:               t0,
		}, u)
	})

	t.Run("never zero", func(t *testing.T) {
		zero := Plan{CPU: resource.MustParse("0"), Memory: resource.MustParse("0")}
		for _, now := range []time.Time{t0.Add(-time.Second), t0, at(1)} {
			u, ok := ContainerUsage(zero, running(t0), now)
			require.True(t, ok)
			assert.Equal(t, uint64(1_000_000), u.CPUNanoCores)
			assert.Equal(t, uint64(1<<20), u.MemoryWorkingSetBytes)
			assert.NotZero(t, u.CPUUsageCoreNanoSeconds)
		}
	})

	t.Run("cumulative is monotonic", func(t *testing.T) {
		var last uint64
		for d := time.Duration(0); d < time.Hour; d += 7*time.Second + 13*time.Millisecond {
			u, _ := ContainerUsage(plan, running(t0), at(d))
			require.GreaterOrEqual(t, u.CPUUsageCoreNanoSeconds, last)
			last = u.CPUUsageCoreNanoSeconds
		}
		assert.Greater(t, last, uint64(0))
	})

	t.Run("large values do not overflow", func(t *testing.T) {
		big := Plan{CPU: resource.MustParse("64"), Memory: resource.MustParse("1Ti")}
		u, _ := ContainerUsage(big, running(t0), at(30*day))
		assert.Equal(t, uint64(64e9), u.CPUNanoCores)
		assert.Equal(t, uint64(64e9)*uint64(30*24*3600), u.CPUUsageCoreNanoSeconds)
		assert.Equal(t, uint64(1<<40), u.MemoryWorkingSetBytes)

		absurd := Plan{CPU: resource.MustParse("1e30"), Memory: resource.MustParse("100E")}
		u, _ = ContainerUsage(absurd, running(t0), at(30*day))
		assert.Equal(t, uint64(math.MaxInt64), u.CPUNanoCores, "saturates instead of wrapping")
		assert.Equal(t, uint64(math.MaxUint64), u.CPUUsageCoreNanoSeconds)
		assert.Equal(t, uint64(math.MaxInt64), u.MemoryWorkingSetBytes)
	})
}

func TestIntegrate(t *testing.T) {
	cases := []struct {
		name      string
		total     uint64
		nanoCores uint64
		d         time.Duration
		want      uint64
	}{
		{"half a core for 2 s", 10, 500_000_000, 2 * time.Second, 10 + 1_000_000_000},
		{"no time", 7, 1e9, 0, 7},
		{"clock went back", 7, 1e9, -time.Second, 7},
		{"saturates", math.MaxUint64 - 1, 1e9, time.Second, math.MaxUint64},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, Integrate(tc.total, tc.nanoCores, tc.d))
		})
	}
}

func TestPlanUsageFloors(t *testing.T) {
	p := Plan{CPU: resource.MustParse("300m"), Memory: resource.MustParse("0")}
	assert.Equal(t, uint64(300_000_000), p.CPUNanoCores())
	assert.Equal(t, uint64(1<<20), p.MemoryBytes(), "never zero")
}

func TestAnnotationErrorUnwrap(t *testing.T) {
	_, errs := ParsePlan(newPod(annotate("start-delay", "soon")))
	require.Len(t, errs, 1)
	assert.NotNil(t, errors.Unwrap(errs[0]), "the duration parser's error is kept")
}

// BenchmarkStatus is a crash-looping 3-container pod a month after admission.
func BenchmarkStatus(b *testing.B) {
	pod := newPod(containers("a", "b", "c"), probes(0, 2, 5), probes(1, -1, 1), annotate("crash-after", "30s"))
	plan, errs := ParsePlan(pod)
	require.Empty(b, errs)
	now := at(30 * day)
	b.ReportAllocs()
	for b.Loop() {
		Status(pod, plan, t0, now)
	}
}
