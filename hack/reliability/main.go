// Command reliability measures what a minik cluster survives, on each
// driver asked for: stop/start cycles with a few hundred objects (soak),
// kill -9 of every node (crash), kill -9 in the middle of a burst of
// writes, and on docker a restart of the Docker Engine (a reboot, for the
// nodes). It counts objects lost and what is left behind, and prints a
// table: test, runs, failures, objects lost, time.
//
// On docker it also keeps a claim's data through the soak, and builds the
// integration tests' app into an image of this machine's engine (run it
// from the repository's root, as `make reliability` does).
//
// It runs the real bin/minik, as a user would, in a private MINIK_HOME.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/utils/ptr"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "reliability:", err)
		os.Exit(1)
	}
}

// row is one line of the result table.
type row struct {
	driver, test   string
	runs, failures int
	lost           int
	took           time.Duration
	note           string
}

type suite struct {
	// engineRestart restarts the machine's Docker Engine in the docker run.
	engineRestart bool
	minik         string
	env           []string
	home          string
	kc            string
	rows          []row
}

func run(ctx context.Context) error {
	minik := flag.String("minik", "bin/minik", "minik binary")
	driversFlag := flag.String("drivers", "process,docker", "drivers to test")
	cycles := flag.Int("cycles", 20, "soak: stop/start cycles")
	objects := flag.Int("objects", 200, "soak: objects of mixed kinds kept in the cluster")
	writes := flag.Int("writes", 1000, "crash during writes: ConfigMaps written in the burst")
	engineRestart := flag.Bool("engine-restart", true, "docker: restart the machine's Docker Engine (every container on it stops and starts again) and wait for the cluster to come back by itself")
	flag.Parse()

	dir, err := os.MkdirTemp("", "minik-reliability-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	s := &suite{minik: *minik, home: filepath.Join(dir, "home"), kc: filepath.Join(dir, "kubeconfig"), engineRestart: *engineRestart}
	s.env = append(os.Environ(), "MINIK_HOME="+s.home, "KUBECONFIG="+s.kc)
	defer func() { _ = s.cmd(context.Background(), "delete", "--all").Run() }()

	for _, d := range strings.Split(*driversFlag, ",") {
		if d == "docker" && exec.CommandContext(ctx, "docker", "version").Run() != nil {
			fmt.Printf("docker: skipped, no Docker Engine answers\n\n")
			continue
		}
		if err := s.driver(ctx, d, *cycles, *objects, *writes); err != nil {
			return fmt.Errorf("%s: %w", d, err)
		}
	}
	fmt.Printf("%-8s %-28s %5s %9s %13s %9s  %s\n", "driver", "test", "runs", "failures", "objects lost", "time", "")
	failed := 0
	for _, r := range s.rows {
		fmt.Printf("%-8s %-28s %5d %9d %13d %8.1fs  %s\n", r.driver, r.test, r.runs, r.failures, r.lost, r.took.Seconds(), r.note)
		if r.failures > 0 {
			failed++
		}
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d tests failed", failed, len(s.rows))
	}
	return nil
}

func (s *suite) cmd(ctx context.Context, args ...string) *exec.Cmd {
	c := exec.CommandContext(ctx, s.minik, args...)
	c.Env = s.env
	return c
}

func (s *suite) minikOK(ctx context.Context, args ...string) error {
	if out, err := s.cmd(ctx, args...).CombinedOutput(); err != nil {
		return fmt.Errorf("minik %s: %w: %s", strings.Join(args, " "), err, out)
	}
	return nil
}

func (s *suite) client(profile string) (kubernetes.Interface, error) {
	rc, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(
		&clientcmd.ClientConfigLoadingRules{ExplicitPath: s.kc},
		&clientcmd.ConfigOverrides{CurrentContext: profile}).ClientConfig()
	if err != nil {
		return nil, err
	}
	rc.QPS, rc.Burst = 500, 1000
	return kubernetes.NewForConfig(rc)
}

const ns = "reliability"

func (s *suite) driver(ctx context.Context, driver string, cycles, objects, writes int) (err error) {
	profile := "rel-" + driver
	if err := s.minikOK(ctx, "start", "-p", profile, "--driver", driver, "--nodes", "2"); err != nil {
		return err
	}
	defer func() { _ = s.cmd(context.Background(), "delete", "-p", profile).Run() }()
	// Before the delete: the node logs go with the profile.
	defer func() {
		if err != nil {
			s.showLogs(ctx, profile)
		}
	}()
	c, err := s.client(profile)
	if err != nil {
		return err
	}
	want, err := createObjects(ctx, c, objects)
	if err != nil {
		return err
	}
	// On docker, pods are real containers: a claim's data must survive
	// the soak too, and an app must come back after the engine restarts.
	var image string
	if driver == "docker" {
		if image, err = buildApp(ctx); err != nil {
			return err
		}
		defer func() { _ = exec.Command("docker", "rmi", "-f", image).Run() }()
		if err := runPod(ctx, c, image, "writer", "write", "/data/note", claimNote); err != nil {
			return err
		}
	}

	// Soak: stop and start, counting objects and what a stop leaves.
	soak := row{driver: driver, test: fmt.Sprintf("soak: stop/start, %d objects", len(want))}
	var starts []time.Duration
	var firstRSS, lastRSS int64
	var firstFiles, lastFiles int
	began := time.Now()
	for i := 0; i < cycles; i++ {
		soak.runs++
		if err := s.minikOK(ctx, "stop", "-p", profile); err != nil {
			return err
		}
		if left := s.leftovers(ctx, driver, profile); left != "" {
			soak.failures++
			soak.note = "left after stop: " + left
		}
		t0 := time.Now()
		if err := s.minikOK(ctx, "start", "-p", profile); err != nil {
			soak.failures++
			soak.note = err.Error()
			continue
		}
		starts = append(starts, time.Since(t0))
		lost, err := missing(ctx, c, want)
		if err != nil {
			return err
		}
		if lost > 0 {
			soak.failures++
			soak.lost += lost
		}
		rss, files := s.footprint(ctx, driver, profile)
		if i == 0 {
			firstRSS, firstFiles = rss, files
		}
		lastRSS, lastFiles = rss, files
	}
	soak.took = time.Since(began)
	if image != "" {
		if err := runPod(ctx, c, image, "reader", "cat", "/data/note"); err != nil {
			soak.failures++
			soak.note += " claim: " + err.Error()
		} else {
			soak.note += " claim's data kept;"
		}
	}
	if len(starts) > 0 {
		slices.Sort(starts)
		soak.note = strings.TrimSpace(fmt.Sprintf("start median %.2fs, slowest %.2fs; node RSS after start 1 %d MiB, after start %d %d MiB; files in MINIK_HOME %d, then %d %s",
			starts[len(starts)/2].Seconds(), starts[len(starts)-1].Seconds(), firstRSS>>20, cycles, lastRSS>>20, firstFiles, lastFiles, soak.note))
	}
	s.rows = append(s.rows, soak)

	// Crash: every node killed at once, then minik start.
	crash := row{driver: driver, test: "crash: kill -9 every node", runs: 1}
	began = time.Now()
	if err := s.killNodes(ctx, driver, profile); err != nil {
		return err
	}
	if err := s.minikOK(ctx, "start", "-p", profile); err != nil {
		return fmt.Errorf("start after kill -9 of every node: %w", err)
	} else if crash.lost, err = missing(ctx, c, want); err != nil {
		return err
	} else if crash.lost > 0 {
		crash.failures++
	}
	crash.took = time.Since(began)
	s.rows = append(s.rows, crash)

	// Crash in the middle of a burst of writes: every write the apiserver
	// acknowledged must be there after the restart.
	burst := row{driver: driver, test: fmt.Sprintf("crash during %d writes", writes), runs: 1}
	began = time.Now()
	acked, err := s.crashDuringWrites(ctx, c, driver, profile, writes)
	if err != nil {
		return err
	}
	if err := s.minikOK(ctx, "start", "-p", profile); err != nil {
		burst.failures++
		burst.note = err.Error()
	} else {
		lost, err := missing(ctx, c, acked)
		if err != nil {
			return err
		}
		burst.lost = lost
		if lost > 0 {
			burst.failures++
		}
		burst.note = fmt.Sprintf("%d writes acknowledged before the kill", len(acked))
	}
	burst.took = time.Since(began)
	s.rows = append(s.rows, burst)

	if driver == "docker" && s.engineRestart {
		r, err := s.restartEngine(ctx, c, image, want)
		if err != nil {
			return err
		}
		s.rows = append(s.rows, r)
	}
	return nil
}

// restartEngine restarts the Docker Engine, as a reboot of the machine
// would, and waits for the cluster to be Ready again with no minik
// command: the node containers come back by their restart policy and
// their agents start the nodes.
func (s *suite) restartEngine(ctx context.Context, c kubernetes.Interface, image string, want []key) (row, error) {
	r := row{driver: "docker", test: "engine restart", runs: 1}
	if err := runApp(ctx, c, image); err != nil {
		return r, err
	}
	began := time.Now()
	how, err := restartDockerd(ctx)
	if err != nil {
		return r, err
	}
	back := time.Since(began)
	deadline := time.Now().Add(3 * time.Minute)
	for {
		ready, why := nodesReadySince(ctx, c, began)
		if ready {
			ready, why = appRunningSince(ctx, c, began)
		}
		if ready {
			break
		}
		if time.Now().After(deadline) {
			r.failures++
			r.note = "not Ready 3 minutes after the engine restart: " + why
			r.took = time.Since(began)
			return r, nil
		}
		time.Sleep(250 * time.Millisecond)
	}
	r.took = time.Since(began)
	lost, err := missing(ctx, c, want)
	if err != nil {
		return r, err
	}
	r.lost = lost
	if lost > 0 {
		r.failures++
	}
	if _, err := c.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "after-engine-restart"}}, metav1.CreateOptions{}); err != nil {
		r.failures++
		r.note = "write after the restart: " + err.Error()
	}
	r.note = strings.TrimSpace(fmt.Sprintf("engine restarted (%s) in %.1fs; every node Ready and the Deployment's %d pods running again %.1fs later, no minik command %s", how, back.Seconds(), appReplicas, (r.took - back).Seconds(), r.note))
	return r, nil
}

// appReplicas is how many pods of the app the engine restart test runs.
const appReplicas = 2

// buildApp builds the integration tests' small HTTP server into a FROM
// scratch image of this machine's engine (nothing can be pulled).
func buildApp(ctx context.Context) (string, error) {
	dir, err := os.MkdirTemp("", "minik-reliability-app-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(dir)
	build := exec.CommandContext(ctx, "go", "build", "-trimpath", "-o", filepath.Join(dir, "app"), "./test/integration/testdata/app")
	build.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux")
	if out, err := build.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build the app: %w: %s", err, out)
	}
	if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte("FROM scratch\nCOPY app /app\nENTRYPOINT [\"/app\"]\n"), 0o644); err != nil {
		return "", err
	}
	tag := fmt.Sprintf("minik-reliability-app:%d", time.Now().UnixNano())
	if out, err := exec.CommandContext(ctx, "docker", "build", "-q", "-t", tag, dir).CombinedOutput(); err != nil {
		return "", fmt.Errorf("docker build: %w: %s", err, out)
	}
	return tag, nil
}

// claimNote is what the soak's claim holds.
const claimNote = "kept through the soak"

// runPod runs the app once with args in a pod that mounts the claim
// "data" (made on first use) at /data, waits for it to succeed, checks
// that a cat prints claimNote, and deletes the pod.
func runPod(ctx context.Context, c kubernetes.Interface, image, name string, args ...string) error {
	claim := &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: "data", Namespace: ns},
		Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources:   corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("10Mi")}},
		},
	}
	if _, err := c.CoreV1().PersistentVolumeClaims(ns).Create(ctx, claim, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create the claim: %w", err)
	}
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: corev1.PodSpec{
			RestartPolicy: corev1.RestartPolicyNever,
			Containers: []corev1.Container{{Name: "app", Image: image, Args: args,
				VolumeMounts: []corev1.VolumeMount{{Name: "data", MountPath: "/data"}}}},
			Volumes: []corev1.Volume{{Name: "data", VolumeSource: corev1.VolumeSource{
				PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "data"}}}},
		},
	}
	if _, err := c.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("create pod %s: %w", name, err)
	}
	defer func() {
		_ = c.CoreV1().Pods(ns).Delete(context.Background(), name, metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)})
	}()
	for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(250 * time.Millisecond) {
		p, err := c.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if p.Status.Phase == corev1.PodFailed {
			return fmt.Errorf("pod %s failed: %s", name, p.Status.Message)
		}
		if p.Status.Phase == corev1.PodSucceeded {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("pod %s did not finish in 2 minutes (%s)", name, p.Status.Phase)
		}
	}
	if args[0] != "cat" {
		return nil
	}
	out, err := c.CoreV1().Pods(ns).GetLogs(name, &corev1.PodLogOptions{}).DoRaw(ctx)
	if err != nil {
		return fmt.Errorf("logs of %s: %w", name, err)
	}
	if got := strings.TrimSpace(string(out)); got != claimNote {
		return fmt.Errorf("the claim holds %q, want %q", got, claimNote)
	}
	return nil
}

// runApp runs the app as a Deployment with a readiness probe and waits
// for its pods to be Ready.
func runApp(ctx context.Context, c kubernetes.Interface, image string) error {
	labels := map[string]string{"app": "survivor"}
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "survivor", Namespace: ns},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](appReplicas),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					TerminationGracePeriodSeconds: ptr.To[int64](2),
					Containers: []corev1.Container{{
						Name:  "app",
						Image: image,
						ReadinessProbe: &corev1.Probe{PeriodSeconds: 1, ProbeHandler: corev1.ProbeHandler{
							HTTPGet: &corev1.HTTPGetAction{Path: "/", Port: intstr.FromInt32(8080)}}},
					}},
				},
			},
		},
	}
	if _, err := c.AppsV1().Deployments(ns).Create(ctx, d, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("create the app's Deployment: %w", err)
	}
	for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(250 * time.Millisecond) {
		ok, why := appRunningSince(ctx, c, time.Time{})
		if ok {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the app's pods are not Ready after 2 minutes: %s", why)
		}
	}
}

// appRunningSince reports whether the app's pods are all Ready in
// containers started after since, or what is not.
func appRunningSince(ctx context.Context, c kubernetes.Interface, since time.Time) (bool, string) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	pods, err := c.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=survivor"})
	if err != nil {
		return false, err.Error()
	}
	running := 0
	for _, p := range pods.Items {
		if p.DeletionTimestamp != nil || len(p.Status.ContainerStatuses) == 0 {
			continue
		}
		st := p.Status.ContainerStatuses[0]
		if st.Ready && st.State.Running != nil && !st.State.Running.StartedAt.Time.Before(since.Truncate(time.Second)) {
			running++
		}
	}
	if running < appReplicas {
		return false, fmt.Sprintf("%d of the app's %d pods Ready in a container started since the restart", running, appReplicas)
	}
	return true, ""
}

// nodesReadySince reports whether every node has reported Ready after
// since, or what is not.
func nodesReadySince(ctx context.Context, c kubernetes.Interface, since time.Time) (bool, string) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	nodes, err := c.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return false, err.Error()
	}
	if len(nodes.Items) == 0 {
		return false, "no nodes"
	}
	for _, n := range nodes.Items {
		ready := false
		for _, cond := range n.Status.Conditions {
			if cond.Type == corev1.NodeReady && cond.Status == corev1.ConditionTrue {
				ready = !cond.LastHeartbeatTime.Time.Before(since.Truncate(time.Second))
			}
		}
		if !ready {
			// A Ready node's agent renews its Lease more often than it
			// writes its status.
			lease, err := c.CoordinationV1().Leases(corev1.NamespaceNodeLease).Get(ctx, n.Name, metav1.GetOptions{})
			ready = err == nil && lease.Spec.RenewTime != nil && !lease.Spec.RenewTime.Time.Before(since) && nodeReady(n)
		}
		if !ready {
			return false, "node " + n.Name + " has not reported Ready since the restart"
		}
	}
	return true, ""
}

func nodeReady(n corev1.Node) bool {
	for _, cond := range n.Status.Conditions {
		if cond.Type == corev1.NodeReady {
			return cond.Status == corev1.ConditionTrue
		}
	}
	return false
}

// restartDockerd restarts the machine's Docker Engine: with
// MINIK_RELIABILITY_ENGINE_RESTART (a shell command) when set, through
// systemd when it runs the engine, else by stopping dockerd and starting
// it again with the same command line. It returns how, once the engine
// answers again.
func restartDockerd(ctx context.Context) (string, error) {
	var how string
	switch custom := os.Getenv("MINIK_RELIABILITY_ENGINE_RESTART"); {
	case custom != "":
		how = custom
		if out, err := exec.CommandContext(ctx, "sh", "-c", custom).CombinedOutput(); err != nil {
			return "", fmt.Errorf("%s: %w: %s", custom, err, out)
		}
	case exec.CommandContext(ctx, "systemctl", "is-active", "--quiet", "docker").Run() == nil:
		how = "systemctl restart docker"
		if out, err := exec.CommandContext(ctx, "systemctl", "restart", "docker").CombinedOutput(); err != nil {
			return "", fmt.Errorf("systemctl restart docker: %w: %s", err, out)
		}
	default:
		how = "SIGTERM to dockerd, then the same command line"
		if err := respawnDockerd(ctx); err != nil {
			return "", err
		}
	}
	for deadline := time.Now().Add(time.Minute); exec.CommandContext(ctx, "docker", "version").Run() != nil; time.Sleep(200 * time.Millisecond) {
		if time.Now().After(deadline) {
			return "", errors.New("the Docker Engine did not answer a minute after its restart")
		}
	}
	return how, nil
}

// respawnDockerd stops the dockerd of /var/run/docker.pid and starts it
// again, detached, with the command line it had.
func respawnDockerd(ctx context.Context) error {
	data, err := os.ReadFile("/var/run/docker.pid")
	if err != nil {
		return fmt.Errorf("find dockerd (set MINIK_RELIABILITY_ENGINE_RESTART to the command that restarts your engine): %w", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil {
		return fmt.Errorf("/var/run/docker.pid: %w", err)
	}
	cmdline, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "cmdline"))
	if err != nil {
		return fmt.Errorf("dockerd's command line: %w", err)
	}
	argv := strings.Split(strings.TrimRight(string(cmdline), "\x00"), "\x00")
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		return fmt.Errorf("stop dockerd: %w", err)
	}
	for deadline := time.Now().Add(90 * time.Second); syscall.Kill(pid, 0) == nil; time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			return fmt.Errorf("dockerd (pid %d) did not stop in 90 s", pid)
		}
	}
	log, err := os.OpenFile(filepath.Join(os.TempDir(), "minik-reliability-dockerd.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer log.Close()
	// Not tied to ctx: the engine outlives this suite.
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", argv[0], err)
	}
	return cmd.Process.Release()
}

// key names an object: KIND/NAME.
type key string

// createObjects makes n objects of mixed kinds in the test namespace.
func createObjects(ctx context.Context, c kubernetes.Interface, n int) ([]key, error) {
	if _, err := c.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return nil, err
	}
	var made []key
	for i := 0; len(made) < n; i++ {
		name := fmt.Sprintf("obj-%04d", i)
		meta := metav1.ObjectMeta{Name: name, Namespace: ns}
		var err error
		var kind string
		switch i % 5 {
		case 0:
			kind = "configmap"
			_, err = c.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{ObjectMeta: meta, Data: map[string]string{"i": strconv.Itoa(i)}}, metav1.CreateOptions{})
		case 1:
			kind = "secret"
			_, err = c.CoreV1().Secrets(ns).Create(ctx, &corev1.Secret{ObjectMeta: meta, StringData: map[string]string{"i": strconv.Itoa(i)}}, metav1.CreateOptions{})
		case 2:
			kind = "serviceaccount"
			_, err = c.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: meta}, metav1.CreateOptions{})
		case 3:
			kind = "service"
			_, err = c.CoreV1().Services(ns).Create(ctx, &corev1.Service{ObjectMeta: meta, Spec: corev1.ServiceSpec{
				Ports: []corev1.ServicePort{{Port: 80, TargetPort: intstr.FromInt32(8080)}}}}, metav1.CreateOptions{})
		case 4:
			kind = "role"
			_, err = c.RbacV1().Roles(ns).Create(ctx, &rbacv1.Role{ObjectMeta: meta, Rules: []rbacv1.PolicyRule{{
				APIGroups: []string{""}, Resources: []string{"configmaps"}, Verbs: []string{"get"}}}}, metav1.CreateOptions{})
		}
		if err != nil {
			return nil, fmt.Errorf("create %s %s: %w", kind, name, err)
		}
		made = append(made, key(kind+"/"+name))
	}
	return made, nil
}

// missing counts the objects of want that the cluster does not have.
func missing(ctx context.Context, c kubernetes.Interface, want []key) (int, error) {
	have := map[key]bool{}
	o := metav1.ListOptions{}
	cms, err := c.CoreV1().ConfigMaps(ns).List(ctx, o)
	if err != nil {
		return 0, err
	}
	for _, x := range cms.Items {
		have[key("configmap/"+x.Name)] = true
	}
	secrets, err := c.CoreV1().Secrets(ns).List(ctx, o)
	if err != nil {
		return 0, err
	}
	for _, x := range secrets.Items {
		have[key("secret/"+x.Name)] = true
	}
	sas, err := c.CoreV1().ServiceAccounts(ns).List(ctx, o)
	if err != nil {
		return 0, err
	}
	for _, x := range sas.Items {
		have[key("serviceaccount/"+x.Name)] = true
	}
	svcs, err := c.CoreV1().Services(ns).List(ctx, o)
	if err != nil {
		return 0, err
	}
	for _, x := range svcs.Items {
		have[key("service/"+x.Name)] = true
	}
	roles, err := c.RbacV1().Roles(ns).List(ctx, o)
	if err != nil {
		return 0, err
	}
	for _, x := range roles.Items {
		have[key("role/"+x.Name)] = true
	}
	lost := 0
	for _, k := range want {
		if !have[k] {
			lost++
		}
	}
	return lost, nil
}

// crashDuringWrites writes ConfigMaps as fast as the apiserver takes them
// and kills every node once a third are acknowledged; it returns the
// acknowledged ones.
func (s *suite) crashDuringWrites(ctx context.Context, c kubernetes.Interface, driver, profile string, n int) ([]key, error) {
	acked := make(chan key, n)
	done := make(chan struct{})
	var firstErr error
	go func() {
		defer close(done)
		for i := 0; i < n; i++ {
			name := fmt.Sprintf("burst-%04d", i)
			_, err := c.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name}, Data: map[string]string{"i": strconv.Itoa(i)}}, metav1.CreateOptions{})
			if err != nil {
				if firstErr == nil {
					firstErr = err
				}
				continue // the apiserver is gone: not acknowledged
			}
			acked <- key("configmap/" + name)
		}
	}()
	deadline := time.After(2 * time.Minute)
	for len(acked) < n/3 {
		select {
		case <-deadline:
			return nil, errors.New("the write burst did not reach a third in 2 minutes")
		case <-done:
			return nil, fmt.Errorf("the write burst ended before the kill, %d of %d acknowledged; first error: %v", len(acked), n, firstErr)
		case <-time.After(10 * time.Millisecond):
		}
	}
	if err := s.killNodes(ctx, driver, profile); err != nil {
		return nil, err
	}
	select {
	case <-done:
	case <-time.After(2 * time.Minute):
		return nil, errors.New("the writer did not notice the kill")
	}
	close(acked)
	var out []key
	for k := range acked {
		out = append(out, k)
	}
	return out, nil
}

// killNodes kills every node of the cluster without warning: kill -9 of
// its minik-node processes, or of its node containers.
func (s *suite) killNodes(ctx context.Context, driver, profile string) error {
	switch driver {
	case "docker":
		ids, err := exec.CommandContext(ctx, "docker", "ps", "-q", "--filter", "label=dev.minik.cluster="+profile, "--filter", "label=dev.minik.kind=node").Output()
		if err != nil {
			return fmt.Errorf("list node containers: %w", err)
		}
		if f := strings.Fields(string(ids)); len(f) > 0 {
			if out, err := exec.CommandContext(ctx, "docker", append([]string{"kill"}, f...)...).CombinedOutput(); err != nil {
				return fmt.Errorf("docker kill: %w: %s", err, out)
			}
		}
	default:
		pids := s.nodePIDs()
		for _, pid := range pids {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		for deadline := time.Now().Add(10 * time.Second); len(s.nodePIDs()) > 0; time.Sleep(50 * time.Millisecond) {
			if time.Now().After(deadline) {
				return errors.New("minik-node processes outlived kill -9")
			}
		}
	}
	return nil
}

// nodePIDs are the minik-node processes whose command line names this
// suite's MINIK_HOME.
func (s *suite) nodePIDs() []int {
	entries, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || !strings.Contains(string(cmdline), s.home) || !strings.Contains(string(cmdline), "minik-node") {
			continue
		}
		out = append(out, pid)
	}
	sort.Ints(out)
	return out
}

// showLogs prints the ends of the profile's node logs (and, on docker,
// what the engine kept of its containers' output).
func (s *suite) showLogs(ctx context.Context, profile string) {
	logs, _ := filepath.Glob(filepath.Join(s.home, "profiles", profile, "nodes", "*", "node.log"))
	for _, l := range logs {
		data, _ := os.ReadFile(l)
		lines := strings.Split(strings.TrimSpace(string(data)), "\n")
		fmt.Fprintf(os.Stderr, "== %s (last lines)\n%s\n", l, strings.Join(lines[max(0, len(lines)-20):], "\n"))
	}
	out, _ := s.cmd(ctx, "logs", "-p", profile, "--tail", "20").CombinedOutput()
	fmt.Fprintf(os.Stderr, "== minik logs -p %s --tail 20\n%s\n", profile, out)
}

// footprint is the resident memory of the cluster's node processes (on
// docker, each node container's minik-node) and the files in MINIK_HOME.
func (s *suite) footprint(ctx context.Context, driver, profile string) (rss int64, files int) {
	pids := s.nodePIDs()
	if driver == "docker" {
		pids = nil
		ids, _ := exec.CommandContext(ctx, "docker", "ps", "-q", "--filter", "label=dev.minik.cluster="+profile).Output()
		for _, id := range strings.Fields(string(ids)) {
			out, err := exec.CommandContext(ctx, "docker", "inspect", "-f", "{{.State.Pid}}", id).Output()
			if pid, perr := strconv.Atoi(strings.TrimSpace(string(out))); err == nil && perr == nil {
				pids = append(pids, pid)
			}
		}
	}
	for _, pid := range pids {
		status, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "status"))
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(status), "\n") {
			if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
				kb, _ := strconv.ParseInt(f[1], 10, 64)
				rss += kb << 10
			}
		}
	}
	_ = filepath.WalkDir(s.home, func(_ string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			files++
		}
		return nil
	})
	return rss, files
}

// leftovers says what a stopped cluster still runs: processes, or
// running containers; "" when nothing.
func (s *suite) leftovers(ctx context.Context, driver, profile string) string {
	switch driver {
	case "docker":
		ids, err := exec.CommandContext(ctx, "docker", "ps", "-q", "--filter", "label=dev.minik.cluster="+profile).Output()
		if err == nil && len(strings.Fields(string(ids))) > 0 {
			return fmt.Sprintf("%d running containers", len(strings.Fields(string(ids))))
		}
	default:
		if pids := s.nodePIDs(); len(pids) > 0 {
			return fmt.Sprintf("minik-node processes %v", pids)
		}
	}
	return ""
}
