package integration

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
)

// Label keys the docker driver and runtime put on what they make.
const (
	labelCluster = "dev.minik.cluster"
	labelPodUID  = "dev.minik.pod.uid"
)

// requireEngine skips when no Docker Engine answers, except in CI, where
// a missing engine is a failure.
func requireEngine(t *testing.T) {
	t.Helper()
	out, err := exec.Command("docker", "version", "--format", "{{.Server.APIVersion}}").CombinedOutput()
	if err == nil {
		return
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("CI is set and no Docker Engine answers: %v: %s", err, out)
	}
	t.Skipf("no Docker Engine answers (%v); set CI to make this a failure", err)
}

// keepNodeImages removes, when the test ends, the node images it built:
// the engine keeps what it had before, and nothing more.
func keepNodeImages(t *testing.T) {
	t.Helper()
	before := map[string]bool{}
	for _, id := range strings.Fields(docker(t, "images", "-q", "minik-node")) {
		before[id] = true
	}
	t.Cleanup(func() {
		out, _ := exec.Command("docker", "images", "-q", "minik-node").Output()
		for _, id := range strings.Fields(string(out)) {
			if !before[id] {
				_ = exec.Command("docker", "rmi", "-f", id).Run()
			}
		}
	})
}

func docker(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command("docker", args...).CombinedOutput()
	require.NoError(t, err, "docker %v: %s", args, out)
	return strings.TrimSpace(string(out))
}

// removeCluster deletes the profile's cluster when the test ends, and then
// whatever of it is left in the engine, so a failed test leaves nothing.
func removeCluster(t *testing.T, h *harness, profile string) {
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		del := exec.CommandContext(ctx, h.minik, "delete", "-p", profile)
		del.Env = h.env
		_ = del.Run()
		f := "label=" + labelCluster + "=" + profile
		for _, args := range [][]string{{"ps", "-aq", "--filter", f}, {"volume", "ls", "-q", "--filter", f}, {"network", "ls", "-q", "--filter", f}} {
			out, _ := exec.Command("docker", args...).Output()
			if ids := strings.Fields(string(out)); len(ids) > 0 {
				rm := map[string][]string{"ps": {"rm", "-f"}, "volume": {"volume", "rm", "-f"}, "network": {"network", "rm"}}[args[0]]
				_ = exec.Command("docker", append(rm, ids...)...).Run()
			}
		}
	})
}

// labelled lists the containers, volumes and networks labelled with the
// cluster, whatever their state.
func labelled(t *testing.T, cluster string) string {
	t.Helper()
	f := "label=" + labelCluster + "=" + cluster
	return strings.TrimSpace(strings.Join([]string{
		docker(t, "ps", "-aq", "--filter", f),
		docker(t, "volume", "ls", "-q", "--filter", f),
		docker(t, "network", "ls", "-q", "--filter", f),
	}, " "))
}

// appContext is a build context of the test workload: the static binary
// and a FROM scratch Dockerfile.
func appContext(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	// Tests run in their package's folder, where testdata is.
	cmd := exec.Command("go", "build", "-trimpath", "-o", filepath.Join(dir, "app"), "./testdata/app")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux")
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "build test app: %s", out)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte("FROM scratch\nCOPY app /app\nENTRYPOINT [\"/app\"]\n"), 0o644))
	return dir
}

// buildApp builds the test workload into a FROM scratch image in the
// engine's own store, as a user's `docker build` would.
func buildApp(t *testing.T) string {
	t.Helper()
	tag := fmt.Sprintf("minik-test-app:%d", time.Now().UnixNano())
	docker(t, "build", "-q", "-t", tag, appContext(t))
	t.Cleanup(func() { _ = exec.Command("docker", "rmi", "-f", tag).Run() })
	return tag
}

func appDeployment(name, image string, replicas int32) *appsv1.Deployment {
	labels := map[string]string{"app": name}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To(replicas),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					TerminationGracePeriodSeconds: ptr.To[int64](2),
					Containers: []corev1.Container{{
						Name:  "app",
						Image: image,
						Env:   []corev1.EnvVar{{Name: "GREETING", Value: "hello"}},
						Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}},
						ReadinessProbe: &corev1.Probe{
							ProbeHandler:  corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/ready", Port: intstr.FromString("http")}},
							PeriodSeconds: 1,
						},
						LivenessProbe: &corev1.Probe{
							ProbeHandler:  corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromInt32(8080)}},
							PeriodSeconds: 2,
						},
					}},
				},
			},
		},
	}
}

func containerStatus(p *corev1.Pod, name string) *corev1.ContainerStatus {
	for i := range p.Status.ContainerStatuses {
		if p.Status.ContainerStatuses[i].Name == name {
			return &p.Status.ContainerStatuses[i]
		}
	}
	return nil
}

func httpGet(url string) (string, error) {
	c := http.Client{Timeout: 3 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

func TestDockerCluster(t *testing.T) {
	requireEngine(t)
	keepNodeImages(t)
	h := newHarness(t)
	// No driver named anywhere: an engine answers, so docker is chosen.
	h.env = slices.DeleteFunc(h.env, func(e string) bool { return strings.HasPrefix(e, "MINIK_DRIVER=") })
	const profile = "dk"
	removeCluster(t, h, profile)
	image := buildApp(t)

	_, st := h.startJSON("-p", profile, "--nodes", "3")
	require.Equal(t, "docker", st.Driver, "auto-selection takes docker when an engine answers")
	require.Len(t, st.Nodes, 3)
	for _, n := range st.Nodes {
		require.Equal(t, "Running", n.State, n.Name)
		require.Equal(t, "true", docker(t, "inspect", "-f", "{{.State.Running}}", n.Name))
	}
	ips := map[string]string{}
	for _, n := range st.Nodes {
		ips[n.Name] = n.IP
	}
	c := clientFor(t, h.kubeconfig, profile)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	kubectl := func(args ...string) string {
		return h.ok(3*time.Minute, append([]string{"kubectl", "-p", profile, "--"}, args...)...)
	}
	nodes, err := c.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	require.NoError(t, err)
	require.Len(t, nodes.Items, 3)

	t.Run("deployment of a local image", func(t *testing.T) {
		_, err := c.AppsV1().Deployments("default").Create(ctx, appDeployment("web", image, 3), metav1.CreateOptions{})
		require.NoError(t, err)
		kubectl("rollout", "status", "deployment/web", "--timeout=2m")
		pods := podsOf(t, ctx, c, "web")
		require.Len(t, pods, 3)
		for _, p := range pods {
			require.True(t, isReady(p), p.Name)
			cs := containerStatus(&p, "app")
			require.NotNil(t, cs)
			id := strings.TrimPrefix(cs.ContainerID, "docker://")
			// A real container runs, in the pod's sandbox, on the pod IP.
			require.Equal(t, "true", docker(t, "inspect", "-f", "{{.State.Running}}", id))
			body, err := httpGet("http://" + p.Status.PodIP + ":8080/from-host")
			require.NoError(t, err, "pod %s IP %s from the host", p.Name, p.Status.PodIP)
			require.Contains(t, body, "hello from "+p.Name)
		}
		// Pod to pod, across nodes.
		out := kubectl("exec", pods[0].Name, "--", "/app", "get", "http://"+pods[1].Status.PodIP+":8080/from-pod")
		require.Contains(t, out, "hello from "+pods[1].Name)
		logs := kubectl("logs", pods[1].Name)
		require.Contains(t, logs, "serving on :8080")
		require.Contains(t, logs, "request /from-pod from "+pods[0].Status.PodIP)
		require.Contains(t, kubectl("exec", pods[0].Name, "--", "/app", "env", "GREETING"), "hello")
		// A failing command's exit code reaches kubectl.
		r := h.run(time.Minute, "kubectl", "-p", profile, "--", "exec", pods[0].Name, "--", "/app", "exit", "3")
		require.NotEqual(t, 0, r.code)
		require.Contains(t, r.stderr, "exit code 3")
		// The service account token and CA are mounted as files.
		require.Contains(t, kubectl("exec", pods[0].Name, "--", "/app", "cat", "/var/run/secrets/kubernetes.io/serviceaccount/namespace"), "default")

		// kubectl port-forward reaches the pod through the apiserver and its kubelet.
		l, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		pfCtx, stopPF := context.WithCancel(ctx)
		pf := exec.CommandContext(pfCtx, h.minik, "kubectl", "-p", profile, "--", "port-forward", "pod/"+pods[0].Name, fmt.Sprintf("%d:8080", port))
		pf.Env = h.env
		pfOut, err := pf.StdoutPipe()
		require.NoError(t, err)
		require.NoError(t, pf.Start())
		waitFor(t, pfOut, "Forwarding from")
		go func() { _, _ = io.Copy(io.Discard, pfOut) }()
		body, err := httpGet(fmt.Sprintf("http://127.0.0.1:%d/forwarded", port))
		stopPF()
		_ = pf.Wait()
		require.NoError(t, err)
		require.Contains(t, body, "hello from "+pods[0].Name)

		// kubectl run -i attaches to the container's own stdin and stdout.
		run := exec.CommandContext(ctx, h.minik, "kubectl", "-p", profile, "--", "run", "attached", "--image", image,
			"-i", "--rm", "--restart=Never", "--", "cat", "/dev/stdin")
		run.Env = h.env
		run.Stdin = strings.NewReader("hello through attach\n")
		attached, err := run.CombinedOutput()
		require.NoError(t, err, "%s", attached)
		require.Contains(t, string(attached), "hello through attach")

		// Deleting a pod removes its containers.
		victim := pods[2]
		require.NoError(t, c.CoreV1().Pods("default").Delete(ctx, victim.Name, metav1.DeleteOptions{}))
		eventually(t, time.Minute, "containers of the deleted pod removed", func() (bool, string) {
			out := docker(t, "ps", "-aq", "--filter", "label="+labelPodUID+"="+string(victim.UID))
			return out == "", out
		})
		kubectl("rollout", "status", "deployment/web", "--timeout=2m")
	})

	t.Run("services and cluster DNS", func(t *testing.T) {
		svc, err := c.CoreV1().Services("default").Create(ctx, &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Name: "web"},
			Spec: corev1.ServiceSpec{
				Selector: map[string]string{"app": "web"},
				Ports:    []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromString("http")}},
			},
		}, metav1.CreateOptions{})
		require.NoError(t, err)
		pods := podsOf(t, ctx, c, "web")
		require.NotEmpty(t, pods)
		// From the host, on the ClusterIP (the Service range is part of the
		// cluster's own network).
		eventually(t, time.Minute, "the ClusterIP answers from the host", func() (bool, string) {
			body, err := httpGet("http://" + svc.Spec.ClusterIP + "/from-host")
			if err != nil {
				return false, err.Error()
			}
			return strings.Contains(body, "hello from web-"), body
		})
		urls := strings.Fields(h.ok(time.Minute, "service", "web", "-p", profile, "--url"))
		require.Equal(t, []string{"http://" + svc.Spec.ClusterIP + ":80"}, urls)
		body, err := httpGet(urls[0] + "/from-minik-service")
		require.NoError(t, err)
		require.Contains(t, body, "hello from web-")
		require.Contains(t, h.fails("service", "nope", "-p", profile), "not found")
		// From a pod, by name: the cluster DNS, search path and all.
		for _, url := range []string{"http://web.default.svc.cluster.local/", "http://web/"} {
			eventually(t, time.Minute, "pod reaches "+url, func() (bool, string) {
				r := h.run(time.Minute, "kubectl", "-p", profile, "--", "exec", pods[0].Name, "--", "/app", "get", url)
				return r.code == 0 && strings.Contains(r.stdout, "hello from web-"), r.stdout + r.stderr
			})
		}
		// A NodePort answers on the control-plane node's IP.
		np, err := c.CoreV1().Services("default").Create(ctx, &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Name: "web-np"},
			Spec: corev1.ServiceSpec{
				Type:     corev1.ServiceTypeNodePort,
				Selector: map[string]string{"app": "web"},
				Ports:    []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromString("http")}},
			},
		}, metav1.CreateOptions{})
		require.NoError(t, err)
		eventually(t, time.Minute, "the NodePort answers from the host", func() (bool, string) {
			body, err := httpGet(fmt.Sprintf("http://%s:%d/from-nodeport", ips[profile], np.Spec.Ports[0].NodePort))
			if err != nil {
				return false, err.Error()
			}
			return strings.Contains(body, "hello from web-"), body
		})

		// In-cluster clients find the apiserver where the kubernetes Service says.
		out := kubectl("exec", pods[0].Name, "--", "/app", "env", "KUBERNETES_SERVICE_HOST")
		kube, err := c.CoreV1().Services("default").Get(ctx, "kubernetes", metav1.GetOptions{})
		require.NoError(t, err)
		require.Contains(t, out, kube.Spec.ClusterIP)
		require.Contains(t, kubectl("exec", pods[0].Name, "--", "/app", "get", "http://kubernetes.default.svc:443/"), "HTTPS server")
	})

	t.Run("restarts and probes", func(t *testing.T) {
		pod := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: "crashy"},
			Spec: corev1.PodSpec{
				TerminationGracePeriodSeconds: ptr.To[int64](1),
				Containers: []corev1.Container{
					{Name: "exits", Image: image, Args: []string{"exit", "1"}},
					{
						Name: "unhealthy", Image: image,
						LivenessProbe: &corev1.Probe{
							ProbeHandler:     corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"/app", "exit", "1"}}},
							PeriodSeconds:    1,
							FailureThreshold: 1,
						},
					},
				},
			},
		}
		_, err := c.CoreV1().Pods("default").Create(ctx, pod, metav1.CreateOptions{})
		require.NoError(t, err)
		eventually(t, 2*time.Minute, "both containers restarted", func() (bool, string) {
			p, err := c.CoreV1().Pods("default").Get(ctx, "crashy", metav1.GetOptions{})
			if err != nil {
				return false, err.Error()
			}
			exits, unhealthy := containerStatus(p, "exits"), containerStatus(p, "unhealthy")
			if exits == nil || unhealthy == nil {
				return false, "no statuses"
			}
			last := exits.LastTerminationState.Terminated
			return exits.RestartCount >= 1 && unhealthy.RestartCount >= 1 && last != nil && last.ExitCode == 1,
				fmt.Sprintf("exits: %d restarts, last %+v; unhealthy: %d restarts", exits.RestartCount, last, unhealthy.RestartCount)
		})
		require.Contains(t, kubectl("logs", "crashy", "-c", "exits", "--previous"), "exiting with 1")
		require.NoError(t, c.CoreV1().Pods("default").Delete(ctx, "crashy", metav1.DeleteOptions{}))
	})

	t.Run("volumes, env sources, limits and an unready pod", func(t *testing.T) {
		_, err := c.CoreV1().ConfigMaps("default").Create(ctx, &corev1.ConfigMap{
			ObjectMeta: metav1.ObjectMeta{Name: "conf"}, Data: map[string]string{"app.conf": "color=blue\n"},
		}, metav1.CreateOptions{})
		require.NoError(t, err)
		_, err = c.CoreV1().Secrets("default").Create(ctx, &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: "creds"}, Data: map[string][]byte{"password": []byte("s3cret")},
		}, metav1.CreateOptions{})
		require.NoError(t, err)
		mounts := []corev1.VolumeMount{{Name: "conf", MountPath: "/etc/app"}, {Name: "creds", MountPath: "/etc/creds"}, {Name: "scratch", MountPath: "/scratch"}, {Name: "node-data", MountPath: "/data"}}
		nodeData := corev1.Volume{Name: "node-data", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/var/lib/app-data"}}}
		pod := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: "wired"},
			Spec: corev1.PodSpec{
				TerminationGracePeriodSeconds: ptr.To[int64](1),
				Volumes: []corev1.Volume{
					{Name: "conf", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "conf"}}}},
					{Name: "creds", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "creds"}}},
					{Name: "scratch", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
					nodeData,
				},
				InitContainers: []corev1.Container{{
					Name: "seed", Image: image, Command: []string{"/app"}, Args: []string{"echo", "seeded"},
				}},
				Containers: []corev1.Container{{
					Name: "app", Image: image, VolumeMounts: mounts,
					Env: []corev1.EnvVar{
						{Name: "PASSWORD", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "creds"}, Key: "password"}}},
						{Name: "POD_IP", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "status.podIP"}}},
					},
					Resources: corev1.ResourceRequirements{Limits: corev1.ResourceList{
						corev1.ResourceCPU: resource.MustParse("500m"), corev1.ResourceMemory: resource.MustParse("64Mi"),
					}},
					// Nothing serves 8081: the pod runs but is never Ready.
					ReadinessProbe: &corev1.Probe{
						ProbeHandler:  corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/", Port: intstr.FromInt32(8081)}},
						PeriodSeconds: 1,
					},
				}},
			},
		}
		_, err = c.CoreV1().Pods("default").Create(ctx, pod, metav1.CreateOptions{})
		require.NoError(t, err)
		var p *corev1.Pod
		eventually(t, time.Minute, "pod wired running", func() (bool, string) {
			p, err = c.CoreV1().Pods("default").Get(ctx, "wired", metav1.GetOptions{})
			if err != nil {
				return false, err.Error()
			}
			cs := containerStatus(p, "app")
			return cs != nil && cs.State.Running != nil, fmt.Sprintf("%+v", p.Status.ContainerStatuses)
		})
		require.Contains(t, kubectl("exec", "wired", "--", "/app", "cat", "/etc/app/app.conf"), "color=blue")
		require.Contains(t, kubectl("exec", "wired", "--", "/app", "cat", "/etc/creds/password"), "s3cret")
		require.Contains(t, kubectl("exec", "wired", "--", "/app", "env", "PASSWORD"), "s3cret")
		require.Contains(t, kubectl("exec", "wired", "--", "/app", "env", "POD_IP"), p.Status.PodIP)
		require.Contains(t, kubectl("logs", "wired", "-c", "seed"), "seeded")
		id := strings.TrimPrefix(containerStatus(p, "app").ContainerID, "docker://")
		// 500m is a CFS quota of half the 100 ms period, as the kubelet sets it.
		require.Equal(t, "50000 100000 67108864", docker(t, "inspect", "-f", "{{.HostConfig.CpuQuota}} {{.HostConfig.CpuPeriod}} {{.HostConfig.Memory}}", id))
		require.Contains(t, docker(t, "inspect", "-f", "{{range .Mounts}}{{.Type}}:{{.Destination}} {{end}}", id), "volume:/scratch")
		time.Sleep(3 * time.Second)
		p, err = c.CoreV1().Pods("default").Get(ctx, "wired", metav1.GetOptions{})
		require.NoError(t, err)
		require.False(t, isReady(*p), "a failing readiness probe keeps the pod unready")
		require.False(t, containerStatus(p, "app").Ready)

		// A hostPath directory is the node's: it outlives the pod, and the
		// next pod on that node sees what the first wrote.
		kubectl("exec", "wired", "--", "/app", "write", "/data/note", "kept on the node")
		require.NoError(t, c.CoreV1().Pods("default").Delete(ctx, "wired", metav1.DeleteOptions{}))
		reader := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: "reader"},
			Spec: corev1.PodSpec{
				NodeName: p.Spec.NodeName, RestartPolicy: corev1.RestartPolicyNever,
				Volumes:    []corev1.Volume{nodeData},
				Containers: []corev1.Container{{Name: "cat", Image: image, Args: []string{"cat", "/data/note"}, VolumeMounts: []corev1.VolumeMount{{Name: "node-data", MountPath: "/data"}}}},
			},
		}
		_, err = c.CoreV1().Pods("default").Create(ctx, reader, metav1.CreateOptions{})
		require.NoError(t, err)
		eventually(t, time.Minute, "reader pod done", func() (bool, string) {
			r, err := c.CoreV1().Pods("default").Get(ctx, "reader", metav1.GetOptions{})
			if err != nil {
				return false, err.Error()
			}
			return r.Status.Phase == corev1.PodSucceeded, string(r.Status.Phase)
		})
		require.Contains(t, kubectl("logs", "reader"), "kept on the node")
		require.NoError(t, c.CoreV1().Pods("default").Delete(ctx, "reader", metav1.DeleteOptions{}))
	})

	t.Run("cAdvisor metrics from the engine", func(t *testing.T) {
		p := podsOf(t, ctx, c, "web")[0]
		eventually(t, time.Minute, "cAdvisor series of "+p.Name, func() (bool, string) {
			out := kubectl("get", "--raw", "/api/v1/nodes/"+p.Spec.NodeName+"/proxy/metrics/cadvisor")
			cpu, labels, ok := cadvisorValue(t, out, "container_cpu_usage_seconds_total", map[string]string{"namespace": "default", "pod": p.Name, "container": "app"})
			if !ok || cpu <= 0 {
				return false, "no CPU series of the pod yet"
			}
			require.Equal(t, image, labels["image"])
			require.NotEmpty(t, labels["name"])
			mem, _, ok := cadvisorValue(t, out, "container_memory_working_set_bytes", map[string]string{"pod": p.Name, "container": "app"})
			if !ok || mem <= 0 {
				return false, "no memory series yet"
			}
			// The host asked the pod for a page above: its sandbox received bytes.
			rx, _, ok := cadvisorValue(t, out, "container_network_receive_bytes_total", map[string]string{"pod": p.Name, "container": "POD", "interface": "eth0"})
			return ok && rx > 0, "no network series yet"
		})
		// The kubelet's probe counters: the app's HTTP readiness probe runs every second.
		out := kubectl("get", "--raw", "/api/v1/nodes/"+p.Spec.NodeName+"/proxy/metrics/probes")
		n, _, ok := cadvisorValue(t, out, "prober_probe_total", map[string]string{"namespace": "default", "pod": p.Name, "pod_uid": string(p.UID),
			"container": "app", "probe_type": "Readiness", "result": "successful"})
		require.True(t, ok, "a readiness series of %s in /metrics/probes:\n%s", p.Name, out)
		require.Positive(t, n)
	})

	t.Run("prometheus scrapes annotated pods and is reached from pods", func(t *testing.T) {
		h.ok(time.Minute, "addons", "enable", "prometheus", "-p", profile, "--scrape-interval", "2s")
		d := appDeployment("exporter", image, 1)
		d.Spec.Template.Annotations = map[string]string{"prometheus.io/scrape": "true", "prometheus.io/port": "8080", "prometheus.io/path": "/metrics"}
		_, err := c.AppsV1().Deployments("default").Create(ctx, d, metav1.CreateOptions{})
		require.NoError(t, err)
		kubectl("rollout", "status", "deployment/exporter", "--timeout=2m")
		exporter := podsOf(t, ctx, c, "exporter")
		require.Len(t, exporter, 1)
		var url string
		eventually(t, time.Minute, "minik service prints prometheus' URL", func() (bool, string) {
			r := h.run(time.Minute, "service", "prometheus", "-n", "kube-system", "-p", profile)
			url = strings.TrimSpace(r.stdout)
			return r.code == 0 && strings.HasPrefix(url, "http://"), r.stdout + r.stderr
		})
		api := promClient(t, url)
		waitTargetsUp(t, ctx, api, "apiserver", "kubelet", "kubernetes-pods")
		// The app counts its readiness probes' requests.
		eventually(t, time.Minute, "the exporter's own metric, labelled with its pod", func() (bool, string) {
			vec, err := promVector(ctx, api, `app_requests_total{job="kubernetes-pods",path="/ready"}`)
			if err != nil {
				return false, err.Error()
			}
			return len(vec) == 1 && string(vec[0].Metric["pod"]) == exporter[0].Name && vec[0].Value > 0, vec.String()
		})
		eventually(t, time.Minute, "the exporter's CPU from cAdvisor", func() (bool, string) {
			vec, err := promVector(ctx, api, `container_cpu_usage_seconds_total{metrics_path="/metrics/cadvisor",pod="`+exporter[0].Name+`",container="app"}`)
			if err != nil {
				return false, err.Error()
			}
			return len(vec) == 1 && string(vec[0].Metric["image"]) == image && vec[0].Value > 0, vec.String()
		})
		// Pods reach it through its Service and cluster DNS.
		out := kubectl("exec", exporter[0].Name, "--", "/app", "get", "http://prometheus.kube-system:9090/-/ready")
		require.Contains(t, out, "Ready")
		require.NoError(t, c.AppsV1().Deployments("default").Delete(ctx, "exporter", metav1.DeleteOptions{}))
	})

	t.Run("host network", func(t *testing.T) {
		pod := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: "hostnet"},
			Spec: corev1.PodSpec{
				HostNetwork:                   true,
				TerminationGracePeriodSeconds: ptr.To[int64](1),
				Containers: []corev1.Container{{Name: "app", Image: image,
					Env: []corev1.EnvVar{{Name: "GREETING", Value: "hello"}}}},
			},
		}
		_, err := c.CoreV1().Pods("default").Create(ctx, pod, metav1.CreateOptions{})
		require.NoError(t, err)
		var p *corev1.Pod
		eventually(t, time.Minute, "host-network pod running", func() (bool, string) {
			p, err = c.CoreV1().Pods("default").Get(ctx, "hostnet", metav1.GetOptions{})
			if err != nil {
				return false, err.Error()
			}
			return p.Status.Phase == corev1.PodRunning, string(p.Status.Phase)
		})
		require.Equal(t, p.Status.HostIP, p.Status.PodIP, "a host-network pod has its node's IP")
		eventually(t, 30*time.Second, "the pod answers on its node's IP", func() (bool, string) {
			body, err := httpGet("http://" + p.Status.PodIP + ":8080/hostnet")
			if err != nil {
				return false, err.Error()
			}
			return strings.Contains(body, "hello from "+p.Spec.NodeName), body
		})
		require.NoError(t, c.CoreV1().Pods("default").Delete(ctx, "hostnet", metav1.DeleteOptions{}))
	})

	t.Run("missing image", func(t *testing.T) {
		pod := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: "noimage"},
			Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "minik-test-missing:v1"}}},
		}
		_, err := c.CoreV1().Pods("default").Create(ctx, pod, metav1.CreateOptions{})
		require.NoError(t, err)
		eventually(t, time.Minute, "ErrImagePull or ImagePullBackOff", func() (bool, string) {
			p, err := c.CoreV1().Pods("default").Get(ctx, "noimage", metav1.GetOptions{})
			if err != nil {
				return false, err.Error()
			}
			cs := containerStatus(p, "c")
			if cs == nil || cs.State.Waiting == nil {
				return false, fmt.Sprintf("%+v", p.Status)
			}
			w := cs.State.Waiting
			return (w.Reason == "ErrImagePull" || w.Reason == "ImagePullBackOff") && strings.Contains(w.Message, "minik-test-missing"), w.Reason + ": " + w.Message
		})
		require.NoError(t, c.CoreV1().Pods("default").Delete(ctx, "noimage", metav1.DeleteOptions{}))
	})

	t.Run("node loss", func(t *testing.T) {
		pods := podsOf(t, ctx, c, "web")
		var lost string
		for _, p := range pods {
			if p.Spec.NodeName != profile {
				lost = p.Spec.NodeName
			}
		}
		require.NotEmpty(t, lost, "a web pod on a worker")
		onLost := map[string]bool{}
		for _, p := range pods {
			if p.Spec.NodeName == lost {
				onLost[string(p.UID)] = true
			}
		}
		docker(t, "kill", lost)
		eventually(t, 2*time.Minute, "node "+lost+" NotReady", func() (bool, string) {
			n, err := c.CoreV1().Nodes().Get(ctx, lost, metav1.GetOptions{})
			if err != nil {
				return false, err.Error()
			}
			return !kubeReady(ctx, t, c, n.Name), "still Ready"
		})
		eventually(t, 3*time.Minute, "web pods replaced on other nodes", func() (bool, string) {
			ready := 0
			for _, p := range podsOf(t, ctx, c, "web") {
				if p.Spec.NodeName != lost && p.DeletionTimestamp == nil && isReady(p) {
					ready++
				}
			}
			return ready == 3, fmt.Sprintf("%d ready elsewhere", ready)
		})
		eventually(t, time.Minute, "containers of the lost node removed", func() (bool, string) {
			out := docker(t, "ps", "-aq", "--filter", "label=dev.minik.node="+lost, "--filter", "label=dev.minik.kind=container")
			return out == "", out
		})
		h.ok(3*time.Minute, "node", "start", lost, "-p", profile)
	})

	t.Run("stop and start keep the cluster", func(t *testing.T) {
		h.ok(3*time.Minute, "stop", "-p", profile)
		for _, n := range st.Nodes {
			assert.Equal(t, "false", docker(t, "inspect", "-f", "{{.State.Running}}", n.Name))
		}
		out := docker(t, "ps", "-q", "--filter", "label="+labelCluster+"="+profile)
		require.Empty(t, out, "nothing of the cluster runs after stop")
		_, st2 := h.startJSON("-p", profile)
		for _, n := range st2.Nodes {
			assert.Equal(t, ips[n.Name], n.IP, "node %s keeps its IP", n.Name)
			assert.Equal(t, ips[n.Name], docker(t, "inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", n.Name))
		}
		c = clientFor(t, h.kubeconfig, profile)
		_, err := c.AppsV1().Deployments("default").Get(ctx, "web", metav1.GetOptions{})
		require.NoError(t, err, "the deployment survived stop and start")
		kubectl("rollout", "status", "deployment/web", "--timeout=3m")
		eventually(t, 2*time.Minute, "web pods answer again", func() (bool, string) {
			for _, p := range podsOf(t, ctx, c, "web") {
				if p.DeletionTimestamp != nil || !isReady(p) {
					continue
				}
				if _, err := httpGet("http://" + p.Status.PodIP + ":8080/"); err != nil {
					return false, err.Error()
				}
			}
			return true, ""
		})
		// Services come back too (their proxy and DNS once stalled on a
		// restart, refused the DNS Service's address it already had).
		svc, err := c.CoreV1().Services("default").Get(ctx, "web", metav1.GetOptions{})
		require.NoError(t, err)
		eventually(t, 2*time.Minute, "the ClusterIP answers after the restart", func() (bool, string) {
			body, err := httpGet("http://" + svc.Spec.ClusterIP + "/")
			return err == nil && strings.Contains(body, "hello from web-"), fmt.Sprint(body, err)
		})
	})

	h.ok(3*time.Minute, "delete", "-p", profile)
	require.Empty(t, labelled(t, profile), "nothing labelled with the cluster is left")
}

func TestDockerBadInput(t *testing.T) {
	requireEngine(t)
	keepNodeImages(t)
	h := newHarness(t)
	t.Run("no engine", func(t *testing.T) {
		h2 := *h
		h2.env = append(append([]string{}, h.env...), "DOCKER_HOST=unix:///nonexistent/docker.sock")
		r := h2.run(time.Minute, "start", "-p", "noengine", "--driver", "docker")
		require.Equal(t, 3, r.code, "no engine: the driver is unavailable, exit code 3 (docs/cli.md)")
		stderr := r.stderr
		require.Contains(t, stderr, "DOCKER_HOST")
		_, err := os.Stat(filepath.Join(h.home, "profiles", "noengine"))
		require.True(t, os.IsNotExist(err), "no profile is left behind")
	})
	t.Run("name clash with a foreign container", func(t *testing.T) {
		image := buildApp(t)
		name := fmt.Sprintf("clash%d", time.Now().UnixNano()%100000)
		docker(t, "create", "--name", name, image)
		t.Cleanup(func() { _ = exec.Command("docker", "rm", "-f", name).Run() })
		stderr := h.fails("start", "-p", name, "--driver", "docker", "--wait", "30s")
		require.Contains(t, stderr, "not minik's")
		require.Empty(t, labelled(t, name), "a failed start leaves nothing labelled")
	})
	t.Run("ctrl-c rolls back, --retain keeps", func(t *testing.T) {
		for _, retain := range []bool{false, true} {
			name := "intr"
			args := []string{"start", "-p", name, "--driver", "docker", "--nodes", "2", "-o", "json"}
			if retain {
				name = "kept"
				args = []string{"start", "-p", name, "--driver", "docker", "--nodes", "2", "-o", "json", "--retain"}
			}
			cmd := exec.Command(h.minik, args...)
			cmd.Env = h.env
			// Interrupted once the node containers exist.
			stderr := interruptOnceNodesRun(t, cmd, nil)
			if !retain {
				require.Contains(t, stderr, "interrupted")
				require.Empty(t, labelled(t, name), "an interrupted start leaves nothing labelled")
				_, err := os.Stat(filepath.Join(h.home, "profiles", name))
				require.True(t, os.IsNotExist(err), "and no profile")
				continue
			}
			require.Contains(t, stderr, "--retain")
			require.NotEmpty(t, labelled(t, name), "--retain keeps the containers")
			h.ok(time.Minute, "delete", "-p", name)
			require.Empty(t, labelled(t, name))
		}
	})

	t.Run("engine dies mid-start", func(t *testing.T) {
		sock := filepath.Join(t.TempDir(), "docker.sock")
		proxy := startSocketProxy(t, sock)
		h2 := *h
		h2.env = append(append([]string{}, h.env...), "DOCKER_HOST=unix://"+sock)
		cmd := exec.Command(h.minik, "start", "-p", "dies", "--driver", "docker", "--nodes", "2", "-o", "json")
		cmd.Env = h2.env
		stdout, err := cmd.StdoutPipe()
		require.NoError(t, err)
		var stderr strings.Builder
		cmd.Stderr = &stderr
		require.NoError(t, cmd.Start())
		waitFor(t, stdout, `"step":"start nodes","status":"done"`)
		proxy.cut()
		go func() { _, _ = io.Copy(io.Discard, stdout) }()
		require.Error(t, cmd.Wait(), "a start whose engine died fails")
		require.Contains(t, stderr.String(), "minik delete -p dies")
		require.NotEmpty(t, labelled(t, "dies"), "the engine kept what it made before it stopped answering")
		// The engine is back: delete finds and removes everything.
		startSocketProxy(t, sock)
		h2.ok(time.Minute, "delete", "-p", "dies")
		require.Empty(t, labelled(t, "dies"))
	})

	t.Run("auto-selection falls back to process", func(t *testing.T) {
		h2 := *h
		h2.env = []string{"DOCKER_HOST=unix:///nonexistent/docker.sock"}
		for _, e := range h.env {
			if !strings.HasPrefix(e, "MINIK_DRIVER=") {
				h2.env = append(h2.env, e)
			}
		}
		_, st := h2.startJSON("-p", "fallback", "--wait", "0")
		require.Equal(t, "process", st.Driver)
		require.Contains(t, h2.fails("service", "kubernetes", "-p", "fallback"), "simulated")
		h2.ok(time.Minute, "delete", "-p", "fallback")
	})
}

// waitFor reads r until want appears.
func waitFor(t *testing.T, r io.Reader, want string) {
	t.Helper()
	buf := make([]byte, 64<<10)
	var seen strings.Builder
	for !strings.Contains(seen.String(), want) {
		n, err := r.Read(buf)
		require.NoError(t, err, "output ended before %s: %s", want, seen.String())
		seen.Write(buf[:n])
	}
}

// socketProxy stands for the engine at another socket, and can stop
// answering at once, as an engine that dies does.
type socketProxy struct {
	l     net.Listener
	mu    sync.Mutex
	conns []net.Conn
}

func startSocketProxy(t *testing.T, path string) *socketProxy {
	t.Helper()
	target := "/var/run/docker.sock"
	if h, ok := strings.CutPrefix(os.Getenv("DOCKER_HOST"), "unix://"); ok {
		target = h
	}
	_ = os.Remove(path)
	l, err := net.Listen("unix", path)
	require.NoError(t, err)
	p := &socketProxy{l: l}
	t.Cleanup(p.cut)
	go func() {
		for {
			in, err := l.Accept()
			if err != nil {
				return
			}
			out, err := net.Dial("unix", target)
			if err != nil {
				in.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, in, out)
			p.mu.Unlock()
			go func() { _, _ = io.Copy(out, in); out.Close() }()
			go func() { _, _ = io.Copy(in, out); in.Close() }()
		}
	}()
	return p
}

func (p *socketProxy) cut() {
	p.l.Close()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}
