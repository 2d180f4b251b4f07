package tui

import (
	"errors"
	"fmt"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"minik.dev/minik/tui/kube"
)

func getDeployment(t *testing.T, f *fakeCluster, name string) *appsv1.Deployment {
	t.Helper()
	d, err := f.kc.AppsV1().Deployments("default").Get(t.Context(), name, metav1.GetOptions{})
	require.NoError(t, err)
	return d
}

// selectRow filters a list view down to one row so the tests need not know
// the sort order.
func selectRow(t *testing.T, m *Model, tab, filter string) {
	t.Helper()
	press(t, m, tab, "/")
	press(t, m, strings.Split(filter, "")...)
	press(t, m, "enter")
}

func TestTabsAndNavigation(t *testing.T) {
	f := newFakeCluster(t, "default", clusterObjects()...)
	m := newModel(t, f, testOptions("default"))
	assert.Contains(t, screen(m), "[1 Overview]")
	press(t, m, "tab")
	assert.Contains(t, screen(m), "[2 Pods]")
	press(t, m, "shift+tab", "shift+tab")
	assert.Contains(t, screen(m), "[6 Events]")
	press(t, m, "3")
	assert.Contains(t, screen(m), "[3 Deployments]")

	// j/k/g/G move the selection.
	sel := func() string { return m.tabs[2].(*deploymentsView).t.selected().key }
	assert.Equal(t, "default/api", sel())
	press(t, m, "j")
	assert.Equal(t, "default/web", sel())
	press(t, m, "k")
	assert.Equal(t, "default/api", sel())
	press(t, m, "G")
	assert.Equal(t, "default/web", sel())
	press(t, m, "g")
	assert.Equal(t, "default/api", sel())

	// enter drills into the history, esc comes back, tab leaves it.
	press(t, m, "G", "enter")
	assert.Contains(t, screen(m), "› History default/web")
	press(t, m, "esc")
	assert.NotContains(t, screen(m), "History")
	press(t, m, "enter", "tab")
	assert.Empty(t, m.stack, "switching views closes drill-ins")

	// q quits.
	_, cmd := m.Update(keyMsg("q"))
	require.NotNil(t, cmd)
	assert.IsType(t, tea.QuitMsg{}, cmd())
	_, cmd = m.Update(keyMsg("ctrl+c"))
	assert.IsType(t, tea.QuitMsg{}, cmd())
}

func TestPodsViewSortFilterAndLiveUpdates(t *testing.T) {
	f := newFakeCluster(t, "default", clusterObjects()...)
	m := newModel(t, f, testOptions("default"))
	press(t, m, "2")
	pv := m.tabs[1].(*podsView)
	names := func() []string {
		var out []string
		for _, r := range pv.t.rows {
			out = append(out, r.cells[0])
		}
		return out
	}
	assert.Equal(t, []string{"api-a1111-yyyyy", "api-a2222-xxxxx", "batch-zzzzz", "pending-ppppp",
		"web-w3333-aaaaa", "web-w3333-bbbbb", "web-w3333-ccccc"}, names(), "namespace default only, by name")
	assert.Contains(t, screen(m), "CrashLoopBackOff")

	// Sort by RESTARTS (3 columns right), highest first.
	press(t, m, "l", "l", "l", "o")
	assert.Equal(t, "api-a2222-xxxxx", names()[0])
	assert.Equal(t, "web-w3333-ccccc", names()[1])

	// `/` filters; while typing, q and digits are text, not commands.
	press(t, m, "/", "q", "1")
	assert.True(t, pv.capturing())
	assert.Equal(t, "q1", pv.t.filter)
	press(t, m, "backspace", "backspace", "b", "a", "t", "enter")
	assert.Equal(t, []string{"batch-zzzzz"}, names())
	assert.Contains(t, screen(m), "filter: bat  (1 of 7)")
	press(t, m, "esc")
	assert.Len(t, names(), 7, "esc clears the filter")

	// The selection follows its pod when rows move.
	press(t, m, "g", "j")
	selected := pv.t.selected().key
	_, err := f.kc.CoreV1().Pods("default").Create(t.Context(), pod("default", "aaa-first", "minik", corev1.PodRunning, true, 9, time.Minute), metav1.CreateOptions{})
	require.NoError(t, err)
	require.Eventually(t, func() bool { return len(f.Snapshot().Pods) == 8 }, 5*time.Second, 10*time.Millisecond)
	m.Update(snapshotMsg{snap: f.Snapshot()})
	assert.Contains(t, names(), "aaa-first")
	assert.Equal(t, selected, pv.t.selected().key)
}

func TestScaleAction(t *testing.T) {
	f := newFakeCluster(t, "default", clusterObjects()...)
	m := newModel(t, f, testOptions("default"))
	selectRow(t, m, "3", "web")

	// s opens a number dialog; enter moves to y/n; n cancels.
	press(t, m, "s")
	require.NotNil(t, m.dialog)
	assert.Contains(t, screen(m), "Replicas: 3▌")
	press(t, m, "backspace", "5", "enter")
	assert.Contains(t, screen(m), "Scale deployment default/web from 3 to 5 replicas?")
	press(t, m, "n")
	assert.Nil(t, m.dialog)
	assert.Equal(t, int32(3), *getDeployment(t, f, "web").Spec.Replicas, "cancelled: nothing changed")

	// Bad input is refused in the dialog.
	press(t, m, "s", "backspace", "enter")
	assert.Contains(t, screen(m), "enter a whole number")
	press(t, m, "x") // not a digit: ignored
	press(t, m, "7", "enter", "y")
	assert.Nil(t, m.dialog)
	assert.Equal(t, int32(7), *getDeployment(t, f, "web").Spec.Replicas)
	assert.Contains(t, screen(m), "scaled default/web to 7")
}

func TestRestartAction(t *testing.T) {
	f := newFakeCluster(t, "default", clusterObjects()...)
	m := newModel(t, f, testOptions("default"))
	selectRow(t, m, "3", "web")
	press(t, m, "r")
	assert.Contains(t, screen(m), "Restart deployment default/web")
	assert.Empty(t, getDeployment(t, f, "web").Spec.Template.Annotations, "asks first")
	press(t, m, "y")
	assert.Equal(t, now.Format(time.RFC3339), getDeployment(t, f, "web").Spec.Template.Annotations[kube.RestartedAtAnnotation])
	assert.Contains(t, screen(m), "restarted default/web")
}

func TestUndoFromHistory(t *testing.T) {
	f := newFakeCluster(t, "default", clusterObjects()...)
	m := newModel(t, f, testOptions("default"))
	selectRow(t, m, "3", "web")
	press(t, m, "enter")
	hv := m.top().(*historyView)
	assert.Equal(t, "web-w3333", hv.t.selected().key, "newest revision first")

	press(t, m, "u")
	assert.Nil(t, m.dialog, "the current revision is not an undo target")
	assert.Contains(t, screen(m), "revision 3 is the current one")

	press(t, m, "G", "u")
	assert.Contains(t, screen(m), "Roll deployment default/web back to revision 1?")
	press(t, m, "y")
	d := getDeployment(t, f, "web")
	assert.Equal(t, "registry.invalid/web:v1", d.Spec.Template.Spec.Containers[0].Image)
	assert.NotContains(t, d.Spec.Template.Labels, "pod-template-hash")
	assert.Equal(t, "first release", d.Annotations[kube.ChangeCauseAnnotation])
	assert.Equal(t, "3", d.Annotations[kube.RevisionAnnotation], "the controller's annotations stay")
	assert.Contains(t, screen(m), "rolled default/web back to revision 1")
}

func TestUndoFromDeploymentsGoesToPreviousRevision(t *testing.T) {
	f := newFakeCluster(t, "default", clusterObjects()...)
	m := newModel(t, f, testOptions("default"))
	selectRow(t, m, "3", "web")
	press(t, m, "u")
	assert.Contains(t, screen(m), "back to revision 2?")
	press(t, m, "y")
	assert.Equal(t, "registry.invalid/web:v2", getDeployment(t, f, "web").Spec.Template.Spec.Containers[0].Image)
}

func TestDeletePodAction(t *testing.T) {
	f := newFakeCluster(t, "default", clusterObjects()...)
	m := newModel(t, f, testOptions("default"))
	selectRow(t, m, "2", "batch")
	// One key never deletes: x asks, and neither enter nor another x confirms.
	press(t, m, "x", "enter", "x")
	_, err := f.kc.CoreV1().Pods("default").Get(t.Context(), "batch-zzzzz", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Contains(t, screen(m), "Delete pod default/batch-zzzzz?")
	press(t, m, "y")
	_, err = f.kc.CoreV1().Pods("default").Get(t.Context(), "batch-zzzzz", metav1.GetOptions{})
	assert.True(t, apierrors.IsNotFound(err), "deleted: %v", err)
	assert.Contains(t, screen(m), "deleted pod default/batch-zzzzz")
}

func TestNodeOpensItsPods(t *testing.T) {
	f := newFakeCluster(t, "default", clusterObjects()...)
	m := newModel(t, f, testOptions("default"))
	selectRow(t, m, "4", "m02")
	press(t, m, "enter")
	out := screen(m)
	assert.Contains(t, out, "[2 Pods]")
	assert.Contains(t, out, "filter: minik-m02  (3 of 7)")
	assert.NotContains(t, out, "web-w3333-aaaaa", "that one runs on minik")
}

func TestCordonUncordon(t *testing.T) {
	f := newFakeCluster(t, "default", clusterObjects()...)
	m := newModel(t, f, testOptions("default"))
	selectRow(t, m, "4", "m02")
	press(t, m, "c")
	assert.Contains(t, screen(m), "Cordon node minik-m02")
	press(t, m, "y")
	n, err := f.kc.CoreV1().Nodes().Get(t.Context(), "minik-m02", metav1.GetOptions{})
	require.NoError(t, err)
	assert.True(t, n.Spec.Unschedulable)

	require.Eventually(t, func() bool {
		for _, n := range f.Snapshot().Nodes {
			if n.Name == "minik-m02" {
				return n.Spec.Unschedulable
			}
		}
		return false
	}, 5*time.Second, 10*time.Millisecond)
	m.Update(snapshotMsg{snap: f.Snapshot()})
	assert.Contains(t, screen(m), "Ready,SchedulingDisabled")
	press(t, m, "c")
	assert.Contains(t, screen(m), "Uncordon node minik-m02?")
	press(t, m, "y")
	n, err = f.kc.CoreV1().Nodes().Get(t.Context(), "minik-m02", metav1.GetOptions{})
	require.NoError(t, err)
	assert.False(t, n.Spec.Unschedulable)
}

func TestActionErrorIsShown(t *testing.T) {
	f := newFakeCluster(t, "default", clusterObjects()...)
	m := newModel(t, f, testOptions("default"))
	selectRow(t, m, "3", "web")
	require.NoError(t, f.kc.AppsV1().Deployments("default").Delete(t.Context(), "web", metav1.DeleteOptions{}))
	press(t, m, "s", "enter", "y")
	assert.Contains(t, screen(m), `scale deployment default/web to 3: deployments.apps "web" not found`)
}

func TestReadOnly(t *testing.T) {
	f := newFakeCluster(t, "default", clusterObjects()...)
	opts := testOptions("default")
	opts.ReadOnly = true
	m := newModel(t, f, opts)
	assert.Contains(t, screen(m), "read-only")
	selectRow(t, m, "3", "web")
	press(t, m, "s", "r", "u")
	assert.Nil(t, m.dialog)
	selectRow(t, m, "2", "batch")
	press(t, m, "x")
	selectRow(t, m, "4", "m02")
	press(t, m, "c")
	assert.Nil(t, m.dialog)
	// Even a request that got through is refused.
	m.Update(requestMsg{a: action{kind: actScale, ns: "default", name: "web"}})
	assert.Nil(t, m.dialog)
	assert.Equal(t, int32(3), *getDeployment(t, f, "web").Spec.Replicas)

	assert.Contains(t, screen(m), "read-only: scale deployment is disabled")

	press(t, m, "?")
	help := screen(m)
	for _, b := range []string{"scale deployment", "rollout restart", "undo rollout", "delete pod", "cordon"} {
		assert.NotContains(t, help, "  "+b, "help hides disabled actions")
	}
}

func TestHelpListsEveryBinding(t *testing.T) {
	k := DefaultKeyMap(false)
	listed := map[string]bool{}
	for _, g := range k.FullHelp() {
		for _, b := range g {
			listed[b.Help().Key+" "+b.Help().Desc] = true
		}
	}
	v := reflect.ValueOf(k)
	for i := range v.NumField() {
		b, ok := v.Field(i).Interface().(key.Binding)
		require.True(t, ok)
		assert.True(t, listed[b.Help().Key+" "+b.Help().Desc], "binding %s is not in the help", v.Type().Field(i).Name)
	}
	assert.Len(t, helpGroupTitles, len(k.FullHelp()))

	f := newFakeCluster(t, "default", clusterObjects()...)
	m := newModel(t, f, testOptions("default"))
	m.Update(tea.WindowSizeMsg{Width: 120, Height: 40})
	press(t, m, "?")
	out := screen(m)
	for _, g := range k.FullHelp() {
		for _, b := range g {
			assert.Contains(t, out, b.Help().Desc)
		}
	}
	press(t, m, "j")
	assert.True(t, m.showHelp, "keys do nothing under the help")
	press(t, m, "?")
	assert.False(t, m.showHelp)
}

func TestLogsView(t *testing.T) {
	f := newFakeCluster(t, "default", clusterObjects()...)
	m := newModel(t, f, testOptions("default"))
	selectRow(t, m, "2", "web-w3333-aaaaa")
	press(t, m, "enter")
	lv, ok := m.top().(*logsView)
	require.True(t, ok)
	assert.Contains(t, screen(m), "› Logs default/web-w3333-aaaaa [main]")
	assert.Contains(t, screen(m), "fake logs", "the fake clientset's log body")
	assert.Contains(t, screen(m), "stream ended")

	// A stale stream's lines are ignored; the current one's are shown.
	m.Update(logLinesMsg{id: lv.id + 100, lines: []string{"stale"}})
	assert.NotContains(t, screen(m), "stale")
	ch := make(chan logLine)
	close(ch)
	lines := make([]string, 40)
	for i := range lines {
		lines[i] = fmt.Sprintf("line %02d \x1b[31mred\x1b[0m\tend", i)
	}
	m.Update(logLinesMsg{id: lv.id, ch: ch, lines: lines})
	out := screen(m)
	assert.Contains(t, out, "line 39 red    end", "follows the end, escapes stripped, tabs expanded")
	assert.NotContains(t, out, "line 00")

	press(t, m, "f", "g")
	assert.Contains(t, screen(m), "line 00")
	assert.Contains(t, screen(m), "follow off")
	press(t, m, "G")
	assert.Contains(t, screen(m), "follow on")
	press(t, m, "esc")
	assert.Nil(t, lv.cancel, "closing the view stops its stream")
}

func TestRingIsBounded(t *testing.T) {
	r := newRing(5000)
	for i := range 12345 {
		r.push(fmt.Sprint(i))
	}
	assert.Equal(t, 5000, r.len())
	assert.Equal(t, "7345", r.at(0))
	assert.Equal(t, "12344", r.at(4999))
	r.reset()
	assert.Equal(t, 0, r.len())
}

func TestDescribeShowsYAMLAndEvents(t *testing.T) {
	f := newFakeCluster(t, "default", clusterObjects()...)
	m := newModel(t, f, testOptions("default"))
	m.Update(tea.WindowSizeMsg{Width: 120, Height: 200})
	selectRow(t, m, "2", "api-a2222")
	press(t, m, "d")
	out := screen(m)
	assert.Contains(t, out, "kind: Pod")
	assert.Contains(t, out, "name: api-a2222-xxxxx")
	assert.NotContains(t, out, "managedFields")
	assert.Regexp(t, `Events\n +2m +Warning +BackOff +Back-off restarting failed container main`, out)

	// The deployment's describe is live: a change shows on the next snapshot.
	press(t, m, "esc")
	selectRow(t, m, "3", "web")
	press(t, m, "d")
	assert.Contains(t, screen(m), "kind: Deployment")
	assert.Contains(t, screen(m), "ScalingReplicaSet")
	require.NoError(t, f.Scale(t.Context(), "default", "web", 9))
	require.Eventually(t, func() bool {
		for _, d := range f.Snapshot().Deployments {
			if d.Name == "web" {
				return *d.Spec.Replicas == 9
			}
		}
		return false
	}, 5*time.Second, 10*time.Millisecond)
	m.Update(snapshotMsg{snap: f.Snapshot()})
	assert.Contains(t, screen(m), "replicas: 9")
}

func TestMetrics(t *testing.T) {
	f := newFakeCluster(t, "default", clusterObjects()...)
	m := newModel(t, f, testOptions("default"))
	assert.Contains(t, screen(m), "metrics.k8s.io not served: CPU/memory columns empty")

	f.serveMetrics(t, 1)
	m.Update(metricsMsg{m: f.Metrics(t.Context(), now)})
	assert.NotContains(t, screen(m), "not served")
	assert.Contains(t, screen(m), "300m/4000m 8%")
	press(t, m, "2")
	assert.Contains(t, screen(m), "16Mi")

	// Unreachable is not "not served".
	m.Update(metricsMsg{m: kube.Metrics{Err: fmt.Errorf("discover metrics.k8s.io/v1beta1: %w", errors.New("connection refused"))}})
	assert.Contains(t, screen(m), "metrics.k8s.io unavailable (connection refused): CPU/memory columns empty")
	assert.NotContains(t, screen(m), "not served")

	// Served but failing is said too.
	m.Update(tea.WindowSizeMsg{Width: 160, Height: 30})
	m.Update(metricsMsg{m: kube.Metrics{Served: true, Err: errors.New("list pod metrics: the server is currently unable to handle the request")}})
	assert.Contains(t, screen(m), "metrics.k8s.io failing (list pod metrics: the server is currently unable to handle the request): CPU/memory columns empty")
}

func TestSparklineHistory(t *testing.T) {
	n := node("n", true, "")
	s := &state{snap: &kube.Snapshot{Synced: true, Nodes: []*corev1.Node{n}}}
	for i := range historyLen + 5 {
		s.addSample(kube.Metrics{Served: true, Nodes: map[string]kube.Usage{"n": {CPUMilli: int64(i)}}})
	}
	assert.Len(t, s.hist["node/n/cpu"], historyLen)
	s.addSample(kube.Metrics{Served: true, Nodes: map[string]kube.Usage{}})
	assert.Len(t, s.hist["node/n/cpu"], historyLen, "a poll without the node keeps its history")
	s.snap = &kube.Snapshot{Synced: true}
	s.pruneHistory()
	assert.Empty(t, s.hist, "series of objects that are gone are dropped")

	assert.Equal(t, "▁▃▆█", sparkline([]float64{0, 1, 2, 3}, 10, 0))
	assert.Equal(t, "▆█", sparkline([]float64{0, 1, 2, 3}, 2, 0))
	assert.Equal(t, "▁▁", sparkline([]float64{0, 0}, 10, 0))
	assert.Equal(t, "▁▅█", sparkline([]float64{0, 50, 100}, 10, 100))
	assert.Equal(t, " ▅█", sparkline([]float64{math.NaN(), 1, 2}, 10, 0), "no sample is a gap")
}

// With the cluster's Prometheus the trends span the last hour, from it.
func TestPrometheusTrends(t *testing.T) {
	f := newFakeCluster(t, "default", clusterObjects()...)
	m := newModel(t, f, testOptions("default"))
	m.Update(tea.WindowSizeMsg{Width: 200, Height: 30})
	f.serveMetrics(t, 1)
	m.Update(metricsMsg{m: f.Metrics(t.Context(), now)})
	press(t, m, "2")
	assert.Contains(t, screen(m), "CPU 5m")

	series := make([]float64, kube.HistoryPoints)
	for i := range series {
		series[i] = float64(i)
	}
	m.Update(historyMsg{h: kube.History{Source: "http://172.30.0.2:9090", Series: map[string][]float64{"pod/default/api-a1111-yyyyy/cpu": series}}})
	assert.Contains(t, screen(m), "CPU 1h")
	assert.Contains(t, screen(m), sparkline(series, 10, 0))
	press(t, m, "1")
	assert.Contains(t, screen(m), "trends: last 1h from prometheus at http://172.30.0.2:9090")

	assert.Contains(t, screen(m), "Alerts  0 firing, 0 pending")
	m.Update(historyMsg{h: kube.History{Source: "http://172.30.0.2:9090", Alerts: []kube.Alert{
		{Name: "PodCrashLooping", State: "firing", Severity: "warning", Summary: "api restarts", ActiveAt: now.Add(-2 * time.Minute)},
		{Name: "NodeBusy", State: "pending", Severity: "info", ActiveAt: now.Add(-10 * time.Second)},
	}}})
	assert.Contains(t, screen(m), "Alerts  1 firing, 1 pending (prometheus rules)")
	assert.Regexp(t, `2m\s+firing\s+PodCrashLooping\s+warning\s+api restarts`, screen(m))

	m.Update(historyMsg{h: kube.History{Source: "http://172.30.0.2:9090", Err: errors.New("query prometheus: connection refused")}})
	assert.Contains(t, screen(m), "trends: prometheus failing (query prometheus: connection refused), last minutes instead")
	press(t, m, "2")
	assert.Contains(t, screen(m), "CPU 5m")
}

func TestConnectionState(t *testing.T) {
	f := newFakeCluster(t, "default", clusterObjects()...)
	m := New(t.Context(), f, testOptions("default"))
	m.Update(tea.WindowSizeMsg{Width: 100, Height: 30})
	assert.Contains(t, screen(m), "connecting…")
	m.Update(healthMsg{err: fmt.Errorf("apiserver /readyz: %w", errors.New("connection refused"))})
	assert.Contains(t, screen(m), "disconnected: connection refused; retrying")
	_, cmd := m.Update(healthMsg{})
	assert.NotNil(t, cmd, "back: the next check is scheduled, and a snapshot and metrics poll taken")
	assert.Contains(t, screen(m), "connected")
	assert.NotContains(t, screen(m), "disconnected")
}

func TestListFailureIsShown(t *testing.T) {
	f := newFakeCluster(t, "default", clusterObjects()...)
	m := newModel(t, f, testOptions("default"))
	m.Update(snapshotMsg{snap: &kube.Snapshot{WatchError: errors.New(`nodes is forbidden: User "dev" cannot list resource "nodes"`)}})
	assert.Contains(t, screen(m), `connected, cannot list: nodes is forbidden: User "dev" cannot list resource "nodes"`)
}

func TestOneChangeWaiterAtATime(t *testing.T) {
	f := newFakeCluster(t, "default", clusterObjects()...)
	m := New(t.Context(), f, testOptions("default"))
	_, cmd := m.Update(watchingMsg{ch: make(chan struct{})})
	assert.NotNil(t, cmd, "the first wait")
	_, cmd = m.Update(snapshotMsg{snap: f.Snapshot()})
	assert.Nil(t, cmd, "a snapshot taken on reconnect does not start a second wait")
	_, cmd = m.Update(snapshotMsg{snap: f.Snapshot(), watched: true})
	assert.NotNil(t, cmd, "the wait that delivered re-arms")
}

func TestFormatting(t *testing.T) {
	p := pod("default", "p", "n", corev1.PodRunning, true, 0, time.Minute)
	assert.Equal(t, "Running", podStatus(p))
	p.DeletionTimestamp = &metav1.Time{Time: now}
	assert.Equal(t, "Terminating", podStatus(p))

	p = pod("default", "p", "n", corev1.PodPending, false, 0, time.Minute)
	p.Spec.InitContainers = []corev1.Container{{Name: "a"}, {Name: "b"}}
	p.Status.InitContainerStatuses = []corev1.ContainerStatus{
		{Name: "a", State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 0}}},
		{Name: "b", State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}},
	}
	assert.Equal(t, "Init:1/2", podStatus(p))
	assert.False(t, podProblem(podStatus(p)))
	p.Status.InitContainerStatuses[1].State = corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff"}}
	assert.Equal(t, "Init:CrashLoopBackOff", podStatus(p))
	assert.True(t, podProblem(podStatus(p)))

	d := deploy("d", 3, 3, 3, 1, "i")
	assert.Equal(t, "Available", rolloutState(d))
	d.Status.AvailableReplicas = 2
	assert.Equal(t, "Progressing", rolloutState(d))
	d.Status.Conditions = []appsv1.DeploymentCondition{{Type: appsv1.DeploymentProgressing, Status: corev1.ConditionFalse, Reason: "ProgressDeadlineExceeded"}}
	assert.Equal(t, "Failed", rolloutState(d))
	d.Spec.Paused = true
	assert.Equal(t, "Paused", rolloutState(d))

	assert.Equal(t, "250m", fmtCPU(250))
	assert.Equal(t, "12", fmtCPU(12000))
	assert.Equal(t, "1.5Gi", fmtMem(3<<29))
	assert.Equal(t, "64Mi", fmtMem(64<<20))
	assert.Equal(t, "25%", percent(1, 4))
}
