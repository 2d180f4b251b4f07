package docker

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"minik.dev/minik/kubelet/engine"
	"minik.dev/minik/nodeconfig"
)

func TestDockerPodStatus(t *testing.T) {
	t0 := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	running := engine.State{Status: "running", Running: true, StartedAt: t0}
	exited := func(code int) engine.State {
		return engine.State{Status: "exited", ExitCode: code, StartedAt: t0, FinishedAt: t0.Add(time.Second)}
	}
	probe := &corev1.Probe{ProbeHandler: corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{}}}
	type ctr struct {
		state         engine.State
		ready         bool
		waiting       string
		attempt       int
		last          *corev1.ContainerStateTerminated
		neverCreated  bool
		readinessGate bool
	}
	tests := []struct {
		name        string
		policy      corev1.RestartPolicy
		sandbox     bool
		init        *ctr
		app         ctr
		phase       corev1.PodPhase
		ready       bool
		appState    string // running, waiting:REASON or terminated:REASON
		initialized bool
	}{
		{name: "no sandbox yet", app: ctr{neverCreated: true}, phase: corev1.PodPending, appState: "waiting:ContainerCreating", initialized: true},
		{name: "init container running", sandbox: true, init: &ctr{state: running}, app: ctr{neverCreated: true},
			phase: corev1.PodPending, appState: "waiting:PodInitializing"},
		{name: "running and ready", sandbox: true, init: &ctr{state: exited(0)}, app: ctr{state: running},
			phase: corev1.PodRunning, ready: true, appState: "running", initialized: true},
		{name: "readiness probe not passed", sandbox: true, app: ctr{state: running, readinessGate: true},
			phase: corev1.PodRunning, appState: "running", initialized: true},
		{name: "readiness probe passed", sandbox: true, app: ctr{state: running, readinessGate: true, ready: true},
			phase: corev1.PodRunning, ready: true, appState: "running", initialized: true},
		{name: "completed", policy: corev1.RestartPolicyNever, sandbox: true, app: ctr{state: exited(0)},
			phase: corev1.PodSucceeded, appState: "terminated:Completed", initialized: true},
		{name: "failed", policy: corev1.RestartPolicyNever, sandbox: true, app: ctr{state: exited(2)},
			phase: corev1.PodFailed, appState: "terminated:Error", initialized: true},
		{name: "init container failed for good", policy: corev1.RestartPolicyNever, sandbox: true, init: &ctr{state: exited(1)},
			app: ctr{neverCreated: true}, phase: corev1.PodFailed, appState: "waiting:PodInitializing"},
		{name: "crash loop back-off counts as running", sandbox: true,
			app:   ctr{state: exited(1), waiting: "CrashLoopBackOff", attempt: 3},
			phase: corev1.PodRunning, appState: "waiting:CrashLoopBackOff", initialized: true},
		{name: "image pull error", sandbox: true, app: ctr{neverCreated: true, waiting: "ErrImagePull"},
			phase: corev1.PodPending, appState: "waiting:ErrImagePull", initialized: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pod := &corev1.Pod{
				ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "default", UID: "u1"},
				Spec: corev1.PodSpec{
					RestartPolicy: tt.policy,
					Containers:    []corev1.Container{{Name: "app", Image: "img"}},
				},
			}
			if tt.app.readinessGate {
				pod.Spec.Containers[0].ReadinessProbe = probe
			}
			rec := &dockerPod{containers: map[string]*dockerContainer{}}
			if tt.sandbox {
				rec.sandboxID, rec.ip = "sb", "172.20.128.7"
			}
			add := func(name string, c ctr, init bool) {
				if c.neverCreated && c.waiting == "" {
					return
				}
				dc := &dockerContainer{name: name, init: init, state: c.state, ready: c.ready, attempt: c.attempt,
					waitingReason: c.waiting, last: c.last}
				if !c.neverCreated {
					dc.id = name + "-id"
				}
				rec.containers[name] = dc
			}
			if tt.init != nil {
				pod.Spec.InitContainers = []corev1.Container{{Name: "init", Image: "img"}}
				add("init", *tt.init, true)
			}
			add("app", tt.app, false)
			m := &Runtime{cfg: &nodeconfig.Config{Name: "n1", IP: "172.20.0.3"}, now: func() time.Time { return t0 }}

			st := m.podStatus(pod, rec)
			assert.Equal(t, tt.phase, st.Phase)
			assert.Equal(t, "172.20.0.3", st.HostIP)
			if tt.sandbox {
				assert.Equal(t, "172.20.128.7", st.PodIP)
			}
			conds := map[corev1.PodConditionType]corev1.ConditionStatus{}
			for _, c := range st.Conditions {
				conds[c.Type] = c.Status
			}
			assert.Equal(t, boolCondition(tt.ready), conds[corev1.PodReady], "Ready")
			assert.Equal(t, boolCondition(tt.ready), conds[corev1.ContainersReady], "ContainersReady")
			assert.Equal(t, boolCondition(tt.initialized), conds[corev1.PodInitialized], "Initialized")
			assert.Equal(t, boolCondition(tt.sandbox), conds[corev1.PodReadyToStartContainers], "PodReadyToStartContainers")
			require.Len(t, st.ContainerStatuses, 1)
			cs := st.ContainerStatuses[0]
			assert.Equal(t, tt.appState, stateOf(cs))
			assert.Equal(t, int32(tt.app.attempt), cs.RestartCount)
			if tt.app.waiting == "CrashLoopBackOff" {
				require.NotNil(t, cs.LastTerminationState.Terminated, "a container in back-off shows how it last ended")
				assert.Equal(t, int32(1), cs.LastTerminationState.Terminated.ExitCode)
			}
		})
	}
}

func boolCondition(b bool) corev1.ConditionStatus {
	if b {
		return corev1.ConditionTrue
	}
	return corev1.ConditionFalse
}

func stateOf(cs corev1.ContainerStatus) string {
	switch {
	case cs.State.Running != nil:
		return "running"
	case cs.State.Waiting != nil:
		return "waiting:" + cs.State.Waiting.Reason
	case cs.State.Terminated != nil:
		return "terminated:" + cs.State.Terminated.Reason
	}
	return "none"
}

func TestPodDNS(t *testing.T) {
	m := &Runtime{cfg: &nodeconfig.Config{Docker: &nodeconfig.DockerRuntime{ServiceNetwork: nodeconfig.ServiceNetwork{ServiceCIDR: "172.20.64.0/18", DNSDomain: "cluster.local"}}}}
	tests := []struct {
		name    string
		policy  corev1.DNSPolicy
		config  *corev1.PodDNSConfig
		servers []string
		search  []string
	}{
		{"default is the cluster DNS", "", nil, []string{"172.20.64.10"}, []string{"ns1.svc.cluster.local", "svc.cluster.local", "cluster.local"}},
		{"Default is the engine's", corev1.DNSDefault, nil, nil, nil},
		{"None takes only the pod's", corev1.DNSNone, &corev1.PodDNSConfig{Nameservers: []string{"10.0.0.53"}, Searches: []string{"corp"}}, []string{"10.0.0.53"}, []string{"corp"}},
		{"dnsConfig adds to ClusterFirst", corev1.DNSClusterFirst, &corev1.PodDNSConfig{Searches: []string{"corp"}}, []string{"172.20.64.10"}, []string{"ns1.svc.cluster.local", "svc.cluster.local", "cluster.local", "corp"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns1"}, Spec: corev1.PodSpec{DNSPolicy: tt.policy, DNSConfig: tt.config}}
			var spec engine.SandboxSpec
			m.podDNS(pod, &spec)
			assert.Equal(t, tt.servers, spec.DNS)
			assert.Equal(t, tt.search, spec.DNSSearch)
		})
	}
}

func TestPodHosts(t *testing.T) {
	m := &Runtime{cfg: &nodeconfig.Config{Docker: &nodeconfig.DockerRuntime{ServiceNetwork: nodeconfig.ServiceNetwork{ServiceCIDR: "172.20.64.0/18", DNSDomain: "cluster.local"}}}}
	tests := []struct {
		name       string
		spec       corev1.PodSpec
		domainname string
		extra      []string
	}{
		{"plain pod", corev1.PodSpec{}, "", nil},
		{"subdomain: the FQDN", corev1.PodSpec{Hostname: "web-0", Subdomain: "web"}, "web.ns1.svc.cluster.local", nil},
		{"host network: the node's names", corev1.PodSpec{Subdomain: "web", HostNetwork: true}, "", nil},
		{"hostAliases", corev1.PodSpec{HostAliases: []corev1.HostAlias{{IP: "10.1.2.3", Hostnames: []string{"foo.local", "bar.local"}}}}, "",
			[]string{"foo.local\tbar.local:10.1.2.3"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var spec engine.SandboxSpec
			m.podHosts(&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns1"}, Spec: tt.spec}, &spec)
			assert.Equal(t, tt.domainname, spec.Domainname)
			assert.Equal(t, tt.extra, spec.ExtraHosts)
		})
	}
}

func TestAPIServerAddress(t *testing.T) {
	cases := []struct {
		name       string
		cfg        nodeconfig.Config
		host, port string
	}{
		{"the kubernetes Service", nodeconfig.Config{Docker: &nodeconfig.DockerRuntime{ServiceNetwork: nodeconfig.ServiceNetwork{ServiceCIDR: "172.20.64.0/18"}}}, "172.20.64.1", "443"},
		{"a joined node: the address it joined through", nodeconfig.Config{Joined: true, APIServer: "https://192.168.1.10:41234", Docker: &nodeconfig.DockerRuntime{}}, "192.168.1.10", "41234"},
		{"neither", nodeconfig.Config{Docker: &nodeconfig.DockerRuntime{}}, "", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := &Runtime{cfg: &c.cfg}
			host, port := m.apiServerAddress()
			require.Equal(t, c.host, host)
			require.Equal(t, c.port, port)
		})
	}
}
