package docker

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"minik.dev/minik/kubelet/engine"
)

func TestSecurity(t *testing.T) {
	tests := []struct {
		name string
		pod  *corev1.PodSecurityContext
		c    *corev1.SecurityContext
		want engine.Security
	}{
		{name: "none"},
		{name: "pod user and group", pod: &corev1.PodSecurityContext{RunAsUser: ptr.To[int64](1000), RunAsGroup: ptr.To[int64](3000), SupplementalGroups: []int64{4000}},
			want: engine.Security{User: "1000:3000", Groups: []int64{4000}}},
		{name: "container user over pod's", pod: &corev1.PodSecurityContext{RunAsUser: ptr.To[int64](1000)}, c: &corev1.SecurityContext{RunAsUser: ptr.To[int64](1001)},
			want: engine.Security{User: "1001"}},
		{name: "group alone", c: &corev1.SecurityContext{RunAsGroup: ptr.To[int64](5)}, want: engine.Security{User: "0:5"}},
		{name: "read-only root, no escalation, capabilities", c: &corev1.SecurityContext{
			ReadOnlyRootFilesystem: ptr.To(true), AllowPrivilegeEscalation: ptr.To(false),
			Capabilities: &corev1.Capabilities{Add: []corev1.Capability{"NET_ADMIN"}, Drop: []corev1.Capability{"ALL"}}},
			want: engine.Security{ReadOnlyRootfs: true, NoNewPrivileges: true, CapAdd: []string{"NET_ADMIN"}, CapDrop: []string{"ALL"}}},
		{name: "escalation allowed", c: &corev1.SecurityContext{AllowPrivilegeEscalation: ptr.To(true)}},
		{name: "privileged escalates anyway", c: &corev1.SecurityContext{Privileged: ptr.To(true), AllowPrivilegeEscalation: ptr.To(false)},
			want: engine.Security{Privileged: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pod := &corev1.Pod{Spec: corev1.PodSpec{SecurityContext: tt.pod}}
			assert.Equal(t, tt.want, security(pod, &corev1.Container{SecurityContext: tt.c}))
		})
	}
}

func TestPodSysctls(t *testing.T) {
	tests := []struct {
		name        string
		sysctls     []corev1.Sysctl
		hostNetwork bool
		want        map[string]string
		err         string
	}{
		{name: "none"},
		{name: "safe", sysctls: []corev1.Sysctl{{Name: "kernel.shm_rmid_forced", Value: "1"}, {Name: "net.ipv4.ip_local_port_range", Value: "1024 65000"}},
			want: map[string]string{"kernel.shm_rmid_forced": "1", "net.ipv4.ip_local_port_range": "1024 65000"}},
		{name: "slashes", sysctls: []corev1.Sysctl{{Name: "kernel/shm_rmid_forced", Value: "1"}}, want: map[string]string{"kernel.shm_rmid_forced": "1"}},
		{name: "unsafe", sysctls: []corev1.Sysctl{{Name: "kernel.msgmax", Value: "10000000000"}}, err: `forbidden sysctl: "kernel.msgmax" not allowlisted`},
		{name: "network sysctl on the node's network", hostNetwork: true, sysctls: []corev1.Sysctl{{Name: "net.ipv4.tcp_syncookies", Value: "1"}}, err: "forbidden sysctl"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pod := &corev1.Pod{Spec: corev1.PodSpec{HostNetwork: tt.hostNetwork}}
			if tt.sysctls != nil {
				pod.Spec.SecurityContext = &corev1.PodSecurityContext{Sysctls: tt.sysctls}
			}
			got, err := podSysctls(pod)
			if tt.err != "" {
				require.ErrorContains(t, err, tt.err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

// A pod asking for a sysctl the node does not allow fails at once, as the
// kubelet's admission fails it, and nothing of it is started.
func TestSysctlForbidden(t *testing.T) {
	h := newHarness(t)
	pod := testPod(corev1.RestartPolicyNever, corev1.Container{})
	pod.Spec.SecurityContext = &corev1.PodSecurityContext{Sysctls: []corev1.Sysctl{{Name: "kernel.msgmax", Value: "1"}}}
	res, err := h.rt.SyncPod(context.Background(), pod)
	require.NoError(t, err)
	require.NotNil(t, res.Status)
	assert.Equal(t, corev1.PodFailed, res.Status.Phase)
	assert.Equal(t, "SysctlForbidden", res.Status.Reason)
	assert.Empty(t, h.eng.started)
}

func TestEphemeralContainer(t *testing.T) {
	h := newHarness(t)
	pod := testPod(corev1.RestartPolicyAlways, corev1.Container{})
	h.sync(t, pod)
	pod.Spec.EphemeralContainers = []corev1.EphemeralContainer{{
		EphemeralContainerCommon: corev1.EphemeralContainerCommon{Name: "debugger", Image: "app:1", Command: []string{"sh"}},
		TargetContainerName:      "app",
	}}
	res, err := h.rt.SyncPod(context.Background(), pod)
	require.NoError(t, err)
	require.Len(t, res.Status.EphemeralContainerStatuses, 1)
	assert.NotNil(t, res.Status.EphemeralContainerStatuses[0].State.Running)
	assert.Len(t, res.Status.ContainerStatuses, 1, "not one of the pod's containers")
	id := h.eng.running("debugger")
	require.NotEmpty(t, id)
	target := h.eng.running("app")
	require.NotEmpty(t, target)
	h.eng.mu.Lock()
	spec := h.eng.containers[id].spec
	h.eng.mu.Unlock()
	assert.Equal(t, []string{"sh"}, spec.Command)
	assert.Equal(t, target, spec.PIDNamespace, "it sees its target's processes")

	h.eng.exit(id, 0)
	h.clock.advance(time.Minute)
	res, err = h.rt.SyncPod(context.Background(), pod)
	require.NoError(t, err)
	assert.NotNil(t, res.Status.EphemeralContainerStatuses[0].State.Terminated)
	assert.Equal(t, []string{"app", "debugger"}, h.eng.started, "an ephemeral container never runs again")
	assert.Equal(t, corev1.PodRunning, res.Status.Phase)
}

func TestTerminationMessage(t *testing.T) {
	tests := []struct {
		name    string
		policy  corev1.TerminationMessagePolicy
		file    string
		code    int
		message string
	}{
		{name: "from the file", policy: corev1.TerminationMessageReadFile, file: "DONE", code: 0, message: "DONE"},
		{name: "file over log", policy: corev1.TerminationMessageFallbackToLogsOnError, file: "OK", code: 1, message: "OK"},
		{name: "log on failure", policy: corev1.TerminationMessageFallbackToLogsOnError, code: 1, message: "hello from app run 0\n"},
		{name: "no log on success", policy: corev1.TerminationMessageFallbackToLogsOnError, code: 0, message: ""},
		{name: "no log without the policy", policy: corev1.TerminationMessageReadFile, code: 1, message: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			pod := testPod(corev1.RestartPolicyNever, corev1.Container{TerminationMessagePath: "/dev/termination-log", TerminationMessagePolicy: tt.policy})
			h.sync(t, pod)
			id := h.eng.running("app")
			h.eng.mu.Lock()
			assert.Equal(t, "/dev/termination-log", h.eng.containers[id].spec.TerminationMessagePath)
			h.eng.messages["app"] = tt.file
			h.eng.mu.Unlock()
			h.eng.exit(id, tt.code)
			cs, _ := h.sync(t, pod)
			require.NotNil(t, cs.State.Terminated)
			assert.Equal(t, tt.message, cs.State.Terminated.Message)
		})
	}
}

func TestLifecycleHooks(t *testing.T) {
	hook := func(cmd string) *corev1.LifecycleHandler {
		return &corev1.LifecycleHandler{Exec: &corev1.ExecAction{Command: []string{"sh", "-c", cmd}}}
	}
	t.Run("a failed postStart hook kills the container", func(t *testing.T) {
		h := newHarness(t)
		h.eng.execCode = func(_ string, cmd []string) int { return 1 }
		pod := testPod(corev1.RestartPolicyNever, corev1.Container{Lifecycle: &corev1.Lifecycle{PostStart: hook("exit 1")}})
		cs, _ := h.sync(t, pod)
		require.NotNil(t, cs.State.Terminated, "stopped after its hook failed")
		assert.Len(t, h.eng.stopped, 1)
		assert.Contains(t, strings.Join(drain(h.events), "\n"), "Warning FailedPostStartHook")
	})
	t.Run("preStop runs before the stop", func(t *testing.T) {
		h := newHarness(t)
		var mu sync.Mutex
		var order []string
		h.eng.execCode = func(_ string, cmd []string) int {
			mu.Lock()
			defer mu.Unlock()
			order = append(order, "exec "+strings.Join(cmd, " "))
			return 0
		}
		pod := testPod(corev1.RestartPolicyAlways, corev1.Container{Lifecycle: &corev1.Lifecycle{PreStop: hook("echo bye")}})
		h.sync(t, pod)
		assert.Empty(t, order, "no hook runs while the container runs")
		pod.DeletionTimestamp = &metav1.Time{Time: h.clock.now()}
		pod.DeletionGracePeriodSeconds = ptr.To[int64](30)
		_, err := h.rt.KillPod(context.Background(), pod)
		require.NoError(t, err)
		assert.Equal(t, []string{"exec sh -c echo bye"}, order)
		assert.Len(t, h.eng.stopped, 1)
	})
}

// A pod the API says has failed (its deadline passed, say) has what still
// runs stopped, and its containers kept for their logs.
func TestStopFinished(t *testing.T) {
	h := newHarness(t)
	pod := testPod(corev1.RestartPolicyAlways, corev1.Container{})
	h.sync(t, pod)
	pod.Status.Phase, pod.Status.Reason = corev1.PodFailed, "DeadlineExceeded"
	res, err := h.rt.SyncPod(context.Background(), pod)
	require.NoError(t, err)
	require.NotNil(t, res.Status)
	assert.Equal(t, corev1.PodFailed, res.Status.Phase)
	require.NotNil(t, res.Status.ContainerStatuses[0].State.Terminated)
	assert.Len(t, h.eng.stopped, 1)
	list, _ := h.eng.List(context.Background())
	assert.Len(t, list, 1, "kept for its logs")
	res, err = h.rt.SyncPod(context.Background(), pod)
	require.NoError(t, err)
	assert.Nil(t, res.Status, "nothing more to report")
}

// An image volume is the image's tree, mounted read-only whatever the mount
// says; a missing image keeps the container from being made.
func TestImageVolume(t *testing.T) {
	h := newHarness(t)
	pod := testPod(corev1.RestartPolicyAlways, corev1.Container{VolumeMounts: []corev1.VolumeMount{{Name: "tools", MountPath: "/tools"}}})
	pod.Spec.Volumes = []corev1.Volume{{Name: "tools", VolumeSource: corev1.VolumeSource{Image: &corev1.ImageVolumeSource{Reference: "app:1"}}}}
	h.sync(t, pod)
	id := h.eng.running("app")
	require.NotEmpty(t, id)
	h.eng.mu.Lock()
	mounts := h.eng.containers[id].spec.Mounts
	h.eng.mu.Unlock()
	assert.Equal(t, []engine.Mount{{Volume: "uid-1-tools-app:1", Path: "/tools", ReadOnly: true}}, mounts)

	h = newHarness(t)
	pod = testPod(corev1.RestartPolicyAlways, corev1.Container{VolumeMounts: []corev1.VolumeMount{{Name: "tools", MountPath: "/tools"}}})
	pod.Spec.Volumes = []corev1.Volume{{Name: "tools", VolumeSource: corev1.VolumeSource{Image: &corev1.ImageVolumeSource{Reference: "missing:1"}}}}
	cs, _ := h.sync(t, pod)
	require.NotNil(t, cs.State.Waiting)
	assert.Equal(t, "CreateContainerConfigError", cs.State.Waiting.Reason)
	assert.Contains(t, cs.State.Waiting.Message, "repository does not exist")
}

func TestInPlaceResize(t *testing.T) {
	res := func(cpu, mem string) corev1.ResourceRequirements {
		return corev1.ResourceRequirements{
			Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(cpu), corev1.ResourceMemory: resource.MustParse(mem)},
			Limits:   corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(cpu), corev1.ResourceMemory: resource.MustParse(mem)},
		}
	}
	tests := []struct {
		name     string
		policy   []corev1.ContainerResizePolicy
		restarts int32
	}{
		{name: "in place"},
		{name: "memory restarts", policy: []corev1.ContainerResizePolicy{{ResourceName: corev1.ResourceMemory, RestartPolicy: corev1.RestartContainer}}, restarts: 1},
		{name: "cpu in place, memory restarts but is unchanged", policy: []corev1.ContainerResizePolicy{{ResourceName: corev1.ResourceMemory, RestartPolicy: corev1.RestartContainer}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			pod := testPod(corev1.RestartPolicyAlways, corev1.Container{Resources: res("200m", "64Mi"), ResizePolicy: tt.policy})
			cs, _ := h.sync(t, pod)
			require.NotNil(t, cs.Resources)
			assert.Equal(t, res("200m", "64Mi"), *cs.Resources)
			first := h.eng.running("app")
			h.eng.mu.Lock()
			assert.Equal(t, engine.Resources{CPUMillis: 200, MemoryBytes: 64 << 20, CPUShares: 204}, h.eng.containers[first].spec.Resources)
			h.eng.mu.Unlock()

			want := res("400m", "128Mi")
			if tt.name == "cpu in place, memory restarts but is unchanged" {
				want = res("400m", "64Mi")
			}
			pod.Spec.Containers[0].Resources = want
			cs, _ = h.sync(t, pod)
			require.NotNil(t, cs.State.Running)
			assert.Equal(t, tt.restarts, cs.RestartCount)
			assert.Equal(t, want, *cs.Resources)
			assert.Equal(t, want.Requests, cs.AllocatedResources)
			id := h.eng.running("app")
			if tt.restarts == 0 {
				assert.Equal(t, first, id, "resized in place")
			} else {
				assert.NotEqual(t, first, id, "restarted to resize")
			}
			h.eng.mu.Lock()
			assert.Equal(t, int64(400), h.eng.containers[id].spec.CPUMillis)
			assert.Equal(t, int64(409), h.eng.containers[id].spec.CPUShares)
			h.eng.mu.Unlock()
		})
	}
}

func TestRunAsNonRoot(t *testing.T) {
	tests := []struct {
		name      string
		imageUser string
		uid       *int64
		err       string
	}{
		{name: "image without a user", err: "container has runAsNonRoot and image will run as root"},
		{name: "image user 0", imageUser: "0:0", err: "image will run as root"},
		{name: "image user 1234", imageUser: "1234"},
		{name: "image user by name", imageUser: "nobody", err: "image has non-numeric user (nobody), cannot verify user is non-root"},
		{name: "runAsUser 0", imageUser: "1234", uid: ptr.To[int64](0), err: "container's runAsUser breaks non-root policy"},
		{name: "runAsUser over a root image", uid: ptr.To[int64](1000)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			h.eng.users["app:1"] = tt.imageUser
			pod := testPod(corev1.RestartPolicyAlways, corev1.Container{SecurityContext: &corev1.SecurityContext{RunAsUser: tt.uid}})
			pod.Spec.SecurityContext = &corev1.PodSecurityContext{RunAsNonRoot: ptr.To(true)}
			cs, _ := h.sync(t, pod)
			if tt.err == "" {
				assert.NotNil(t, cs.State.Running)
				return
			}
			require.NotNil(t, cs.State.Waiting)
			assert.Equal(t, "CreateContainerConfigError", cs.State.Waiting.Reason)
			assert.Contains(t, cs.State.Waiting.Message, tt.err)
			assert.Empty(t, h.eng.started)
		})
	}
}

// A container restarted by the node (a failed liveness probe) runs its
// preStop hook first, as one stopped for the pod's deletion does.
func TestPreStopBeforeRestart(t *testing.T) {
	h := newHarness(t)
	var mu sync.Mutex
	var execs []string
	h.eng.execCode = func(_ string, cmd []string) int {
		mu.Lock()
		defer mu.Unlock()
		execs = append(execs, strings.Join(cmd, " "))
		return 0
	}
	pod := testPod(corev1.RestartPolicyAlways, corev1.Container{Lifecycle: &corev1.Lifecycle{
		PreStop: &corev1.LifecycleHandler{Exec: &corev1.ExecAction{Command: []string{"drain"}}}}})
	h.sync(t, pod)
	rec := h.rt.find("default", "web")
	h.rt.mu.Lock()
	rec.containers["app"].restartRequested = "failed liveness probe"
	h.rt.mu.Unlock()
	cs, _ := h.sync(t, pod)
	assert.Equal(t, int32(1), cs.RestartCount)
	mu.Lock()
	assert.Equal(t, []string{"drain"}, execs)
	mu.Unlock()
}

// ConfigMap and projected volumes are volumes the node writes in
// generations and mounts read-only; a changed source is a new generation.
func TestFileVolumes(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "cfg", Namespace: "default"}, Data: map[string]string{"a": "1"}}
	_, err := h.rt.client.CoreV1().ConfigMaps("default").Create(ctx, cm, metav1.CreateOptions{})
	require.NoError(t, err)
	pod := testPod(corev1.RestartPolicyAlways, corev1.Container{VolumeMounts: []corev1.VolumeMount{
		{Name: "cfg", MountPath: "/etc/cfg"}, {Name: "cfg", MountPath: "/etc/a", SubPath: "a"}}})
	pod.Spec.Volumes = []corev1.Volume{{Name: "cfg", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
		LocalObjectReference: corev1.LocalObjectReference{Name: "cfg"}}}}}
	h.sync(t, pod)
	id := h.eng.running("app")
	require.NotEmpty(t, id, "started with its volume written")
	h.eng.mu.Lock()
	assert.Equal(t, []engine.Mount{
		{Volume: "uid-1-cfg", Path: "/etc/cfg", ReadOnly: true},
		{Volume: "uid-1-cfg", Path: "/etc/a", ReadOnly: true, SubPath: "..1/a", SubPathType: engine.SubPathExisting},
	}, h.eng.containers[id].spec.Mounts)
	assert.Equal(t, []engine.File{{Path: "a", Data: []byte("1"), Mode: 0o644}}, h.eng.volumeFiles["uid-1-cfg/..1"])
	assert.Equal(t, 1, h.eng.writes)
	h.eng.mu.Unlock()

	h.clock.advance(fileVolumeResync)
	h.sync(t, pod)
	h.eng.mu.Lock()
	assert.Equal(t, 1, h.eng.writes, "unchanged: not written again")
	h.eng.mu.Unlock()

	cm.Data["a"] = "2"
	_, err = h.rt.client.CoreV1().ConfigMaps("default").Update(ctx, cm, metav1.UpdateOptions{})
	require.NoError(t, err)
	h.sync(t, pod)
	h.eng.mu.Lock()
	assert.Equal(t, 1, h.eng.writes, "not before the resync")
	h.eng.mu.Unlock()
	h.clock.advance(fileVolumeResync)
	h.sync(t, pod)
	h.eng.mu.Lock()
	assert.Equal(t, []engine.File{{Path: "a", Data: []byte("2"), Mode: 0o644}}, h.eng.volumeFiles["uid-1-cfg/..2"])
	h.eng.mu.Unlock()
	assert.Equal(t, id, h.eng.running("app"), "updated in place")
}

// A volume whose source is missing keeps the containers that mount it
// from being made, with the reason.
func TestFileVolumeMissingSource(t *testing.T) {
	h := newHarness(t)
	pod := testPod(corev1.RestartPolicyAlways, corev1.Container{VolumeMounts: []corev1.VolumeMount{{Name: "s", MountPath: "/s"}}})
	pod.Spec.Volumes = []corev1.Volume{{Name: "s", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "nope"}}}}
	cs, _ := h.sync(t, pod)
	require.NotNil(t, cs.State.Waiting)
	assert.Equal(t, "CreateContainerConfigError", cs.State.Waiting.Reason)
	assert.Contains(t, cs.State.Waiting.Message, `volume "s"`)
	assert.Contains(t, cs.State.Waiting.Message, "nope")
}

// ClusterTrustBundle and pod certificate sources are files of their
// projected volume; a required bundle that is missing, or a certificate
// not issued yet, keeps the container from being made until they are.
func TestProjectedCredentials(t *testing.T) {
	h := newHarness(t)
	pod := testPod(corev1.RestartPolicyAlways, corev1.Container{VolumeMounts: []corev1.VolumeMount{{Name: "creds", MountPath: "/creds"}}})
	pod.Spec.Volumes = []corev1.Volume{{Name: "creds", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{
		DefaultMode: ptr.To[int32](0o640),
		Sources: []corev1.VolumeProjection{
			{ClusterTrustBundle: &corev1.ClusterTrustBundleProjection{Name: ptr.To("ca"), Path: "ca.pem"}},
			{ClusterTrustBundle: &corev1.ClusterTrustBundleProjection{Name: ptr.To("gone"), Optional: ptr.To(true), Path: "none.pem"}},
			{PodCertificate: &corev1.PodCertificateProjection{SignerName: "example.com/s", CredentialBundlePath: "bundle.pem",
				KeyPath: "key.pem", CertificateChainPath: "chain.pem"}},
		}}}}}

	cs, _ := h.sync(t, pod)
	require.NotNil(t, cs.State.Waiting)
	assert.Equal(t, "CreateContainerConfigError", cs.State.Waiting.Reason)
	assert.Contains(t, cs.State.Waiting.Message, `no ClusterTrustBundle "ca"`)

	h.creds.mu.Lock()
	h.creds.bundles["ca"] = []byte("ANCHORS\n")
	h.creds.mu.Unlock()
	cs, _ = h.sync(t, pod)
	require.NotNil(t, cs.State.Waiting)
	assert.Contains(t, cs.State.Waiting.Message, `pod certificate of signer "example.com/s"`)
	assert.Empty(t, h.eng.running("app"))

	h.creds.mu.Lock()
	h.creds.issued = true
	h.creds.mu.Unlock()
	h.sync(t, pod)
	require.NotEmpty(t, h.eng.running("app"))
	h.eng.mu.Lock()
	assert.ElementsMatch(t, []engine.File{
		{Path: "ca.pem", Data: []byte("ANCHORS\n"), Mode: 0o640},
		{Path: "none.pem", Data: []byte{}, Mode: 0o640},
		{Path: "bundle.pem", Data: []byte("KEY\nCHAIN creds 2\n"), Mode: 0o640},
		{Path: "key.pem", Data: []byte("KEY\n"), Mode: 0o640},
		{Path: "chain.pem", Data: []byte("CHAIN creds 2\n"), Mode: 0o640},
	}, h.eng.volumeFiles["uid-1-creds/..1"])
	h.eng.mu.Unlock()

	require.NoError(t, h.rt.ForgetPod(context.Background(), pod.UID))
	h.creds.mu.Lock()
	assert.Contains(t, h.creds.forgotten, pod.UID)
	h.creds.mu.Unlock()
}

// Containers get the variables of their namespace's Services (unless the
// pod turns service links off), and a missing limit reads as the node's
// allocatable through the downward API.
func TestServiceLinksAndDefaultLimits(t *testing.T) {
	h := newHarness(t)
	h.rt.cfg.CPUMillis, h.rt.cfg.MemoryBytes = 2000, 4<<30
	ctx := context.Background()
	for _, s := range []*corev1.Service{
		{ObjectMeta: metav1.ObjectMeta{Name: "fooservice", Namespace: "default"}, Spec: corev1.ServiceSpec{ClusterIP: "172.20.64.20",
			Ports: []corev1.ServicePort{{Port: 8765, Protocol: corev1.ProtocolTCP}}}},
		{ObjectMeta: metav1.ObjectMeta{Name: "headless", Namespace: "default"}, Spec: corev1.ServiceSpec{ClusterIP: corev1.ClusterIPNone}},
		{ObjectMeta: metav1.ObjectMeta{Name: "elsewhere", Namespace: "other"}, Spec: corev1.ServiceSpec{ClusterIP: "172.20.64.21"}},
	} {
		_, err := h.rt.client.CoreV1().Services(s.Namespace).Create(ctx, s, metav1.CreateOptions{})
		require.NoError(t, err)
	}
	limit := func(r string) *corev1.EnvVarSource {
		return &corev1.EnvVarSource{ResourceFieldRef: &corev1.ResourceFieldSelector{Resource: r}}
	}
	pod := testPod(corev1.RestartPolicyAlways, corev1.Container{Env: []corev1.EnvVar{
		{Name: "CPU_LIMIT", ValueFrom: limit("limits.cpu")}, {Name: "MEMORY_LIMIT", ValueFrom: limit("limits.memory")}}})
	env, err := h.rt.environment(ctx, pod, h.rt.record(ctx, pod), &pod.Spec.Containers[0])
	require.NoError(t, err)
	vars := map[string]string{}
	for _, e := range env {
		vars[e.Name] = e.Value
	}
	assert.Equal(t, "172.20.64.20", vars["FOOSERVICE_SERVICE_HOST"])
	assert.Equal(t, "8765", vars["FOOSERVICE_SERVICE_PORT"])
	assert.Equal(t, "tcp://172.20.64.20:8765", vars["FOOSERVICE_PORT"])
	assert.NotContains(t, vars, "HEADLESS_SERVICE_HOST")
	assert.NotContains(t, vars, "ELSEWHERE_SERVICE_HOST")
	assert.Equal(t, "2", vars["CPU_LIMIT"])
	assert.Equal(t, strconv.FormatInt(4<<30, 10), vars["MEMORY_LIMIT"])

	pod.Spec.EnableServiceLinks = ptr.To(false)
	env, err = h.rt.environment(ctx, pod, h.rt.record(ctx, pod), &pod.Spec.Containers[0])
	require.NoError(t, err)
	for _, e := range env {
		assert.NotEqual(t, "FOOSERVICE_SERVICE_HOST", e.Name)
	}
}

// A running pod is looked at again every dockerResync, even when nothing
// wakes it: its file volumes follow their sources.
func TestRunningPodResyncs(t *testing.T) {
	h := newHarness(t)
	pod := testPod(corev1.RestartPolicyAlways, corev1.Container{})
	_, res := h.sync(t, pod)
	assert.Equal(t, dockerResync, res.Requeue)
}
