package integration

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// tmuxSession runs one program in a detached tmux session on a private
// server, so the test can type into it and read its screen.
type tmuxSession struct {
	t      *testing.T
	tmux   string
	socket string
	name   string
}

func (s *tmuxSession) run(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, s.tmux, append([]string{"-S", s.socket}, args...)...).CombinedOutput()
	return string(out), err
}

// keys sends tmux key names ("Enter", "BSpace", "q") one at a time, as a
// person types.
func (s *tmuxSession) keys(keys ...string) {
	s.t.Helper()
	for _, k := range keys {
		out, err := s.run("send-keys", "-t", s.name, k)
		require.NoError(s.t, err, "tmux send-keys %s: %s", k, out)
		time.Sleep(50 * time.Millisecond)
	}
}

func (s *tmuxSession) screen() string {
	out, err := s.run("capture-pane", "-p", "-t", s.name)
	if err != nil {
		return "capture-pane failed: " + err.Error() + ": " + out
	}
	return out
}

// waitScreen polls the screen until it shows every want.
func (s *tmuxSession) waitScreen(timeout time.Duration, want ...string) string {
	s.t.Helper()
	return s.waitScreenFunc(timeout, fmt.Sprintf("screen shows %q", want), func(scr string) bool {
		for _, w := range want {
			if !strings.Contains(scr, w) {
				return false
			}
		}
		return true
	})
}

func (s *tmuxSession) waitScreenFunc(timeout time.Duration, what string, ok func(string) bool) string {
	s.t.Helper()
	var scr string
	eventually(s.t, timeout, what, func() (bool, string) {
		scr = s.screen()
		return ok(scr), "\n" + scr
	})
	return scr
}

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// startTmux starts argv with env in a 140x40 tmux session; when it exits
// the shell prints its exit status and keeps the pane for the test to read.
func startTmux(t *testing.T, env []string, argv ...string) *tmuxSession {
	t.Helper()
	tmux, err := exec.LookPath("tmux")
	if err != nil {
		t.Skip("tmux is not installed and the dashboard test drives the real terminal UI through it: apt-get install -y tmux (.ci/run does)")
	}
	// A private server whose socket goes away with the test's folder.
	s := &tmuxSession{t: t, tmux: tmux, socket: filepath.Join(t.TempDir(), "tmux.sock"), name: "dash"}
	t.Cleanup(func() {
		_, _ = s.run("kill-session", "-t", s.name)
		_, _ = s.run("kill-server")
	})
	var cmd []string
	for _, e := range env {
		cmd = append(cmd, shellQuote(e))
	}
	for _, a := range argv {
		cmd = append(cmd, shellQuote(a))
	}
	line := "env " + strings.Join(cmd, " ") + `; echo "minik exited with status $?"; sleep 600`
	out, err := s.run("-f", "/dev/null", "new-session", "-d", "-s", s.name, "-x", "140", "-y", "40", line)
	require.NoError(t, err, "tmux new-session: %s", out)
	return s
}

func TestDashboard(t *testing.T) {
	h := newHarness(t)
	const profile = "dash"
	h.startJSON("-p", profile, "--nodes", "2")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	c := clientFor(t, h.kubeconfig, profile)
	_, err := c.AppsV1().Deployments("default").Create(ctx, deployment("web", 2), metav1.CreateOptions{})
	require.NoError(t, err)
	h.ok(3*time.Minute, "kubectl", "-p", profile, "--", "rollout", "status", "deployment/web", "--timeout=2m")

	t.Run("once prints plain text", func(t *testing.T) {
		// stdout is a pipe here: no escape sequences, colour or not.
		out := h.ok(time.Minute, "dashboard", "-p", profile, "--once")
		assert.NotContains(t, out, "\x1b")
		assert.Contains(t, out, "profile dash · namespace default")
		assert.Contains(t, out, "Nodes  2: 2 Ready, 0 NotReady")
		assert.Contains(t, out, "Pods  2: Running 2")
		// Usage; "?" while metrics.k8s.io has no reading yet; or a banner
		// saying it is not served.
		assert.Regexp(t, `metrics\.k8s\.io not served: CPU/memory columns empty|\d+m/\d+m \d+%|Ready +\? +\?`, out)

		// Any cluster: a context of the user's kubeconfig, all namespaces.
		out = h.ok(time.Minute, "dashboard", "--context", profile, "-A", "--once")
		assert.Contains(t, out, "context dash · all namespaces")
		assert.Contains(t, out, "Nodes  2: 2 Ready, 0 NotReady")
	})

	t.Run("scale in the terminal UI", func(t *testing.T) {
		var env []string
		for _, e := range h.env {
			for _, k := range []string{"MINIK_HOME=", "KUBECONFIG=", "HOME=", "MINIK_NODE_BINARY=", "PATH="} {
				if strings.HasPrefix(e, k) {
					env = append(env, e)
				}
			}
		}
		s := startTmux(t, env, h.minik, "dashboard", "-p", profile)
		s.waitScreen(time.Minute, "minik dashboard", "profile dash", "connected", "Nodes  2: 2 Ready, 0 NotReady")

		s.keys("3")
		s.waitScreen(30*time.Second, "[3 Deployments]", "web", "2/2/2")
		s.keys("/", "w", "e", "b", "Enter")
		s.waitScreen(10*time.Second, "filter: web  (1 of 1)")

		// s asks for a number, enter asks y/n: nothing changes before y.
		s.keys("s")
		s.waitScreen(10*time.Second, "Replicas: 2")
		s.keys("BSpace", "5", "Enter")
		s.waitScreen(10*time.Second, "Scale deployment default/web from 2 to 5 replicas?")
		d, err := c.AppsV1().Deployments("default").Get(ctx, "web", metav1.GetOptions{})
		require.NoError(t, err)
		require.Equal(t, int32(2), *d.Spec.Replicas, "not before the confirmation")
		s.keys("y")
		s.waitScreen(30*time.Second, "scaled default/web to 5")

		d, err = c.AppsV1().Deployments("default").Get(ctx, "web", metav1.GetOptions{})
		require.NoError(t, err)
		require.Equal(t, int32(5), *d.Spec.Replicas)
		// The watch brings the rollout onto the screen: 5 updated, ready, wanted.
		s.waitScreen(2*time.Minute, "5/5/5", "Available")
		eventually(t, time.Minute, "5 ready replicas", func() (bool, string) {
			d, err := c.AppsV1().Deployments("default").Get(ctx, "web", metav1.GetOptions{})
			require.NoError(t, err)
			return d.Status.ReadyReplicas == 5, fmt.Sprintf("%d ready", d.Status.ReadyReplicas)
		})

		// The cluster goes away: the status bar says so; it comes back: the
		// dashboard reconnects by itself.
		h.ok(2*time.Minute, "stop", "-p", profile)
		s.waitScreen(30*time.Second, "disconnected")
		h.ok(6*time.Minute, "start", "-p", profile)
		s.waitScreenFunc(time.Minute, "reconnected", func(scr string) bool {
			return strings.Contains(scr, "connected") && !strings.Contains(scr, "disconnected") && strings.Contains(scr, "web")
		})

		// q quits, restores the terminal and exits 0.
		s.keys("q")
		scr := s.waitScreen(10*time.Second, "minik exited with status 0")
		assert.NotContains(t, scr, "[3 Deployments]", "the alternate screen is gone")
	})
}
