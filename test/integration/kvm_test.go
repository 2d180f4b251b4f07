package integration

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"minik.dev/minik/drivers/kvm/kvmtest"
)

// TestKVM runs a 2-node cluster of libvirt VMs (QEMU under TCG on this
// machine: its CPU cannot run KVM guests) booted from the Debian cloud
// kernel and an initramfs whose /init is minik-node. libvirtd, its
// networks and every minik command run in a network namespace the test
// creates: the VMs' network exists only there.
func TestKVM(t *testing.T) {
	lv := kvmtest.StartLibvirtd(t)
	deb := kvmtest.KernelDeb(t)
	kvmtest.Need(t, "qemu-system-x86_64", "mkfs.ext4")
	h := newHarness(t)
	h.wrap = []string{"ip", "netns", "exec", lv.Netns}
	h.env = append(h.env, "MINIK_LIBVIRT_SOCKET="+lv.Socket, "MINIK_DRIVER=kvm")
	t.Cleanup(func() { showConsoleLogs(t, h) })

	virsh := func(args ...string) string {
		all := append([]string{"-c", "qemu:///system?socket=" + lv.Socket}, args...)
		out, err := exec.Command("virsh", all...).CombinedOutput()
		require.NoError(t, err, "%s", out)
		return string(out)
	}

	t.Run("bad input", func(t *testing.T) {
		saved := h.env
		h.env = append(append([]string{}, saved...), "MINIK_LIBVIRT_SOCKET="+filepath.Join(t.TempDir(), "absent"))
		r := h.run(time.Minute, "start", "-p", "nolibvirt")
		h.env = saved
		assert.Equal(t, 3, r.code, "a driver that cannot run nodes has exit code 3")
		assert.Contains(t, r.stderr, "libvirtd is not running")
		assert.Contains(t, r.stderr, "libvirtd -d")

		for _, args := range [][]string{
			{"start", "-p", "accel", "--vm-accel", "hvf"},
			{"start", "-p", "nokernel", "--vm-kernel", filepath.Join(t.TempDir(), "vmlinuz-absent")},
			{"start", "-p", "procvm", "--driver", "process", "--vm-accel", "tcg"},
		} {
			r := h.run(time.Minute, args...)
			assert.Equal(t, 2, r.code, "%v: %s", args, r.stderr)
			assert.Contains(t, r.stderr, "--vm-", args)
		}

		r = h.run(time.Minute, "start", "-p", "listens", "--listen-address", "192.0.2.1")
		assert.NotEqual(t, 0, r.code)
		assert.NoDirExists(t, filepath.Join(h.home, "profiles", "listens"))

		// A domain of the node's name that minik did not make is never
		// touched, and the failed start leaves nothing of its own.
		foreign := filepath.Join(t.TempDir(), "taken.xml")
		require.NoError(t, os.WriteFile(foreign, []byte("<domain type='qemu'><name>taken</name><memory unit='MiB'>64</memory><os><type>hvm</type></os></domain>"), 0o644))
		virsh("define", foreign)
		r = h.run(5*time.Minute, "start", "-p", "taken", "--vm-kernel", deb)
		assert.NotEqual(t, 0, r.code)
		assert.Contains(t, r.stderr, "a libvirt domain named taken exists and is not minik's")
		assert.Contains(t, virsh("list", "--all", "--name"), "taken")
		assert.NotContains(t, virsh("net-list", "--all", "--name"), "minik-taken", "the failed start removed its network")
		virsh("undefine", "taken")

		// KVM asked for where the CPU or /dev/kvm cannot run guests is
		// refused before anything is made, with what to do.
		if reason := kvmUnusable(); reason != "" {
			r := h.run(5*time.Minute, "start", "-p", "forcekvm", "--vm-kernel", deb, "--vm-accel", "kvm")
			assert.Equal(t, 3, r.code, "%s", r.stderr)
			assert.Contains(t, r.stderr, "--vm-accel tcg")
			assert.NoDirExists(t, filepath.Join(h.home, "profiles", "forcekvm"))
			assert.NotContains(t, virsh("net-list", "--all", "--name"), "minik-forcekvm")
		}
	})

	t.Run("no permission on the libvirt socket", func(t *testing.T) {
		r := runAsNobody(t, h, "MINIK_LIBVIRT_SOCKET="+lv.Socket, "start", "-p", "perm")
		assert.Equal(t, 3, r.code, "%s", r.stderr)
		assert.Contains(t, r.stderr, "permission denied")
		assert.Contains(t, r.stderr, "usermod -aG libvirt")
	})

	t.Run("ctrl-c rolls back, --retain keeps", func(t *testing.T) {
		for _, retain := range []bool{false, true} {
			name, args := "intr", []string{"start", "-p", "intr", "--vm-kernel", deb, "-o", "json"}
			if retain {
				name, args = "kept", []string{"start", "-p", "kept", "--vm-kernel", deb, "-o", "json", "--retain"}
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			// `ip netns exec` execs minik, so the signal reaches it.
			stderr := interruptOnceNodesRun(t, h.command(ctx, args...), func() {
				require.Contains(t, virsh("list", "--name"), name, "the VM runs when the start is interrupted")
			})
			cancel()
			if !retain {
				assert.Contains(t, stderr, "interrupted")
				assert.NotContains(t, virsh("list", "--all", "--name"), name, "an interrupted start leaves no domain")
				assert.NotContains(t, virsh("net-list", "--all", "--name"), "minik-"+name, "nor its network")
				assert.NoDirExists(t, filepath.Join(h.home, "profiles", name), "nor its profile")
				continue
			}
			assert.Contains(t, stderr, "--retain")
			assert.Contains(t, virsh("list", "--all", "--name"), name, "--retain keeps the VM")
			h.ok(5*time.Minute, "delete", "-p", name)
			assert.NotContains(t, virsh("list", "--all", "--name"), name)
			assert.NotContains(t, virsh("net-list", "--all", "--name"), "minik-"+name)
		}
	})

	// Under TCG on a busy 2-core machine a VM can go more than the default
	// 20 s without renewing its Lease (CI once saw a worker's pod evicted
	// 49 s after it registered); a slow emulated VM is not a dead node.
	out := h.ok(10*time.Minute, "start", "-p", "vms", "--nodes", "2", "--vm-kernel", deb, "--vm-accel", "tcg", "--node-monitor-grace-period", "2m")
	t.Log(out)
	st := h.status("vms")
	require.Equal(t, "kvm", st.Driver)
	require.True(t, strings.HasPrefix(st.APIServer, "https://172.") || strings.HasPrefix(st.APIServer, "https://10."),
		"the kubeconfig names the control-plane VM's address: %s", st.APIServer)

	// The node's initramfs holds the profile's keys and its disk holds
	// etcd: only their owner reads them.
	for _, f := range []string{"initrd.cpio", "data.img"} {
		fi, err := os.Stat(filepath.Join(h.home, "profiles", "vms", "nodes", "vms", "vm", f))
		require.NoError(t, err)
		assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm(), f)
	}

	kubectl := func(args ...string) string {
		return h.ok(2*time.Minute, append([]string{"kubectl", "-p", "vms", "--"}, args...)...)
	}
	nodes := kubectl("get", "nodes", "-o", "jsonpath={range .items[*]}{.metadata.name}={.status.conditions[?(@.type==\"Ready\")].status} {end}")
	assert.Contains(t, nodes, "vms=True")
	assert.Contains(t, nodes, "vms-m02=True")
	// Each node runs on its VM's kernel, the Debian cloud kernel, not this machine's.
	kernels := kubectl("get", "nodes", "-o", "jsonpath={range .items[*]}{.status.nodeInfo.kernelVersion} {end}")
	assert.Equal(t, 2, strings.Count(kernels, "-cloud-amd64"), kernels)

	// Pods are runc containers in the VMs, of an image built here with
	// docker build and loaded into every node.
	image := buildApp(t)
	r := h.run(time.Minute, "image", "load", "-p", "vms", filepath.Join(t.TempDir(), "absent.tar"))
	assert.Equal(t, 2, r.code, "a missing archive is bad input: %s", r.stderr)
	r = h.run(time.Minute, "image", "load", "-p", "vms", "minik-test-absent:1")
	assert.NotEqual(t, 0, r.code)
	assert.Contains(t, r.stderr, "minik-test-absent:1")
	loaded := h.ok(5*time.Minute, "image", "load", "-p", "vms", image)
	assert.Contains(t, loaded, "vms: ")
	assert.Contains(t, loaded, "vms-m02: ")

	manifest := filepath.Join(t.TempDir(), "web.yaml")
	require.NoError(t, os.WriteFile(manifest, []byte(`apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 3
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      terminationGracePeriodSeconds: 2
      containers:
      - name: app
        image: `+image+`
        env: [{name: GREETING, value: hello}]
        readinessProbe: {httpGet: {path: /, port: 8080}, periodSeconds: 2}
        resources: {limits: {cpu: 200m, memory: 64Mi}}
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: web}
  ports: [{port: 80, targetPort: 8080}]
`), 0o644))
	kubectl("apply", "-f", manifest)
	kubectl("rollout", "status", "deployment/web", "--timeout", "3m")
	pods := strings.Fields(kubectl("get", "pods", "-l", "app=web", "-o", "jsonpath={range .items[*]}{.metadata.name}@{.spec.nodeName} {end}"))
	require.Len(t, pods, 3)
	var onWorker, onControlPlane string
	for _, p := range pods {
		switch name, node, _ := strings.Cut(p, "@"); node {
		case "vms-m02":
			onWorker = name
		case "vms":
			onControlPlane = name
		}
	}
	require.NotEmpty(t, onWorker, "the scheduler spreads pods over both nodes: %v", pods)
	require.NotEmpty(t, onControlPlane, "the scheduler spreads pods over both nodes: %v", pods)
	assert.Equal(t, "runc://", kubectl("get", "node", "vms-m02", "-o", "jsonpath={.status.nodeInfo.containerRuntimeVersion}")[:7])

	// A pod on the control plane reaches the Service by its DNS name;
	// the answer comes from pods on either VM.
	assert.Eventually(t, func() bool {
		r := h.run(time.Minute, "kubectl", "-p", "vms", "--", "exec", onControlPlane, "--", "/app", "get", "http://web.default.svc.cluster.local/")
		return r.code == 0 && strings.HasPrefix(r.stdout, "hello from web-")
	}, 2*time.Minute, 2*time.Second, "a pod reaches the Service through the cluster DNS")
	// This machine reaches the Service's ClusterIP on the VM network.
	url := strings.TrimSpace(h.ok(time.Minute, "service", "-p", "vms", "web", "--url"))
	curl := kvmtest.Need(t, "curl")["curl"]
	body, err := exec.Command("ip", "netns", "exec", lv.Netns, curl, "-sf", "-m", "10", url).Output()
	require.NoError(t, err, "GET %s", url)
	assert.True(t, strings.HasPrefix(string(body), "hello from web-"), "%s", body)
	// A pod's log comes from its node's kubelet API, which the apiserver
	// (in the control-plane VM) reaches on the worker VM's address.
	assert.Contains(t, kubectl("logs", onWorker), "serving on :8080")
	assert.Equal(t, "in a VM", strings.TrimSpace(kubectl("exec", onWorker, "--", "/app", "echo", "in", "a", "VM")))

	// kubectl port-forward reaches the pod through its node's kubelet API.
	pfCtx, stopForward := context.WithCancel(context.Background())
	forward := h.command(pfCtx, "kubectl", "-p", "vms", "--", "port-forward", "pod/"+onWorker, "18080:8080")
	require.NoError(t, forward.Start())
	assert.Eventually(t, func() bool {
		out, err := exec.Command("ip", "netns", "exec", lv.Netns, curl, "-sf", "-m", "5", "http://127.0.0.1:18080/").Output()
		return err == nil && strings.HasPrefix(string(out), "hello from "+onWorker)
	}, time.Minute, time.Second, "port-forward to the pod on the worker VM")
	stopForward()
	_ = forward.Wait()

	// A crashing container is restarted with back-off, as on docker.
	kubectl("run", "crash", "--image", image, "--", "exit", "3")

	// kubectl top and the dashboard read the runc containers' cgroups
	// through the kubelets and metrics.k8s.io.
	eventually(t, 2*time.Minute, "kubectl top shows the web pods' usage", func() (bool, string) {
		r := h.run(time.Minute, "kubectl", "-p", "vms", "--", "top", "pods", "-l", "app=web", "--no-headers")
		if r.code != 0 {
			return false, r.stdout + r.stderr
		}
		rows := parseTop(t, r.stdout, 1)
		if len(rows) != 3 {
			return false, r.stdout
		}
		for _, row := range rows {
			if !row.known || row.memory <= 0 {
				return false, r.stdout
			}
		}
		return true, r.stdout
	})
	eventually(t, time.Minute, "kubectl top shows both nodes", func() (bool, string) {
		r := h.run(time.Minute, "kubectl", "-p", "vms", "--", "top", "nodes", "--no-headers")
		rows := parseTop(t, r.stdout, 1)
		return r.code == 0 && rows["vms"].memory > 0 && rows["vms-m02"].memory > 0, r.stdout + r.stderr
	})
	dash := h.ok(time.Minute, "dashboard", "-p", "vms", "--once")
	assert.Contains(t, dash, "Nodes  2: 2 Ready, 0 NotReady")
	assert.Regexp(t, `Pods +\d+: Running \d+`, dash)
	assert.Regexp(t, `\d+m/\d+m \d+%`, dash, "usage from metrics.k8s.io")

	// The Prometheus server runs in the control-plane VM: this machine
	// reaches it on the VM's address, pods through its Service.
	h.ok(time.Minute, "addons", "enable", "prometheus", "-p", "vms", "--scrape-interval", "5s")
	var promURL string
	eventually(t, time.Minute, "minik service prints prometheus' URL", func() (bool, string) {
		r := h.run(time.Minute, "service", "prometheus", "-n", "kube-system", "-p", "vms")
		promURL = strings.TrimSpace(r.stdout)
		return r.code == 0 && strings.HasPrefix(promURL, "http://"), r.stdout + r.stderr
	})
	eventually(t, 2*time.Minute, "prometheus scrapes the four endpoints of both kubelets", func() (bool, string) {
		out, err := exec.Command("ip", "netns", "exec", lv.Netns, curl, "-sf", "-m", "10", "-G", promURL+"/api/v1/query",
			"--data-urlencode", `query=count(up{job="kubelet"} == 1)`).CombinedOutput()
		return err == nil && strings.Contains(string(out), `"8"]`), string(out)
	})
	eventually(t, time.Minute, "a pod reaches prometheus through its Service", func() (bool, string) {
		r := h.run(time.Minute, "kubectl", "-p", "vms", "--", "exec", onWorker, "--", "/app", "get", "http://prometheus.kube-system:9090/-/ready")
		return r.code == 0 && strings.Contains(r.stdout, "Ready"), r.stdout + r.stderr
	})

	// A claim's data is kept on its node's disk from one pod to the next,
	// and goes with its volume.
	claimManifest := filepath.Join(t.TempDir(), "claim.yaml")
	require.NoError(t, os.WriteFile(claimManifest, []byte(`apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: data}
spec:
  accessModes: [ReadWriteOnce]
  resources: {requests: {storage: 100Mi}}
---
apiVersion: v1
kind: Pod
metadata: {name: writer}
spec:
  restartPolicy: Never
  nodeSelector: {kubernetes.io/hostname: vms-m02}
  containers:
  - {name: app, image: `+image+`, args: [write, /data/note, kept on the disk], volumeMounts: [{name: data, mountPath: /data}]}
  volumes: [{name: data, persistentVolumeClaim: {claimName: data}}]
---
apiVersion: v1
kind: Pod
metadata: {name: disk}
spec:
  nodeSelector: {kubernetes.io/hostname: vms-m02}
  terminationGracePeriodSeconds: 1
  containers:
  - {name: app, image: `+image+`, volumeMounts: [{name: volumes, mountPath: /volumes}]}
  volumes: [{name: volumes, hostPath: {path: /var/lib/minik/runc/volumes, type: DirectoryOrCreate}}]
`), 0o644))
	kubectl("apply", "-f", claimManifest)
	kubectl("wait", "--for", "jsonpath={.status.phase}=Succeeded", "pod/writer", "--timeout", "3m")
	kubectl("wait", "--for", "condition=Ready", "pod/disk", "--timeout", "3m")
	pv := kubectl("get", "pvc", "data", "-o", "jsonpath={.spec.volumeName}")
	require.NotEmpty(t, pv)
	assert.Equal(t, "kept on the disk", kubectl("exec", "disk", "--", "/app", "cat", "/volumes/"+pv+"/note"),
		"the claim's folder is on the node's data disk")
	kubectl("run", "reader", "--image", image, "--restart", "Never", "--overrides",
		`{"apiVersion":"v1","spec":{"volumes":[{"name":"data","persistentVolumeClaim":{"claimName":"data"}}],"containers":[{"name":"reader","image":"`+image+`","args":["cat","/data/note"],"volumeMounts":[{"name":"data","mountPath":"/data"}]}]}}`)
	kubectl("wait", "--for", "jsonpath={.status.phase}=Succeeded", "pod/reader", "--timeout", "3m")
	assert.Equal(t, "kept on the disk", kubectl("logs", "reader"))
	kubectl("delete", "pod", "writer", "reader")
	kubectl("delete", "pvc", "data")
	eventually(t, 2*time.Minute, "the deleted volume's folder is gone from the node's disk", func() (bool, string) {
		r := h.run(time.Minute, "kubectl", "-p", "vms", "--", "exec", "disk", "--", "/app", "stat", "/volumes/"+pv)
		return r.code != 0 && strings.Contains(r.stderr, "no such file"), r.stdout + r.stderr
	})
	kubectl("delete", "pod", "disk")

	eventually(t, 2*time.Minute, "the crashing container restarts, then backs off", func() (bool, string) {
		out := kubectl("get", "pod", "crash", "-o", "jsonpath={.status.containerStatuses[0].restartCount} {.status.containerStatuses[0].lastState.terminated.exitCode} {.status.containerStatuses[0].state.waiting.reason}")
		f := strings.Fields(out)
		return len(f) == 3 && f[0] != "0" && f[1] == "3" && f[2] == "CrashLoopBackOff", out
	})
	kubectl("delete", "pod", "crash")

	// A worker added to the running cluster runs pods too, and goes again.
	h.ok(5*time.Minute, "node", "add", "-p", "vms")
	kubectl("wait", "--for", "condition=Ready", "node/vms-m03", "--timeout", "3m")
	kubectl("run", "on-m03", "--image", image, "--restart", "Never", "--overrides", `{"apiVersion":"v1","spec":{"nodeName":"vms-m03"}}`, "--", "echo", "on the new node")
	kubectl("wait", "--for", "jsonpath={.status.phase}=Succeeded", "pod/on-m03", "--timeout", "3m")
	assert.Contains(t, kubectl("logs", "on-m03"), "on the new node")
	kubectl("delete", "pod", "on-m03")
	h.ok(5*time.Minute, "node", "stop", "-p", "vms", "vms-m03")
	assert.Contains(t, virsh("list", "--all", "--state-shutoff", "--name"), "vms-m03")
	h.ok(5*time.Minute, "node", "start", "-p", "vms", "vms-m03")
	kubectl("wait", "--for", "condition=Ready", "node/vms-m03", "--timeout", "3m")
	h.ok(5*time.Minute, "node", "delete", "-p", "vms", "vms-m03")
	assert.NotContains(t, virsh("list", "--all", "--name"), "vms-m03")

	// An image built here and not loaded: the node pulls it from the
	// image server minik runs beside the cluster, backed by the engine.
	notLoaded := buildApp(t)
	kubectl("run", "pulled", "--image", notLoaded, "--restart", "Never", "--", "echo", "pulled from the host")
	kubectl("wait", "--for", "jsonpath={.status.phase}=Succeeded", "pod/pulled", "--timeout", "3m")
	assert.Contains(t, kubectl("logs", "pulled"), "pulled from the host")
	// An image that is nowhere says so.
	kubectl("run", "ghost", "--image", "minik-test-ghost:1", "--restart", "Never")
	assert.Eventually(t, func() bool {
		msg := kubectl("get", "pod", "ghost", "-o", "jsonpath={.status.containerStatuses[0].state.waiting.message}")
		return strings.Contains(msg, "Docker Engine of the machine that runs the cluster")
	}, 2*time.Minute, 2*time.Second, "ErrImagePull says where the image was looked for")

	kubectl("create", "configmap", "kept", "--from-literal", "k=v")
	h.ok(5*time.Minute, "stop", "-p", "vms")
	st = h.status("vms")
	for _, n := range st.Nodes {
		assert.Equal(t, "Stopped", n.State, n.Name)
	}
	h.ok(10*time.Minute, "start", "-p", "vms")
	assert.Equal(t, "v", kubectl("get", "configmap", "kept", "-o", "jsonpath={.data.k}"), "etcd's data lives on the control plane's data disk")
	kubectl("wait", "--for", "condition=Ready", "node/vms-m02", "--timeout", "2m")
	// The image stays on the nodes' data disks: the pods run again.
	kubectl("rollout", "status", "deployment/web", "--timeout", "3m")

	nodeLog := h.ok(time.Minute, "logs", "-p", "vms", "--node", "vms-m02")
	assert.Contains(t, nodeLog, "starting node")

	h.ok(5*time.Minute, "delete", "-p", "vms")
	assert.NoDirExists(t, filepath.Join(h.home, "profiles", "vms"))
	assert.NotContains(t, virsh("list", "--all", "--name"), "vms")
	assert.NotContains(t, virsh("net-list", "--all", "--name"), "minik-vms")
	assert.Error(t, exec.Command("pgrep", "-f", "image serve --listen").Run(), "the image server stopped with the cluster")
}

// showConsoleLogs logs the end of every VM's serial console when the test
// failed: a node that never came up says why there.
func showConsoleLogs(t *testing.T, h *harness) {
	if !t.Failed() {
		return
	}
	logs, _ := filepath.Glob(filepath.Join(h.home, "profiles", "*", "nodes", "*", "vm", "console.log"))
	for _, l := range logs {
		data, _ := os.ReadFile(l)
		lines := strings.Split(string(data), "\n")
		t.Logf("%s (last lines):\n%s", l, strings.Join(lines[max(0, len(lines)-40):], "\n"))
	}
}

// kvmUnusable says why this machine cannot run KVM guests, or "".
func kvmUnusable() string {
	info, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return err.Error()
	}
	if !strings.Contains(string(info), " vmx") && !strings.Contains(string(info), " svm") {
		return "no vmx or svm"
	}
	f, err := os.OpenFile("/dev/kvm", os.O_RDWR, 0)
	if err != nil {
		return err.Error()
	}
	_ = f.Close()
	return ""
}

// runAsNobody runs a copy of minik as the user nobody, with its own
// MINIK_HOME, HOME and KUBECONFIG and the extra environment env (NAME=VALUE
// entries before the arguments).
func runAsNobody(t *testing.T, h *harness, envAndArgs ...string) result {
	t.Helper()
	var env, args []string
	for i, a := range envAndArgs {
		if !strings.Contains(a, "=") || strings.HasPrefix(a, "-") {
			args = envAndArgs[i:]
			break
		}
		env = append(env, a)
	}
	const nobody = 65534
	dir, err := os.MkdirTemp("", "minik-nobody-")
	require.NoError(t, err)
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	require.NoError(t, os.Chmod(dir, 0o755))
	bin := filepath.Join(dir, "minik")
	data, err := os.ReadFile(h.minik)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(bin, data, 0o755))
	home := filepath.Join(dir, "home")
	require.NoError(t, os.Mkdir(home, 0o755))
	require.NoError(t, os.Chown(home, nobody, nobody))

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + home, "MINIK_HOME=" + filepath.Join(home, ".minik"),
		"KUBECONFIG=" + filepath.Join(home, "kubeconfig"), "MINIK_DRIVER=kvm"}, env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nobody, Gid: nobody}}
	return runCmd(t, cmd)
}
