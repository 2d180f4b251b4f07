package integration

import (
	"context"
	"fmt"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"
)

func claim(name, class string, size string, modes ...corev1.PersistentVolumeAccessMode) *corev1.PersistentVolumeClaim {
	c := &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes: modes,
			Resources:   corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse(size)}},
		},
	}
	if class != "" {
		c.Spec.StorageClassName = ptr.To(class)
	}
	return c
}

// claimPod runs image (its default command: a server that stays up) on
// node with claim mounted at /data.
func claimPod(name, image, node, claim string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"test": "storage"}},
		Spec: corev1.PodSpec{
			TerminationGracePeriodSeconds: ptr.To[int64](1),
			NodeSelector:                  map[string]string{corev1.LabelHostname: node},
			Containers: []corev1.Container{{
				Name: "app", Image: image,
				VolumeMounts: []corev1.VolumeMount{{Name: "data", MountPath: "/data"}},
			}},
			Volumes: []corev1.Volume{{Name: "data", VolumeSource: corev1.VolumeSource{
				PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: claim},
			}}},
		},
	}
}

func statefulSet(name, image string, replicas int32) *appsv1.StatefulSet {
	labels := map[string]string{"app": name}
	return &appsv1.StatefulSet{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: appsv1.StatefulSetSpec{
			ServiceName: name,
			Replicas:    ptr.To(replicas),
			Selector:    &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					TerminationGracePeriodSeconds: ptr.To[int64](1),
					Containers: []corev1.Container{{
						Name: "app", Image: image,
						VolumeMounts: []corev1.VolumeMount{{Name: "data", MountPath: "/data"}},
					}},
				},
			},
			VolumeClaimTemplates: []corev1.PersistentVolumeClaim{*claim("data", "", "1Gi", corev1.ReadWriteOnce)},
		},
	}
}

func waitPhase(t *testing.T, ctx context.Context, c kubernetes.Interface, name string, phase corev1.PodPhase) *corev1.Pod {
	t.Helper()
	var pod *corev1.Pod
	eventually(t, 2*time.Minute, "pod "+name+" "+string(phase), func() (bool, string) {
		p, err := c.CoreV1().Pods("default").Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		pod = p
		return p.Status.Phase == phase, fmt.Sprintf("%s %+v", p.Status.Phase, p.Status.Conditions)
	})
	return pod
}

// eventFor waits for an event on the object (in namespace default) whose
// reason and message contain what is given.
func eventFor(t *testing.T, ctx context.Context, c kubernetes.Interface, kind, name, reason, message string) {
	t.Helper()
	eventForIn(t, ctx, c, "default", kind, name, reason, message)
}

func eventForIn(t *testing.T, ctx context.Context, c kubernetes.Interface, namespace, kind, name, reason, message string) {
	t.Helper()
	eventually(t, time.Minute, fmt.Sprintf("%s event on %s %s", reason, kind, name), func() (bool, string) {
		evs, err := c.CoreV1().Events(namespace).List(ctx, metav1.ListOptions{
			FieldSelector: "involvedObject.kind=" + kind + ",involvedObject.name=" + name,
		})
		if err != nil {
			return false, err.Error()
		}
		var seen []string
		for _, e := range evs.Items {
			if e.Reason == reason && strings.Contains(e.Message, message) {
				return true, ""
			}
			seen = append(seen, e.Reason+": "+e.Message)
		}
		return false, strings.Join(seen, "\n")
	})
}

func boundClaim(t *testing.T, ctx context.Context, c kubernetes.Interface, name string) *corev1.PersistentVolumeClaim {
	t.Helper()
	var pvc *corev1.PersistentVolumeClaim
	eventually(t, time.Minute, "claim "+name+" bound", func() (bool, string) {
		p, err := c.CoreV1().PersistentVolumeClaims("default").Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		pvc = p
		return p.Status.Phase == corev1.ClaimBound, string(p.Status.Phase)
	})
	return pvc
}

// What every driver shares: the default class, binding, expansion, the
// errors a user sees, and the protection of a claim in use.
func checkStorageBasics(t *testing.T, ctx context.Context, c kubernetes.Interface, image string, nodes []string) {
	sc, err := c.StorageV1().StorageClasses().Get(ctx, "standard", metav1.GetOptions{})
	require.NoError(t, err)
	require.Equal(t, "true", sc.Annotations["storageclass.kubernetes.io/is-default-class"])
	require.Equal(t, storagev1.VolumeBindingWaitForFirstConsumer, *sc.VolumeBindingMode)
	require.True(t, *sc.AllowVolumeExpansion)
	require.Equal(t, corev1.PersistentVolumeReclaimDelete, *sc.ReclaimPolicy)

	// A claim waits for its first pod, then binds.
	_, err = c.CoreV1().PersistentVolumeClaims("default").Create(ctx, claim("grow", "", "1Gi", corev1.ReadWriteOnce), metav1.CreateOptions{})
	require.NoError(t, err)
	eventFor(t, ctx, c, "PersistentVolumeClaim", "grow", "WaitForFirstConsumer", "waiting for first consumer")
	_, err = c.CoreV1().Pods("default").Create(ctx, claimPod("grow", image, nodes[len(nodes)-1], "grow"), metav1.CreateOptions{})
	require.NoError(t, err)
	waitPhase(t, ctx, c, "grow", corev1.PodRunning)
	pvc := boundClaim(t, ctx, c, "grow")
	require.Equal(t, "standard", *pvc.Spec.StorageClassName, "the default class")

	// Expansion: the claim asks for more and gets it.
	pvc.Spec.Resources.Requests[corev1.ResourceStorage] = resource.MustParse("2Gi")
	_, err = c.CoreV1().PersistentVolumeClaims("default").Update(ctx, pvc, metav1.UpdateOptions{})
	require.NoError(t, err)
	eventually(t, time.Minute, "claim grown to 2Gi", func() (bool, string) {
		p, err := c.CoreV1().PersistentVolumeClaims("default").Get(ctx, "grow", metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		q := p.Status.Capacity[corev1.ResourceStorage]
		return q.String() == "2Gi", q.String()
	})
	pv, err := c.CoreV1().PersistentVolumes().Get(ctx, pvc.Spec.VolumeName, metav1.GetOptions{})
	require.NoError(t, err)
	q := pv.Spec.Capacity[corev1.ResourceStorage]
	require.Equal(t, "2Gi", q.String())

	// A claim in use is protected: deleting it waits for its pod.
	require.NoError(t, c.CoreV1().PersistentVolumeClaims("default").Delete(ctx, "grow", metav1.DeleteOptions{}))
	time.Sleep(time.Second)
	held, err := c.CoreV1().PersistentVolumeClaims("default").Get(ctx, "grow", metav1.GetOptions{})
	require.NoError(t, err, "the claim stays while its pod runs")
	require.NotNil(t, held.DeletionTimestamp)
	require.Contains(t, held.Finalizers, "kubernetes.io/pvc-protection")
	require.NoError(t, c.CoreV1().Pods("default").Delete(ctx, "grow", metav1.DeleteOptions{}))
	eventually(t, time.Minute, "claim and volume gone once the pod is", func() (bool, string) {
		_, errClaim := c.CoreV1().PersistentVolumeClaims("default").Get(ctx, "grow", metav1.GetOptions{})
		_, errPV := c.CoreV1().PersistentVolumes().Get(ctx, pv.Name, metav1.GetOptions{})
		return errClaim != nil && errPV != nil, fmt.Sprint(errClaim, errPV)
	})

	// Bad input: a class that does not exist, a size the disk lacks.
	for _, bad := range []struct{ claim, class, size, reason, message string }{
		{"no-class", "nope", "1Gi", "ProvisioningFailed", `storageclass.storage.k8s.io "nope" not found`},
		{"too-big", "", "100Pi", "ProvisioningFailed", "not enough disk for 100Pi"},
	} {
		_, err := c.CoreV1().PersistentVolumeClaims("default").Create(ctx, claim(bad.claim, bad.class, bad.size, corev1.ReadWriteOnce), metav1.CreateOptions{})
		require.NoError(t, err)
		_, err = c.CoreV1().Pods("default").Create(ctx, claimPod(bad.claim, image, nodes[0], bad.claim), metav1.CreateOptions{})
		require.NoError(t, err)
		eventFor(t, ctx, c, "PersistentVolumeClaim", bad.claim, bad.reason, bad.message)
		p, err := c.CoreV1().PersistentVolumeClaims("default").Get(ctx, bad.claim, metav1.GetOptions{})
		require.NoError(t, err)
		require.Equal(t, corev1.ClaimPending, p.Status.Phase)
		require.NoError(t, c.CoreV1().Pods("default").Delete(ctx, bad.claim, metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)}))
		require.NoError(t, c.CoreV1().PersistentVolumeClaims("default").Delete(ctx, bad.claim, metav1.DeleteOptions{}))
	}
	pvs, err := c.CoreV1().PersistentVolumes().List(ctx, metav1.ListOptions{})
	require.NoError(t, err)
	require.Empty(t, pvs.Items, "nothing half-made")
}

func TestStorageSim(t *testing.T) {
	h := newHarness(t)
	const profile = "vol"
	h.ok(3*time.Minute, "start", "-p", profile, "--nodes", "3")
	c := clientFor(t, h.kubeconfig, profile)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	nodes := []string{profile, profile + "-m02", profile + "-m03"}

	t.Run("basics", func(t *testing.T) { checkStorageBasics(t, ctx, c, "busybox", nodes) })

	t.Run("statefulset volumes belong to the node of their pod", func(t *testing.T) {
		_, err := c.AppsV1().StatefulSets("default").Create(ctx, statefulSet("db", "busybox", 3), metav1.CreateOptions{})
		require.NoError(t, err)
		h.ok(3*time.Minute, "kubectl", "-p", profile, "--", "rollout", "status", "statefulset/db", "--timeout=2m")
		home := map[string]string{}
		for i := range 3 {
			name := fmt.Sprintf("db-%d", i)
			pod := waitPhase(t, ctx, c, name, corev1.PodRunning)
			pvc := boundClaim(t, ctx, c, "data-"+name)
			pv, err := c.CoreV1().PersistentVolumes().Get(ctx, pvc.Spec.VolumeName, metav1.GetOptions{})
			require.NoError(t, err)
			require.NotNil(t, pv.Spec.NodeAffinity, "a simulated volume lives on one node")
			require.Equal(t, []string{pod.Spec.NodeName}, pv.Spec.NodeAffinity.Required.NodeSelectorTerms[0].MatchExpressions[0].Values)
			home[name] = pod.Spec.NodeName
		}
		// A deleted pod comes back on the node its volume lives on.
		require.NoError(t, c.CoreV1().Pods("default").Delete(ctx, "db-1", metav1.DeleteOptions{}))
		eventually(t, 2*time.Minute, "db-1 back on its node", func() (bool, string) {
			p, err := c.CoreV1().Pods("default").Get(ctx, "db-1", metav1.GetOptions{})
			if err != nil || p.DeletionTimestamp != nil {
				return false, fmt.Sprint(err)
			}
			return p.Status.Phase == corev1.PodRunning && p.Spec.NodeName == home["db-1"], p.Spec.NodeName
		})
		out := h.ok(time.Minute, "kubectl", "-p", profile, "--", "get", "pv,pvc,sc")
		require.Contains(t, out, "data-db-0")
		require.Contains(t, out, "standard (default)")
	})
}

func TestStorageDocker(t *testing.T) {
	requireEngine(t)
	keepNodeImages(t)
	h := newHarness(t)
	h.env = slices.DeleteFunc(h.env, func(e string) bool { return strings.HasPrefix(e, "MINIK_DRIVER=") })
	const profile = "dvol"
	removeCluster(t, h, profile)
	image := buildApp(t)
	h.ok(3*time.Minute, "start", "-p", profile, "--driver", "docker", "--nodes", "3")
	c := clientFor(t, h.kubeconfig, profile)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	nodes := []string{profile, profile + "-m02", profile + "-m03"}
	inPod := func(pod string, args ...string) result {
		return h.run(time.Minute, append([]string{"kubectl", "-p", profile, "--", "exec", pod, "--", "/app"}, args...)...)
	}
	deletePods := func(t *testing.T, names ...string) {
		for _, n := range names {
			require.NoError(t, c.CoreV1().Pods("default").Delete(ctx, n, metav1.DeleteOptions{}))
		}
		eventually(t, time.Minute, "pods gone", func() (bool, string) {
			pods, err := c.CoreV1().Pods("default").List(ctx, metav1.ListOptions{LabelSelector: "test=storage"})
			return err == nil && len(pods.Items) == 0, fmt.Sprint(err)
		})
	}

	t.Run("basics", func(t *testing.T) { checkStorageBasics(t, ctx, c, image, nodes) })

	t.Run("ReadWriteMany across nodes", func(t *testing.T) {
		_, err := c.CoreV1().PersistentVolumeClaims("default").Create(ctx, claim("shared", "", "1Gi", corev1.ReadWriteMany), metav1.CreateOptions{})
		require.NoError(t, err)
		for i, n := range nodes[1:] {
			_, err := c.CoreV1().Pods("default").Create(ctx, claimPod(fmt.Sprintf("rwx-%d", i), image, n, "shared"), metav1.CreateOptions{})
			require.NoError(t, err)
		}
		waitPhase(t, ctx, c, "rwx-0", corev1.PodRunning)
		waitPhase(t, ctx, c, "rwx-1", corev1.PodRunning)
		r := inPod("rwx-0", "write", "/data/greeting", "written on "+nodes[1])
		require.Equal(t, 0, r.code, r.stderr)
		r = inPod("rwx-1", "cat", "/data/greeting")
		require.Equal(t, 0, r.code, r.stderr)
		require.Equal(t, "written on "+nodes[1], r.stdout, "a pod on another node reads what the first wrote")
		deletePods(t, "rwx-0", "rwx-1")
	})

	t.Run("ReadWriteOnce and ReadWriteOncePod", func(t *testing.T) {
		_, err := c.CoreV1().PersistentVolumeClaims("default").Create(ctx, claim("once", "", "1Gi", corev1.ReadWriteOnce), metav1.CreateOptions{})
		require.NoError(t, err)
		_, err = c.CoreV1().Pods("default").Create(ctx, claimPod("rwo-a", image, nodes[1], "once"), metav1.CreateOptions{})
		require.NoError(t, err)
		waitPhase(t, ctx, c, "rwo-a", corev1.PodRunning)
		// Another pod on the same node may share it; one on another node may not.
		_, err = c.CoreV1().Pods("default").Create(ctx, claimPod("rwo-b", image, nodes[1], "once"), metav1.CreateOptions{})
		require.NoError(t, err)
		waitPhase(t, ctx, c, "rwo-b", corev1.PodRunning)
		_, err = c.CoreV1().Pods("default").Create(ctx, claimPod("rwo-c", image, nodes[2], "once"), metav1.CreateOptions{})
		require.NoError(t, err)
		eventFor(t, ctx, c, "Pod", "rwo-c", "FailedAttachVolume", "Volume is already used by pod(s) rwo-")
		p, err := c.CoreV1().Pods("default").Get(ctx, "rwo-c", metav1.GetOptions{})
		require.NoError(t, err)
		require.Equal(t, corev1.PodPending, p.Status.Phase)

		_, err = c.CoreV1().PersistentVolumeClaims("default").Create(ctx, claim("one-pod", "", "1Gi", corev1.ReadWriteOncePod), metav1.CreateOptions{})
		require.NoError(t, err)
		_, err = c.CoreV1().Pods("default").Create(ctx, claimPod("rwop-a", image, nodes[1], "one-pod"), metav1.CreateOptions{})
		require.NoError(t, err)
		waitPhase(t, ctx, c, "rwop-a", corev1.PodRunning)
		_, err = c.CoreV1().Pods("default").Create(ctx, claimPod("rwop-b", image, nodes[1], "one-pod"), metav1.CreateOptions{})
		require.NoError(t, err)
		eventFor(t, ctx, c, "Pod", "rwop-b", "FailedScheduling", "ReadWriteOncePod")
		deletePods(t, "rwo-a", "rwo-b", "rwo-c", "rwop-a", "rwop-b")
	})

	t.Run("statefulset data survives pods, nodes and the cluster", func(t *testing.T) {
		_, err := c.AppsV1().StatefulSets("default").Create(ctx, statefulSet("db", image, 3), metav1.CreateOptions{})
		require.NoError(t, err)
		h.ok(3*time.Minute, "kubectl", "-p", profile, "--", "rollout", "status", "statefulset/db", "--timeout=2m")
		for i := range 3 {
			r := inPod(fmt.Sprintf("db-%d", i), "write", "/data/id", fmt.Sprintf("I am db-%d", i))
			require.Equal(t, 0, r.code, r.stderr)
		}
		check := func(when string) {
			h.ok(3*time.Minute, "kubectl", "-p", profile, "--", "rollout", "status", "statefulset/db", "--timeout=2m")
			for i := range 3 {
				name := fmt.Sprintf("db-%d", i)
				// A restarted node starts its pods' containers afresh.
				eventually(t, 2*time.Minute, when+": "+name+" reads its data", func() (bool, string) {
					r := inPod(name, "cat", "/data/id")
					return r.code == 0 && r.stdout == "I am "+name, r.stdout + r.stderr
				})
			}
		}
		require.NoError(t, c.CoreV1().Pods("default").Delete(ctx, "db-0", metav1.DeleteOptions{}))
		eventually(t, time.Minute, "db-0 replaced", func() (bool, string) {
			p, err := c.CoreV1().Pods("default").Get(ctx, "db-0", metav1.GetOptions{})
			return err == nil && p.DeletionTimestamp == nil && p.Status.Phase == corev1.PodRunning, fmt.Sprint(err)
		})
		check("after a pod was deleted")
		h.ok(2*time.Minute, "node", "stop", "-p", profile, nodes[2])
		h.ok(2*time.Minute, "node", "start", "-p", profile, nodes[2])
		check("after a node stop and start")
		h.ok(2*time.Minute, "stop", "-p", profile)
		h.ok(3*time.Minute, "start", "-p", profile)
		c = clientFor(t, h.kubeconfig, profile)
		check("after the cluster's stop and start")
	})

	t.Run("sub-paths, memory, hostPath files, read-only and fsGroup", func(t *testing.T) {
		_, err := c.CoreV1().PersistentVolumeClaims("default").Create(ctx, claim("features", "", "1Gi", corev1.ReadWriteOnce), metav1.CreateOptions{})
		require.NoError(t, err)
		pod := claimPod("features", image, nodes[1], "features")
		pod.Spec.SecurityContext = &corev1.PodSecurityContext{FSGroup: ptr.To[int64](2000)}
		ctr := &pod.Spec.Containers[0]
		ctr.Env = []corev1.EnvVar{{Name: "POD", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}}}
		ctr.VolumeMounts = append(ctr.VolumeMounts,
			corev1.VolumeMount{Name: "data", MountPath: "/sub", SubPath: "a/b"},
			corev1.VolumeMount{Name: "data", MountPath: "/expr", SubPathExpr: "pods/$(POD)"},
			corev1.VolumeMount{Name: "data", MountPath: "/ro", ReadOnly: true},
			corev1.VolumeMount{Name: "mem", MountPath: "/mem"},
			corev1.VolumeMount{Name: "conf", MountPath: "/etc/app.conf"},
		)
		pod.Spec.Volumes = append(pod.Spec.Volumes,
			corev1.Volume{Name: "mem", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{
				Medium: corev1.StorageMediumMemory, SizeLimit: ptr.To(resource.MustParse("16Mi"))}}},
			corev1.Volume{Name: "conf", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{
				Path: "/etc/minik-test/app.conf", Type: ptr.To(corev1.HostPathFileOrCreate)}}},
		)
		_, err = c.CoreV1().Pods("default").Create(ctx, pod, metav1.CreateOptions{})
		require.NoError(t, err)
		waitPhase(t, ctx, c, "features", corev1.PodRunning)
		ok := func(args ...string) string {
			r := inPod("features", args...)
			require.Equal(t, 0, r.code, "%v: %s", args, r.stderr)
			return r.stdout
		}
		ok("write", "/sub/f", "in a sub-path")
		require.Equal(t, "in a sub-path", ok("cat", "/data/a/b/f"))
		ok("write", "/expr/f", "per pod")
		require.Equal(t, "per pod", ok("cat", "/data/pods/features/f"))
		require.Equal(t, "in a sub-path", ok("cat", "/ro/a/b/f"))
		require.NotEqual(t, 0, inPod("features", "write", "/ro/x", "no").code, "a read-only mount refuses writes")
		require.Equal(t, "tmpfs\n", ok("fstype", "/mem"))
		require.Contains(t, ok("stat", "/data"), "gid=2000", "fsGroup owns the claim's volume")
		require.Contains(t, ok("stat", "/etc/app.conf"), "-rw-r--r--", "FileOrCreate made an empty file")
		deletePods(t, "features")
	})

	t.Run("reclaim policies", func(t *testing.T) {
		_, err := c.StorageV1().StorageClasses().Create(ctx, &storagev1.StorageClass{
			ObjectMeta:        metav1.ObjectMeta{Name: "keep"},
			Provisioner:       "volumes.minik.dev",
			ReclaimPolicy:     ptr.To(corev1.PersistentVolumeReclaimRetain),
			VolumeBindingMode: ptr.To(storagev1.VolumeBindingWaitForFirstConsumer),
		}, metav1.CreateOptions{})
		require.NoError(t, err)
		volumes := map[string]string{}
		for _, class := range []string{"standard", "keep"} {
			name := "reclaim-" + class
			_, err := c.CoreV1().PersistentVolumeClaims("default").Create(ctx, claim(name, class, "1Gi", corev1.ReadWriteOnce), metav1.CreateOptions{})
			require.NoError(t, err)
			_, err = c.CoreV1().Pods("default").Create(ctx, claimPod(name, image, nodes[0], name), metav1.CreateOptions{})
			require.NoError(t, err)
			waitPhase(t, ctx, c, name, corev1.PodRunning)
			pvc := boundClaim(t, ctx, c, name)
			pv, err := c.CoreV1().PersistentVolumes().Get(ctx, pvc.Spec.VolumeName, metav1.GetOptions{})
			require.NoError(t, err)
			volumes[class] = pv.Spec.CSI.VolumeHandle
			require.Equal(t, volumes[class], docker(t, "volume", "inspect", "-f", "{{.Name}}", volumes[class]), "an engine volume backs it")
		}
		deletePods(t, "reclaim-standard", "reclaim-keep")
		for _, class := range []string{"standard", "keep"} {
			require.NoError(t, c.CoreV1().PersistentVolumeClaims("default").Delete(ctx, "reclaim-"+class, metav1.DeleteOptions{}))
		}
		eventually(t, time.Minute, "Delete removes the data", func() (bool, string) {
			out, err := exec.Command("docker", "volume", "inspect", volumes["standard"]).CombinedOutput()
			return err != nil, string(out)
		})
		time.Sleep(2 * time.Second)
		require.Equal(t, volumes["keep"], docker(t, "volume", "inspect", "-f", "{{.Name}}", volumes["keep"]), "Retain keeps it")
	})

	h.ok(2*time.Minute, "delete", "-p", profile)
	require.Empty(t, labelled(t, profile), "minik delete removes every volume too")
}
