package tui

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"
	"charm.land/lipgloss/v2"
	corev1 "k8s.io/api/core/v1"

	"minik.dev/minik/tui/kube"
)

// metricsBanner is the line shown whenever usage columns are empty, so
// they are never silently so; "" when metrics flow (or before the first
// poll has answered).
func metricsBanner(s *state) string {
	switch {
	case s.metrics == nil || s.metricsServed():
		return ""
	case errors.Is(s.metrics.Err, kube.ErrMetricsNotServed):
		return "metrics.k8s.io not served: CPU/memory columns empty"
	case s.metrics.Served:
		return fmt.Sprintf("metrics.k8s.io failing (%v): CPU/memory columns empty", s.metrics.Err)
	}
	return fmt.Sprintf("metrics.k8s.io unavailable (%v): CPU/memory columns empty", rootCause(s.metrics.Err))
}

// renderOverview is the overview screen's text; `--once` prints it too.
// The metrics banner is the caller's: the dashboard shows it on every view.
func renderOverview(s *state, width int) string {
	st := &s.styles
	snap := s.snap
	var out []string
	add := func(l ...string) { out = append(out, l...) }

	// Nodes, with usage against capacity.
	ready := 0
	for _, n := range snap.Nodes {
		if nodeReady(n) {
			ready++
		}
	}
	add(st.Section.Render("Nodes") + fmt.Sprintf("  %d: %d Ready, %d NotReady", len(snap.Nodes), ready, len(snap.Nodes)-ready) + trendSource(s))
	nodes := append([]*corev1.Node(nil), snap.Nodes...)
	sort.Slice(nodes, func(i, j int) bool { return nodes[i].Name < nodes[j].Name })
	rows := [][]string{{"NAME", "STATUS", "CPU", "", "MEMORY", "", "PODS"}}
	tones := []tone{toneNormal}
	podsOn := podsPerNode(snap.Pods)
	for _, n := range nodes {
		cpu, cpuTrend, mem, memTrend := nodeUsageCells(s, n)
		rows = append(rows, []string{n.Name, nodeStatus(n), cpu, cpuTrend, mem, memTrend,
			fmt.Sprintf("%d/%s", podsOn[n.Name], n.Status.Capacity.Pods().String())})
		tones = append(tones, map[bool]tone{true: toneNormal, false: toneBad}[nodeReady(n)])
	}
	add(grid(st, "  ", rows, tones, width)...)
	add("")

	// Pods by phase.
	phases := map[corev1.PodPhase]int{}
	problems := 0
	for _, p := range snap.Pods {
		phases[p.Status.Phase]++
		if podProblem(podStatus(p)) {
			problems++
		}
	}
	var parts []string
	for _, ph := range []corev1.PodPhase{corev1.PodRunning, corev1.PodPending, corev1.PodSucceeded, corev1.PodFailed, corev1.PodUnknown} {
		parts = append(parts, fmt.Sprintf("%s %d", ph, phases[ph]))
	}
	line := st.Section.Render("Pods") + fmt.Sprintf("  %d: %s", len(snap.Pods), strings.Join(parts, " · "))
	switch {
	case problems == 1:
		line += "  " + st.Bad.Render("1 pod needs attention")
	case problems > 1:
		line += "  " + st.Bad.Render(fmt.Sprintf("%d pods need attention", problems))
	}
	add(line)

	// Claims by phase: Pending is normal until a first pod is scheduled
	// (WaitForFirstConsumer); Lost is not.
	claims := map[corev1.PersistentVolumeClaimPhase]int{}
	for _, c := range snap.PersistentVolumeClaims {
		ph := c.Status.Phase
		if ph == "" {
			ph = corev1.ClaimPending
		}
		claims[ph]++
	}
	line = st.Section.Render("Claims") + fmt.Sprintf("  %d: Bound %d · Pending %d · Lost %d", len(snap.PersistentVolumeClaims),
		claims[corev1.ClaimBound], claims[corev1.ClaimPending], claims[corev1.ClaimLost])
	switch lost := claims[corev1.ClaimLost]; {
	case lost == 1:
		line += "  " + st.Bad.Render("1 claim lost its volume")
	case lost > 1:
		line += "  " + st.Bad.Render(fmt.Sprintf("%d claims lost their volume", lost))
	}
	add(line, "")

	// Deployments mid-rollout.
	var rolling [][]string
	for _, d := range snap.Deployments {
		if rolloutState(d) != "Available" {
			rolling = append(rolling, []string{d.Namespace + "/" + d.Name, rolloutState(d),
				replicaCounts(d) + " updated/ready/desired", fmt.Sprintf("revision %d", kube.Revision(d))})
		}
	}
	sort.Slice(rolling, func(i, j int) bool { return rolling[i][0] < rolling[j][0] })
	add(st.Section.Render("Rollouts in progress") + fmt.Sprintf("  %d of %d deployments", len(rolling), len(snap.Deployments)))
	add(grid(st, "  ", rolling, nil, width)...)
	add("")

	// Alerts, when the cluster's Prometheus evaluates rules.
	if s.fromPrometheus() {
		firing := 0
		var alerts [][]string
		var at []tone
		for _, a := range s.long.Alerts {
			t := toneWarn
			if a.State == "firing" {
				firing++
				t = toneBad
			}
			alerts = append(alerts, []string{age(s.now(), metaTime(a.ActiveAt)), a.State, a.Name, a.Severity, oneLine(a.Summary)})
			at = append(at, t)
		}
		add(st.Section.Render("Alerts") + fmt.Sprintf("  %d firing, %d pending (prometheus rules)", firing, len(alerts)-firing))
		if len(alerts) > 5 {
			alerts, at = alerts[:5], at[:5]
		}
		add(grid(st, "  ", alerts, at, width)...)
		add("")
	}

	// Recent warnings.
	var warnings [][]string
	for _, e := range sortEventsNewestFirst(snap.Events) {
		if e.Type != corev1.EventTypeWarning {
			continue
		}
		warnings = append(warnings, []string{age(s.now(), metaTime(eventTime(e))), e.Namespace, eventObject(e), e.Reason, oneLine(e.Message)})
		if len(warnings) == 5 {
			break
		}
	}
	add(st.Section.Render("Recent warnings"))
	if len(warnings) == 0 {
		add(st.Dim.Render("  none"))
	}
	wt := make([]tone, len(warnings))
	for i := range wt {
		wt[i] = toneWarn
	}
	add(grid(st, "  ", warnings, wt, width)...)
	return strings.Join(out, "\n")
}

func podsPerNode(pods []*corev1.Pod) map[string]int {
	m := map[string]int{}
	for _, p := range pods {
		if p.Spec.NodeName != "" && p.Status.Phase != corev1.PodSucceeded && p.Status.Phase != corev1.PodFailed {
			m[p.Spec.NodeName]++
		}
	}
	return m
}

// trendSource says where the trends come from when the cluster runs a
// Prometheus server; "" when it does not (they are then the last polls).
func trendSource(s *state) string {
	switch {
	case s.long == nil || s.long.Source == "":
		return ""
	case s.long.Err != nil:
		return fmt.Sprintf("  · trends: prometheus failing (%v), last minutes instead", rootCause(s.long.Err))
	}
	return "  · trends: last 1h from prometheus at " + s.long.Source
}

// nodeUsageCells are "used/capacity pct" and a sparkline for CPU and memory;
// "-" without metrics.
func nodeUsageCells(s *state, n *corev1.Node) (cpu, cpuTrend, mem, memTrend string) {
	if !s.metricsServed() {
		return "-", "", "-", ""
	}
	u, ok := s.metrics.Nodes[n.Name]
	if !ok {
		return "?", "", "?", ""
	}
	capCPU := n.Status.Capacity.Cpu().MilliValue()
	capMem := n.Status.Capacity.Memory().Value()
	cpu = fmt.Sprintf("%s/%s %s", fmtCPU(u.CPUMilli), fmtCPU(capCPU), percent(u.CPUMilli, capCPU))
	mem = fmt.Sprintf("%s/%s %s", fmtMem(u.MemoryBytes), fmtMem(capMem), percent(u.MemoryBytes, capMem))
	cpuTrend = sparkline(s.trend("node/"+n.Name+"/cpu"), 10, float64(capCPU))
	memTrend = sparkline(s.trend("node/"+n.Name+"/mem"), 10, float64(capMem))
	return cpu, cpuTrend, mem, memTrend
}

// grid aligns rows into columns; tones style whole lines; cells wider than
// width are cut at the last column.
func grid(st *Styles, indent string, rows [][]string, tones []tone, width int) []string {
	var w []int
	for _, r := range rows {
		for i, c := range r {
			if i >= len(w) {
				w = append(w, 0)
			}
			w[i] = max(w[i], lipgloss.Width(c))
		}
	}
	var out []string
	for ri, r := range rows {
		var b strings.Builder
		b.WriteString(indent)
		for i, c := range r {
			if i > 0 {
				b.WriteString("  ")
			}
			b.WriteString(c)
			if i < len(r)-1 {
				b.WriteString(strings.Repeat(" ", w[i]-lipgloss.Width(c)))
			}
		}
		l := truncate(strings.TrimRight(b.String(), " "), width)
		if ri < len(tones) {
			l = toneStyle(st, tones[ri]).Render(l)
		}
		out = append(out, l)
	}
	return out
}

// overviewView is the overview tab: the overview text, scrollable.
type overviewView struct {
	s      *state
	offset int
	lines  int
}

func (v *overviewView) title() string   { return "Overview" }
func (v *overviewView) refresh()        {}
func (v *overviewView) capturing() bool { return false }
func (v *overviewView) close()          {}

func (v *overviewView) update(msg tea.Msg) tea.Cmd {
	k, ok := msg.(tea.KeyPressMsg)
	if !ok {
		return nil
	}
	switch {
	case key.Matches(k, v.s.keys.Down):
		v.offset++
	case key.Matches(k, v.s.keys.Up):
		v.offset--
	case key.Matches(k, v.s.keys.Top):
		v.offset = 0
	case key.Matches(k, v.s.keys.Bottom):
		v.offset = v.lines
	}
	v.offset = max(0, min(v.offset, v.lines-1))
	return nil
}

func (v *overviewView) view(width, height int) string {
	lines := strings.Split(renderOverview(v.s, width), "\n")
	v.lines = len(lines)
	v.offset = max(0, min(v.offset, len(lines)-height))
	lines = lines[v.offset:]
	if len(lines) > height {
		lines = lines[:height]
	}
	return strings.Join(lines, "\n")
}
