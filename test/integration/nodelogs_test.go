package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

// buildLogShipper builds the example log shipper's image as its README
// says, under a tag of this test's own.
func buildLogShipper(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	example := filepath.Join("..", "..", "examples", "logshipper")
	cmd := exec.Command("go", "build", "-trimpath", "-o", filepath.Join(dir, "logshipper"), "./"+example)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux")
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "build the log shipper: %s", out)
	dockerfile, err := os.ReadFile(filepath.Join(example, "Dockerfile"))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "Dockerfile"), dockerfile, 0o644))
	tag := fmt.Sprintf("logshipper:test-%d", time.Now().UnixNano())
	docker(t, "build", "-q", "-t", tag, dir)
	t.Cleanup(func() { _ = exec.Command("docker", "rmi", "-f", tag).Run() })
	return tag
}

// TestNodeLogsDocker: docker nodes keep their pods' logs in /var/log as
// the kubelet does, a log-shipper DaemonSet that mounts /var/log ships a
// pod's line with its metadata, and the kubelet API serves /logs/ and the
// node log query.
func TestNodeLogsDocker(t *testing.T) {
	requireEngine(t)
	keepNodeImages(t)
	h := newHarness(t)
	h.env = slices.DeleteFunc(h.env, func(e string) bool { return strings.HasPrefix(e, "MINIK_DRIVER=") })
	const profile = "nodelogs"
	removeCluster(t, h, profile)
	image := buildLogShipper(t)
	_, st := h.startJSON("-p", profile, "--driver", "docker", "--nodes", "2")
	require.Len(t, st.Nodes, 2)
	worker := st.Nodes[1].Name
	c := clientFor(t, h.kubeconfig, profile)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	raw := func(path string) string {
		return h.ok(time.Minute, "kubectl", "-p", profile, "--", "get", "--raw", path)
	}

	manifest, err := os.ReadFile(filepath.Join("..", "..", "examples", "logshipper", "logshipper.yaml"))
	require.NoError(t, err)
	file := filepath.Join(t.TempDir(), "logshipper.yaml")
	require.NoError(t, os.WriteFile(file, []byte(strings.ReplaceAll(string(manifest), "logshipper:dev", image)), 0o644))
	h.ok(time.Minute, "kubectl", "-p", profile, "--", "apply", "-f", file)
	h.ok(3*time.Minute, "kubectl", "-p", profile, "--", "-n", "logging", "rollout", "status", "deployment/collector", "--timeout=2m")
	h.ok(3*time.Minute, "kubectl", "-p", profile, "--", "-n", "logging", "rollout", "status", "daemonset/logshipper", "--timeout=2m")

	word := fmt.Sprintf("hello-from-minik-%d", time.Now().UnixNano())
	pod, err := c.CoreV1().Pods("default").Create(ctx, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "talker"},
		Spec: corev1.PodSpec{
			NodeName: worker, RestartPolicy: corev1.RestartPolicyNever, TerminationGracePeriodSeconds: ptr.To[int64](1),
			Containers: []corev1.Container{{Name: "say", Image: image, Args: []string{"say", word}}},
		},
	}, metav1.CreateOptions{})
	require.NoError(t, err)

	t.Run("a line a pod prints reaches the collector with its metadata", func(t *testing.T) {
		type line struct{ Node, Namespace, Pod, Container, Stream, Text string }
		eventually(t, 2*time.Minute, "the line at the collector", func() (bool, string) {
			res := h.run(time.Minute, "kubectl", "-p", profile, "--", "get", "--raw", "/api/v1/namespaces/logging/services/collector:80/proxy/lines?pod=talker")
			var got []line
			if err := json.Unmarshal([]byte(res.stdout), &got); err != nil {
				return false, res.stdout + res.stderr
			}
			want := line{Node: worker, Namespace: "default", Pod: "talker", Container: "say", Stream: "stdout", Text: word}
			return slices.Contains(got, want), res.stdout
		})
	})

	t.Run("the node's /var/log through the kubelet API", func(t *testing.T) {
		listing := raw("/api/v1/nodes/" + worker + "/proxy/logs/containers/")
		require.Regexp(t, `talker_default_say-[0-9a-f]{64}\.log`, listing)
		// Each node holds its own pods' logs only: the worker has its own
		// shipper's, not the control-plane node's shipper's.
		shippers, err := c.CoreV1().Pods("logging").List(ctx, metav1.ListOptions{LabelSelector: "app=logshipper"})
		require.NoError(t, err)
		require.Len(t, shippers.Items, 2)
		for _, p := range shippers.Items {
			link := p.Name + "_logging_shipper-"
			if p.Spec.NodeName == worker {
				require.Contains(t, listing, link)
			} else {
				require.NotContains(t, listing, link)
			}
		}
		logFile := raw(fmt.Sprintf("/api/v1/nodes/%s/proxy/logs/pods/default_talker_%s/say/0.log", worker, pod.UID))
		require.Regexp(t, `^\d{4}-\d\d-\d\dT\S+Z stdout F `+regexp.QuoteMeta(word)+"\n$", logFile)
		require.Contains(t, raw("/api/v1/nodes/"+worker+"/proxy/logs/"), "minik-node.log")

		agent := raw("/api/v1/nodes/" + worker + "/proxy/logs/?query=minik-node&tailLines=3")
		require.Len(t, strings.Split(strings.TrimSpace(agent), "\n"), 3, agent)
		// The control plane runs in the first node's agent: its log is there.
		require.Contains(t, raw("/api/v1/nodes/"+st.Nodes[0].Name+"/proxy/logs/?query=minik-node&pattern=starting+node"), "starting node")
		res := h.run(time.Minute, "kubectl", "-p", profile, "--", "get", "--raw", "/api/v1/nodes/"+worker+"/proxy/logs/?query=sshd")
		require.NotEqual(t, 0, res.code)
		require.Contains(t, res.stderr, "NotFound")
	})

	t.Run("kubectl logs reads the same run", func(t *testing.T) {
		require.Equal(t, word+"\n", h.ok(time.Minute, "kubectl", "-p", profile, "--", "logs", "talker"))
	})

	t.Run("the logs outlive a stop, as a node's disk does, and kubectl logs reads them", func(t *testing.T) {
		h.ok(3*time.Minute, "stop", "-p", profile)
		h.ok(6*time.Minute, "start", "-p", profile)
		path := fmt.Sprintf("/api/v1/nodes/%s/proxy/logs/pods/default_talker_%s/say/0.log", worker, pod.UID)
		eventually(t, time.Minute, "the talker's log after a restart", func() (bool, string) {
			res := h.run(time.Minute, "kubectl", "-p", profile, "--", "get", "--raw", path)
			return res.code == 0 && strings.Contains(res.stdout, word), res.stdout + res.stderr
		})
		// Its container went with the stop; kubectl logs reads the file.
		require.Equal(t, word+"\n", h.ok(time.Minute, "kubectl", "-p", profile, "--", "logs", "talker"))
	})

	t.Run("a deleted pod's logs go with it", func(t *testing.T) {
		require.NoError(t, c.CoreV1().Pods("default").Delete(ctx, "talker", metav1.DeleteOptions{}))
		eventually(t, time.Minute, "the talker's log link removed", func() (bool, string) {
			listing := raw("/api/v1/nodes/" + worker + "/proxy/logs/containers/")
			return !strings.Contains(listing, "talker_default"), listing
		})
	})
}
