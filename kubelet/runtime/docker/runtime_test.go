package docker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/tools/record"
	"k8s.io/utils/ptr"

	"minik.dev/minik/kubelet/engine"
	"minik.dev/minik/kubelet/podlogs"
	"minik.dev/minik/kubelet/runtime"
	"minik.dev/minik/nodeconfig"
)

// fakeEngine is an engine in memory: containers run until the test ends
// them (exit), and exec answers what the test scripted.
type fakeEngine struct {
	mu         sync.Mutex
	now        func() time.Time
	images     map[string]bool
	containers map[string]*fakeContainer
	seq        int
	// execCode is what an exec in a container answers.
	execCode func(id string, cmd []string) int
	started  []string // specs started, by container name, in order
	// startErr, when set, is why every start fails, as the engine
	// refuses a container it cannot run.
	startErr error
	stopped  []string // IDs stopped
	// messages are what containers wrote to their termination-message
	// files, by container name.
	messages map[string]string
	// users are the images' users, by image ("" for root).
	users map[string]string
	// volumeFiles are the generations of file volumes written, by
	// "volume/generation"; writes counts them.
	volumeFiles map[string][]engine.File
	writes      int
}

type fakeContainer struct {
	spec  engine.ContainerSpec
	state engine.State
	// output is what the container prints, one line each.
	output []string
}

func newFakeEngine(now func() time.Time) *fakeEngine {
	return &fakeEngine{now: now, images: map[string]bool{"app:1": true}, containers: map[string]*fakeContainer{}, messages: map[string]string{}, users: map[string]string{},
		execCode: func(string, []string) int { return 0 }}
}

var errNoSuchImage = errors.New("pull access denied for missing, repository does not exist")

func (f *fakeEngine) Version(context.Context) (string, error) { return "28.2.2", nil }
func (f *fakeEngine) ImagePresent(_ context.Context, image string) (string, bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return "sha256:" + image, f.images[image], nil
}
func (f *fakeEngine) PullImage(context.Context, string) error { return errNoSuchImage }
func (f *fakeEngine) ImageUser(_ context.Context, image string) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.users[image], nil
}
func (f *fakeEngine) RunSandbox(_ context.Context, spec engine.SandboxSpec) (string, string, error) {
	return "sandbox-" + spec.PodUID, "172.20.128.9", nil
}
func (f *fakeEngine) CreateContainer(_ context.Context, spec engine.ContainerSpec) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.seq++
	id := fmt.Sprintf("%s-%d", spec.Name, f.seq)
	f.containers[id] = &fakeContainer{spec: spec, state: engine.State{Status: "created"}, output: []string{fmt.Sprintf("hello from %s run %d", spec.Name, spec.Attempt)}}
	return id, nil
}
func (f *fakeEngine) Start(_ context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, ok := f.containers[id]
	if !ok {
		return engine.ErrNotFound
	}
	if f.startErr != nil {
		c.state = engine.State{Status: "exited", ExitCode: 128, Reason: engine.StartError, Error: f.startErr.Error()}
		return f.startErr
	}
	c.state = engine.State{Status: "running", Running: true, StartedAt: f.now(), ImageID: "sha256:" + c.spec.Image}
	f.started = append(f.started, c.spec.Name)
	return nil
}
func (f *fakeEngine) Stop(_ context.Context, id string, _ time.Duration) error {
	f.stopped = append(f.stopped, id)
	f.exit(id, 143)
	return nil
}
func (f *fakeEngine) UpdateResources(_ context.Context, id string, r engine.Resources) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, ok := f.containers[id]
	if !ok {
		return engine.ErrNotFound
	}
	c.spec.Resources = r
	return nil
}
func (f *fakeEngine) Remove(_ context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.containers, id)
	return nil
}
func (f *fakeEngine) Inspect(_ context.Context, id string) (engine.State, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, ok := f.containers[id]
	if !ok {
		return engine.State{}, engine.ErrNotFound
	}
	return c.state, nil
}
func (f *fakeEngine) EnsureVolume(_ context.Context, podUID, name string, _ engine.EmptyDir) (string, error) {
	return podUID + "-" + name, nil
}
func (f *fakeEngine) EnsureImageVolume(_ context.Context, podUID, name, image string) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.images[image] {
		return "", errNoSuchImage
	}
	return podUID + "-" + name + "-" + image, nil
}
func (f *fakeEngine) WriteVolumeFiles(_ context.Context, _, volume, gen string, files []engine.File) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.volumeFiles == nil {
		f.volumeFiles = map[string][]engine.File{}
	}
	f.volumeFiles[volume+"/"+gen] = files
	f.writes++
	return nil
}
func (f *fakeEngine) EnsureNodeVolume(_ context.Context, path string) (string, error) {
	return path, nil
}
func (f *fakeEngine) List(context.Context) ([]engine.PodContainer, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []engine.PodContainer
	for id, c := range f.containers {
		out = append(out, engine.PodContainer{ID: id, PodUID: c.spec.PodUID, Container: c.spec.Name, Attempt: c.spec.Attempt, Running: c.state.Running})
	}
	return out, nil
}
func (f *fakeEngine) RemovePod(_ context.Context, podUID string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for id, c := range f.containers {
		if c.spec.PodUID == podUID {
			delete(f.containers, id)
		}
	}
	return nil
}
func (f *fakeEngine) RemoveOrphans(context.Context) (int, error) { return 0, nil }
func (f *fakeEngine) Events(ctx context.Context) <-chan engine.Event {
	ch := make(chan engine.Event)
	go func() { <-ctx.Done(); close(ch) }()
	return ch
}

// Logs writes what the container printed, as records with the time the
// engine would stamp, to stdout.
func (f *fakeEngine) Logs(_ context.Context, id string, o engine.LogOptions, stdout, _ io.Writer) error {
	f.mu.Lock()
	c, ok := f.containers[id]
	var out []string
	if ok {
		out = c.output
	}
	f.mu.Unlock()
	if !ok {
		return engine.ErrNotFound
	}
	for _, line := range out {
		if o.Timestamps {
			line = "2026-11-29T12:00:00.5Z " + line
		}
		if _, err := io.WriteString(stdout, line+"\n"); err != nil {
			return err
		}
	}
	return nil
}
func (f *fakeEngine) Exec(_ context.Context, id string, cmd []string, _ io.Reader, _, _ io.Writer, _ bool, _ <-chan engine.Size) (int, error) {
	f.mu.Lock()
	code := f.execCode
	f.mu.Unlock()
	return code(id, cmd), nil
}
func (f *fakeEngine) Attach(context.Context, string, io.Reader, io.Writer, io.Writer, bool, <-chan engine.Size) error {
	return nil
}
func (f *fakeEngine) Stats(context.Context, string) (engine.Stats, error) {
	return engine.Stats{CPUNanos: 1e9, WorkingSet: 32 << 20, MemoryUsage: 40 << 20, RSS: 30 << 20,
		Network: &engine.NetworkStats{RxBytes: 1000, TxBytes: 2000, RxPackets: 10, TxPackets: 20}, ReadBytes: 4096, WriteBytes: 8192}, nil
}

func (f *fakeEngine) TerminationMessage(_ context.Context, _, _, container string) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.messages[container], nil
}

// exit ends a running container with code.
func (f *fakeEngine) exit(id string, code int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.containers[id]
	c.state.Status, c.state.Running, c.state.ExitCode, c.state.FinishedAt = "exited", false, code, f.now()
}

// running returns the ID of the running run of a container, or "".
func (f *fakeEngine) running(name string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	for id, c := range f.containers {
		if c.spec.Name == name && c.state.Running {
			return id
		}
	}
	return ""
}

var _ Engine = (*fakeEngine)(nil)

// testClock is a settable clock for the runtime and its fake engine.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// fakeCredentials issues what its fields hold: bundles by name, and the
// pod certificate once issued is set.
type fakeCredentials struct {
	mu        sync.Mutex
	bundles   map[string][]byte
	issued    bool
	forgotten []types.UID
}

func (f *fakeCredentials) TrustBundle(_ context.Context, src *corev1.ClusterTrustBundleProjection) ([]byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if b, ok := f.bundles[ptr.Deref(src.Name, "")]; ok {
		return b, nil
	}
	if ptr.Deref(src.Optional, false) {
		return []byte{}, nil
	}
	return nil, fmt.Errorf("no ClusterTrustBundle %q", ptr.Deref(src.Name, ""))
}

func (f *fakeCredentials) PodCertificate(_ context.Context, pod *corev1.Pod, volume string, index int) ([]byte, []byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.issued {
		return nil, nil, fmt.Errorf("no credentials yet for %s/%s", pod.Name, volume)
	}
	return []byte("KEY\n"), []byte(fmt.Sprintf("CHAIN %s %d\n", volume, index)), nil
}

func (f *fakeCredentials) ForgetPod(_ context.Context, uid types.UID) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.forgotten = append(f.forgotten, uid)
}

type harness struct {
	rt     *Runtime
	creds  *fakeCredentials
	eng    *fakeEngine
	clock  *testClock
	events *record.FakeRecorder
	woken  chan string
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	clock := &testClock{t: time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)}
	eng := newFakeEngine(clock.now)
	events := record.NewFakeRecorder(100)
	cfg := &nodeconfig.Config{Name: "n1", IP: "172.20.0.3", Runtime: nodeconfig.RuntimeDocker,
		Docker: &nodeconfig.DockerRuntime{ServiceNetwork: nodeconfig.ServiceNetwork{ServiceCIDR: "172.20.64.0/18", DNSDomain: "cluster.local"}}}
	creds := &fakeCredentials{bundles: map[string][]byte{}}
	rt := New(eng, cfg, fake.NewClientset(), events, creds)
	rt.now = clock.now
	woken := make(chan string, 100)
	require.NoError(t, rt.Prepare(context.Background(), nil, func(key string) {
		select {
		case woken <- key:
		default:
		}
	}))
	// Probes run until their pod is forgotten.
	t.Cleanup(func() { _ = rt.ForgetPod(context.Background(), "uid-1") })
	return &harness{rt: rt, creds: creds, eng: eng, clock: clock, events: events, woken: woken}
}

func testPod(policy corev1.RestartPolicy, c corev1.Container) *corev1.Pod {
	if c.Name == "" {
		c.Name = "app"
	}
	if c.Image == "" {
		c.Image = "app:1"
	}
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default", UID: "uid-1"},
		Spec:       corev1.PodSpec{NodeName: "n1", RestartPolicy: policy, Containers: []corev1.Container{c}},
	}
}

// sync runs SyncPod and returns the app container's status and the result.
func (h *harness) sync(t *testing.T, pod *corev1.Pod) (corev1.ContainerStatus, runtime.Result) {
	t.Helper()
	res, err := h.rt.SyncPod(context.Background(), pod)
	require.NoError(t, err)
	require.NotNil(t, res.Status)
	require.Len(t, res.Status.ContainerStatuses, 1)
	pod.Status = *res.Status
	return res.Status.ContainerStatuses[0], res
}

func TestRestartPolicy(t *testing.T) {
	tests := []struct {
		policy   corev1.RestartPolicy
		exitCode int
		restart  bool
		phase    corev1.PodPhase
	}{
		{corev1.RestartPolicyAlways, 0, true, corev1.PodRunning},
		{corev1.RestartPolicyAlways, 1, true, corev1.PodRunning},
		{corev1.RestartPolicyOnFailure, 0, false, corev1.PodSucceeded},
		{corev1.RestartPolicyOnFailure, 3, true, corev1.PodRunning},
		{corev1.RestartPolicyNever, 0, false, corev1.PodSucceeded},
		{corev1.RestartPolicyNever, 3, false, corev1.PodFailed},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s exit %d", tt.policy, tt.exitCode), func(t *testing.T) {
			h := newHarness(t)
			pod := testPod(tt.policy, corev1.Container{})
			cs, _ := h.sync(t, pod)
			require.NotNil(t, cs.State.Running, "the first run starts at once")
			h.eng.exit(h.eng.running("app"), tt.exitCode)
			h.clock.advance(time.Second)
			cs, res := h.sync(t, pod)
			assert.Equal(t, tt.phase, res.Status.Phase)
			if tt.restart {
				assert.NotNil(t, cs.State.Running, "restarted at once after the first exit")
				assert.Equal(t, int32(1), cs.RestartCount)
				require.NotNil(t, cs.LastTerminationState.Terminated)
				assert.Equal(t, int32(tt.exitCode), cs.LastTerminationState.Terminated.ExitCode)
			} else {
				require.NotNil(t, cs.State.Terminated)
				assert.Equal(t, int32(tt.exitCode), cs.State.Terminated.ExitCode)
				assert.Equal(t, []string{"app"}, h.eng.started, "not started again")
			}
		})
	}
}

// A run the engine cannot start ends at once with exit code 128
// (StartError), as the kubelet reports it: a Never pod fails, an Always
// pod backs off and tries again.
func TestStartError(t *testing.T) {
	for _, tt := range []struct {
		policy corev1.RestartPolicy
		phase  corev1.PodPhase
	}{
		{corev1.RestartPolicyNever, corev1.PodFailed},
		{corev1.RestartPolicyAlways, corev1.PodRunning},
	} {
		t.Run(string(tt.policy), func(t *testing.T) {
			h := newHarness(t)
			h.eng.startErr = errors.New("runc create failed: unable to apply caps: operation not permitted")
			pod := testPod(tt.policy, corev1.Container{})
			cs, res := h.sync(t, pod)
			assert.Equal(t, tt.phase, res.Status.Phase)
			if tt.policy == corev1.RestartPolicyNever {
				ended := cs.State.Terminated
				require.NotNil(t, ended)
				assert.Equal(t, int32(128), ended.ExitCode)
				assert.Equal(t, engine.StartError, ended.Reason)
				assert.Contains(t, ended.Message, "unable to apply caps")
			}
			if tt.policy == corev1.RestartPolicyNever {
				assert.Empty(t, h.eng.started, "never run")
				return
			}
			for _, reason := range []string{"RunContainerError", "CrashLoopBackOff"} {
				require.NotNil(t, cs.State.Waiting)
				assert.Equal(t, reason, cs.State.Waiting.Reason)
				ended := cs.LastTerminationState.Terminated
				require.NotNil(t, ended)
				assert.Equal(t, int32(128), ended.ExitCode)
				assert.Equal(t, engine.StartError, ended.Reason)
				assert.Contains(t, ended.Message, "unable to apply caps")
				h.clock.advance(time.Second)
				cs, _ = h.sync(t, pod)
			}

			h.eng.startErr = nil
			h.clock.advance(time.Minute)
			cs, _ = h.sync(t, pod)
			assert.NotNil(t, cs.State.Running, "run again after the back-off")
			assert.Equal(t, int32(1), cs.RestartCount)
		})
	}
}

// A container that keeps crashing waits 10 s, 20 s, 40 s ... before each
// restart after the first, in CrashLoopBackOff, as the kubelet does.
func TestCrashLoopBackOff(t *testing.T) {
	h := newHarness(t)
	pod := testPod(corev1.RestartPolicyAlways, corev1.Container{})
	h.sync(t, pod)
	for i, wait := range []time.Duration{0, 10 * time.Second, 20 * time.Second, 40 * time.Second} {
		h.eng.exit(h.eng.running("app"), 1)
		h.clock.advance(time.Second)
		cs, res := h.sync(t, pod)
		if wait == 0 {
			require.NotNil(t, cs.State.Running, "crash %d: the first restart is immediate", i+1)
			continue
		}
		require.NotNil(t, cs.State.Waiting, "crash %d", i+1)
		assert.Equal(t, "CrashLoopBackOff", cs.State.Waiting.Reason)
		assert.Equal(t, min(wait, dockerResync), res.Requeue, "crash %d: look again by the end of the back-off", i+1)
		assert.Equal(t, corev1.PodRunning, res.Status.Phase, "a pod in back-off is still Running")
		h.clock.advance(wait - time.Millisecond)
		cs, _ = h.sync(t, pod)
		require.NotNil(t, cs.State.Waiting, "crash %d: still backing off just before the end", i+1)
		h.clock.advance(time.Millisecond)
		cs, _ = h.sync(t, pod)
		require.NotNil(t, cs.State.Running, "crash %d: restarted when the back-off ends", i+1)
		assert.Equal(t, int32(i+1), cs.RestartCount)
	}
	assert.Len(t, h.eng.started, 5)
}

func TestImagePullErrors(t *testing.T) {
	h := newHarness(t)
	pod := testPod(corev1.RestartPolicyAlways, corev1.Container{Image: "missing:1"})
	cs, res := h.sync(t, pod)
	require.NotNil(t, cs.State.Waiting)
	assert.Equal(t, "ErrImagePull", cs.State.Waiting.Reason)
	assert.Contains(t, cs.State.Waiting.Message, "pull access denied")
	assert.Equal(t, corev1.PodPending, res.Status.Phase)
	assert.Positive(t, res.Requeue, "it tries again")
	h.clock.advance(10 * time.Second)
	cs, _ = h.sync(t, pod)
	assert.Equal(t, "ImagePullBackOff", cs.State.Waiting.Reason)

	// The image appears (docker build): the next try runs it.
	h.eng.mu.Lock()
	h.eng.images["missing:1"] = true
	h.eng.mu.Unlock()
	h.clock.advance(time.Minute)
	cs, _ = h.sync(t, pod)
	assert.NotNil(t, cs.State.Running)
}

// Probes run on their own schedule (real seconds), so these wait for them.
func TestProbeTransitions(t *testing.T) {
	exec := func(cmd string) *corev1.Probe {
		return &corev1.Probe{ProbeHandler: corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{cmd}}},
			PeriodSeconds: 1, FailureThreshold: 1, SuccessThreshold: 1}
	}
	t.Run("readiness follows the probe", func(t *testing.T) {
		h := newHarness(t)
		var ready sync.Mutex
		code := 1
		h.eng.execCode = func(string, []string) int { ready.Lock(); defer ready.Unlock(); return code }
		pod := testPod(corev1.RestartPolicyAlways, corev1.Container{ReadinessProbe: exec("ready")})
		cs, _ := h.sync(t, pod)
		assert.False(t, cs.Ready, "not ready before the probe passes")
		ready.Lock()
		code = 0
		ready.Unlock()
		waitWoken(t, h)
		cs, res := h.sync(t, pod)
		assert.True(t, cs.Ready)
		assert.Equal(t, corev1.ConditionTrue, condition(res.Status, corev1.PodReady))
		ready.Lock()
		code = 1
		ready.Unlock()
		waitWoken(t, h)
		cs, _ = h.sync(t, pod)
		assert.False(t, cs.Ready, "unready again when the probe fails")

		// /metrics/probes counts each result, per probe, until the pod goes.
		counts := h.rt.ProbeCounts()
		key := runtime.ProbeKey{Namespace: pod.Namespace, Pod: pod.Name, PodUID: string(pod.UID), Container: "app", ProbeType: "Readiness"}
		ok, failed := key, key
		ok.Result, failed.Result = "successful", "failed"
		assert.GreaterOrEqual(t, counts[ok], uint64(1), counts)
		assert.GreaterOrEqual(t, counts[failed], uint64(1), counts)
		require.NoError(t, h.rt.ForgetPod(context.Background(), pod.UID))
		assert.Empty(t, h.rt.ProbeCounts())
	})
	t.Run("a failed liveness probe restarts the container", func(t *testing.T) {
		h := newHarness(t)
		h.eng.execCode = func(string, []string) int { return 1 }
		pod := testPod(corev1.RestartPolicyAlways, corev1.Container{LivenessProbe: exec("alive")})
		h.sync(t, pod)
		first := h.eng.running("app")
		waitWoken(t, h)
		cs, _ := h.sync(t, pod)
		assert.Contains(t, h.eng.stopped, first, "the failing run is stopped")
		require.NotNil(t, cs.State.Running, "and runs again, without back-off: it did not crash")
		assert.Equal(t, int32(1), cs.RestartCount)
		assert.Contains(t, drain(h.events), "Normal Killing Container app failed liveness probe, will be restarted")
	})
	t.Run("startup gates liveness and readiness", func(t *testing.T) {
		h := newHarness(t)
		h.eng.execCode = func(_ string, cmd []string) int {
			if cmd[0] == "started" {
				return 1
			}
			return 0
		}
		pod := testPod(corev1.RestartPolicyAlways, corev1.Container{StartupProbe: exec("started"), ReadinessProbe: exec("ready")})
		pod.Spec.Containers[0].StartupProbe.FailureThreshold = 30
		h.sync(t, pod)
		time.Sleep(1500 * time.Millisecond)
		cs, _ := h.sync(t, pod)
		assert.False(t, *cs.Started)
		assert.False(t, cs.Ready, "readiness waits for startup")
	})
}

func TestKillPod(t *testing.T) {
	h := newHarness(t)
	pod := testPod(corev1.RestartPolicyAlways, corev1.Container{})
	h.sync(t, pod)
	id := h.eng.running("app")
	pod.DeletionTimestamp = &metav1.Time{Time: h.clock.now()}
	pod.DeletionGracePeriodSeconds = ptr.To[int64](30)
	res, err := h.rt.KillPod(context.Background(), pod)
	require.NoError(t, err)
	assert.Nil(t, res.Status, "stopped: the pod object may go")
	assert.Equal(t, []string{id}, h.eng.stopped)
	list, _ := h.eng.List(context.Background())
	assert.Empty(t, list, "its containers are removed")
	assert.Contains(t, drain(h.events), "Normal Killing Stopping container app")
}

func waitWoken(t *testing.T, h *harness) {
	t.Helper()
	select {
	case key := <-h.woken:
		assert.Equal(t, "default/web", key)
	case <-time.After(5 * time.Second):
		t.Fatal("the probe did not wake the pod's sync")
	}
}

func condition(st *corev1.PodStatus, typ corev1.PodConditionType) corev1.ConditionStatus {
	for _, c := range st.Conditions {
		if c.Type == typ {
			return c.Status
		}
	}
	return ""
}

func drain(r *record.FakeRecorder) []string {
	var out []string
	for {
		select {
		case e := <-r.Events:
			out = append(out, e)
		default:
			return out
		}
	}
}

func TestVolumeMounts(t *testing.T) {
	hp := func(p string, typ corev1.HostPathType) corev1.VolumeSource {
		return corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: p, Type: ptr.To(typ)}}
	}
	tests := []struct {
		name    string
		source  corev1.VolumeSource
		mount   corev1.VolumeMount
		want    engine.Mount
		wantErr string
	}{
		{name: "emptyDir with a sub-path from the environment",
			source: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}},
			mount:  corev1.VolumeMount{Name: "v", MountPath: "/m", SubPathExpr: "logs/$(POD)"},
			want:   engine.Mount{Volume: "uid-1-v", Path: "/m", SubPath: "logs/web", Owned: true, OpenRoot: true}},
		{name: "hostPath directory",
			source: hp("/var/log", corev1.HostPathDirectoryOrCreate),
			mount:  corev1.VolumeMount{Name: "v", MountPath: "/m", ReadOnly: true},
			want:   engine.Mount{Volume: "/var/log", Path: "/m", ReadOnly: true}},
		{name: "hostPath file is a sub-path of its directory",
			source: hp("/etc/app/app.conf", corev1.HostPathFileOrCreate),
			mount:  corev1.VolumeMount{Name: "v", MountPath: "/m"},
			want:   engine.Mount{Volume: "/etc/app", Path: "/m", SubPath: "app.conf", SubPathType: engine.SubPathFileOrCreate}},
		{name: "hostPath socket",
			source: hp("/run/app.sock", corev1.HostPathSocket),
			mount:  corev1.VolumeMount{Name: "v", MountPath: "/m"},
			want:   engine.Mount{Volume: "/run", Path: "/m", SubPath: "app.sock", SubPathType: engine.SubPathSocket}},
		{name: "hostPath block device", source: hp("/dev/sda", corev1.HostPathBlockDev),
			mount: corev1.VolumeMount{Name: "v", MountPath: "/m"}, wantErr: "hostPath of type BlockDevice is not supported"},
		{name: "a sub-path may not leave its volume",
			source:  corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}},
			mount:   corev1.VolumeMount{Name: "v", MountPath: "/m", SubPathExpr: "$(UP)/x"},
			wantErr: `sub-path "../x" must be relative and stay inside the volume`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			pod := testPod(corev1.RestartPolicyAlways, corev1.Container{
				VolumeMounts: []corev1.VolumeMount{tt.mount},
				Env:          []corev1.EnvVar{{Name: "POD", Value: "web"}, {Name: "UP", Value: ".."}},
			})
			pod.Spec.Volumes = []corev1.Volume{{Name: "v", VolumeSource: tt.source}}
			rec := h.rt.record(context.Background(), pod)
			cs, err := h.rt.containerSpec(context.Background(), pod, rec, &pod.Spec.Containers[0], &dockerContainer{name: "app"})
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			require.Len(t, cs.Mounts, 1)
			assert.Equal(t, tt.want, cs.Mounts[0])
		})
	}
}

// A pod's fsGroup reaches its containers.
func TestFSGroup(t *testing.T) {
	h := newHarness(t)
	pod := testPod(corev1.RestartPolicyAlways, corev1.Container{})
	pod.Spec.SecurityContext = &corev1.PodSecurityContext{FSGroup: ptr.To[int64](2000)}
	rec := h.rt.record(context.Background(), pod)
	cs, err := h.rt.containerSpec(context.Background(), pod, rec, &pod.Spec.Containers[0], &dockerContainer{name: "app"})
	require.NoError(t, err)
	assert.Equal(t, ptr.To[int64](2000), cs.FSGroup)
}

func TestPodLogFiles(t *testing.T) {
	h := newHarness(t)
	dir := t.TempDir()
	h.rt.cfg.LogDir = dir
	h.rt.logs = podlogs.New(dir, podlogs.Options{})
	pod := testPod(corev1.RestartPolicyAlways, corev1.Container{})
	h.sync(t, pod)
	first := h.eng.running("app")
	run := podlogs.Run{Namespace: "default", Pod: "web", UID: "uid-1", Container: "app", Restart: 0, ID: first}
	want := "2026-11-29T12:00:00.5Z stdout F hello from app run 0\n"
	assert.EventuallyWithT(t, func(c *assert.CollectT) {
		data, err := os.ReadFile(h.rt.logs.Path(run))
		assert.NoError(c, err)
		assert.Equal(c, want, string(data))
	}, 5*time.Second, 10*time.Millisecond)
	target, err := os.Readlink(h.rt.logs.Link(run))
	require.NoError(t, err)
	assert.Equal(t, filepath.Join(dir, "pods", "default_web_uid-1", "app", "0.log"), target)

	// Each restart writes a file of its own; the runs older than the
	// previous one go with their containers.
	for range 2 {
		h.eng.exit(h.eng.running("app"), 1)
		// The second restart waits out a back-off.
		for i := 0; i < 3 && h.eng.running("app") == ""; i++ {
			h.clock.advance(time.Minute)
			h.sync(t, pod)
		}
		require.NotEmpty(t, h.eng.running("app"))
	}
	assert.EventuallyWithT(t, func(c *assert.CollectT) {
		// Copied from the engine as it goes: wait for the lines too.
		for run, file := range []string{"1.log", "2.log"} {
			data, err := os.ReadFile(filepath.Join(dir, "pods", "default_web_uid-1", "app", file))
			assert.NoError(c, err)
			assert.Contains(c, string(data), fmt.Sprintf("hello from app run %d", run+1))
		}
		assert.NoFileExists(c, filepath.Join(dir, "pods", "default_web_uid-1", "app", "0.log"))
		links, _ := filepath.Glob(filepath.Join(dir, "containers", "*"))
		assert.Len(c, links, 2)
	}, 5*time.Second, 10*time.Millisecond)

	logs := func(previous bool) (string, error) {
		var out strings.Builder
		err := h.rt.Logs(context.Background(), pod, "app", runtime.LogOptions{Previous: previous, Tail: -1}, &out)
		return out.String(), err
	}
	// The engine's containers go (a node restart): the files still answer.
	h.eng.mu.Lock()
	clear(h.eng.containers)
	h.eng.mu.Unlock()
	got, err := logs(false)
	require.NoError(t, err)
	assert.Equal(t, "hello from app run 2\n", got)
	got, err = logs(true)
	require.NoError(t, err)
	assert.Equal(t, "hello from app run 1\n", got)

	require.NoError(t, h.rt.ForgetPod(context.Background(), pod.UID))
	assert.NoDirExists(t, filepath.Join(dir, "pods", "default_web_uid-1"))
	links, err := filepath.Glob(filepath.Join(dir, "containers", "*"))
	require.NoError(t, err)
	assert.Empty(t, links)
}

// A pod's host ports are open on the node while it runs, a second pod
// cannot take them, and they close when the pod goes.
func TestHostPorts(t *testing.T) {
	h := newHarness(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	port := int32(l.Addr().(*net.TCPAddr).Port)
	require.NoError(t, l.Close())
	inUse := func() bool {
		l, err := net.Listen("tcp", addr)
		if err == nil {
			l.Close()
		}
		return err != nil
	}
	withPort := corev1.Container{Ports: []corev1.ContainerPort{{ContainerPort: 8080, HostPort: port, HostIP: "127.0.0.1"}}}

	pod := testPod(corev1.RestartPolicyAlways, withPort)
	h.sync(t, pod)
	assert.True(t, inUse(), "the host port is open")

	second := testPod(corev1.RestartPolicyAlways, withPort)
	second.Name, second.UID = "web-2", "uid-2"
	t.Cleanup(func() { _ = h.rt.ForgetPod(context.Background(), "uid-2") })
	_, err = h.rt.SyncPod(context.Background(), second)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "open host port "+addr+"/TCP")
	var events []string
	for len(h.events.Events) > 0 {
		events = append(events, <-h.events.Events)
	}
	assert.True(t, slices.ContainsFunc(events, func(e string) bool { return strings.Contains(e, "Warning FailedCreatePodSandBox") }), events)

	require.NoError(t, h.rt.ForgetPod(context.Background(), pod.UID))
	assert.False(t, inUse(), "closed with its pod")
	_, err = h.rt.SyncPod(context.Background(), second)
	require.NoError(t, err, "the port is free for the next pod")
	assert.True(t, inUse())
}

func TestWithFSGroup(t *testing.T) {
	files := []engine.File{{Path: "a", Mode: 0o400}, {Path: "b"}}
	pod := &corev1.Pod{}
	withFSGroup(pod, files)
	assert.Equal(t, []engine.File{{Path: "a", Mode: 0o400}, {Path: "b"}}, files, "no fsGroup: as they are")
	pod.Spec.SecurityContext = &corev1.PodSecurityContext{FSGroup: ptr.To[int64](1001)}
	withFSGroup(pod, files)
	assert.Equal(t, []engine.File{{Path: "a", Mode: 0o440, GID: 1001}, {Path: "b", Mode: 0o644, GID: 1001}}, files)
}
