package tui

import (
	"fmt"
	"strconv"

	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"

	"minik.dev/minik/tui/kube"
)

// podRef names a pod and its containers, for the logs view.
type podRef struct {
	ns, name   string
	containers []string
}

// ---- pods ----

type podsView struct {
	s   *state
	t   table
	all bool // all namespaces: show the NAMESPACE column
}

func newPodsView(s *state) *podsView {
	v := &podsView{s: s, all: s.opts.Namespace == ""}
	cols := []column{{title: "NAME", flex: true}, {title: "READY"}, {title: "STATUS"}, {title: "RESTARTS", right: true},
		{title: "NODE"}, {title: "AGE", right: true}, {title: "CPU", right: true}, {title: "MEM", right: true}, {title: "CPU 5m"}}
	if v.all {
		cols = append([]column{{title: "NAMESPACE"}}, cols...)
	}
	v.t = newTable("no pods", 0, false, cols...)
	return v
}

func (v *podsView) title() string     { return "Pods" }
func (v *podsView) capturing() bool   { return v.t.capturing() }
func (v *podsView) clearFilter() bool { return v.t.clearFilter() }
func (v *podsView) close()            {}

func (v *podsView) refresh() {
	now := v.s.now()
	v.t.cols[len(v.t.cols)-1].title = "CPU " + v.s.trendWindow()
	served := v.s.metricsServed()
	rows := make([]row, 0, len(v.s.snap.Pods))
	for _, p := range v.s.snap.Pods {
		status := podStatus(p)
		cpu, mem, trend := "-", "-", ""
		var cpuN, memN int64 = -1, -1
		if served {
			cpu, mem = "?", "?"
			if u, ok := v.s.metrics.Pods[podKey(p)]; ok {
				cpu, mem, cpuN, memN = fmtCPU(u.CPUMilli), fmtMem(u.MemoryBytes), u.CPUMilli, u.MemoryBytes
				trend = sparkline(v.s.trend("pod/"+podKey(p)+"/cpu"), 10, 0)
			}
		}
		node := p.Spec.NodeName
		if node == "" {
			node = "<none>"
		}
		cells := []string{p.Name, podReadyCount(p), status, strconv.FormatInt(podRestarts(p), 10), node,
			age(now, p.CreationTimestamp), cpu, mem, trend}
		keys := []sortKey{str(p.Name), str(podReadyCount(p)), str(status), numi(podRestarts(p)), str(node),
			num(-float64(p.CreationTimestamp.Unix())), numi(cpuN), numi(memN), numi(cpuN)}
		if v.all {
			cells = append([]string{p.Namespace}, cells...)
			keys = append([]sortKey{str(p.Namespace + "/" + p.Name)}, keys...)
		}
		t := toneNormal
		switch {
		case podProblem(status):
			t = toneBad
		case status == "Succeeded" || status == "Completed":
			t = toneDim
		}
		rows = append(rows, row{key: podKey(p), cells: cells, sort: keys, tone: t, obj: p})
	}
	v.t.setRows(rows)
}

func (v *podsView) selected() *corev1.Pod {
	if r := v.t.selected(); r != nil {
		return r.obj.(*corev1.Pod)
	}
	return nil
}

func (v *podsView) update(msg tea.Msg) tea.Cmd {
	k, ok := msg.(tea.KeyPressMsg)
	if !ok || v.t.handleKey(k, v.s.keys) {
		return nil
	}
	p := v.selected()
	if p == nil {
		return nil
	}
	switch {
	case key.Matches(k, v.s.keys.Enter):
		ref := podRef{ns: p.Namespace, name: p.Name}
		for _, c := range p.Spec.Containers {
			ref.containers = append(ref.containers, c.Name)
		}
		return emit(openLogsMsg{pod: ref})
	case key.Matches(k, v.s.keys.Describe):
		return emit(openDescribeMsg{obj: describePod(p)})
	case key.Matches(k, v.s.keys.Delete):
		return emit(requestMsg{a: action{kind: actDeletePod, ns: p.Namespace, name: p.Name}})
	}
	return nil
}

func (v *podsView) view(width, height int) string { return v.t.view(&v.s.styles, width, height) }

// ---- deployments ----

type deploymentsView struct {
	s   *state
	t   table
	all bool
}

func newDeploymentsView(s *state) *deploymentsView {
	v := &deploymentsView{s: s, all: s.opts.Namespace == ""}
	cols := []column{{title: "NAME", flex: true}, {title: "ROLLOUT"}, {title: "UPD/READY/WANT"}, {title: "REVISION", right: true},
		{title: "AGE", right: true}, {title: "IMAGES", flex: true}}
	if v.all {
		cols = append([]column{{title: "NAMESPACE"}}, cols...)
	}
	v.t = newTable("no deployments", 0, false, cols...)
	return v
}

func (v *deploymentsView) title() string     { return "Deployments" }
func (v *deploymentsView) capturing() bool   { return v.t.capturing() }
func (v *deploymentsView) clearFilter() bool { return v.t.clearFilter() }
func (v *deploymentsView) close()            {}

func (v *deploymentsView) refresh() {
	now := v.s.now()
	var rows []row
	for _, d := range v.s.snap.Deployments {
		state := rolloutState(d)
		cells := []string{d.Name, state, replicaCounts(d), strconv.FormatInt(kube.Revision(d), 10), age(now, d.CreationTimestamp), images(d.Spec.Template.Spec)}
		keys := []sortKey{str(d.Name), str(state), numi(int64(desired(d))), numi(kube.Revision(d)), num(-float64(d.CreationTimestamp.Unix())), str(cells[5])}
		if v.all {
			cells = append([]string{d.Namespace}, cells...)
			keys = append([]sortKey{str(d.Namespace + "/" + d.Name)}, keys...)
		}
		t := toneNormal
		switch state {
		case "Failed":
			t = toneBad
		case "Progressing", "Paused":
			t = toneWarn
		}
		rows = append(rows, row{key: d.Namespace + "/" + d.Name, cells: cells, sort: keys, tone: t, obj: d})
	}
	v.t.setRows(rows)
}

func (v *deploymentsView) update(msg tea.Msg) tea.Cmd {
	k, ok := msg.(tea.KeyPressMsg)
	if !ok || v.t.handleKey(k, v.s.keys) {
		return nil
	}
	r := v.t.selected()
	if r == nil {
		return nil
	}
	d := r.obj.(*appsv1.Deployment)
	switch {
	case key.Matches(k, v.s.keys.Enter):
		return emit(openHistoryMsg{ns: d.Namespace, name: d.Name})
	case key.Matches(k, v.s.keys.Describe):
		return emit(openDescribeMsg{obj: describeDeployment(d)})
	case key.Matches(k, v.s.keys.Scale):
		return emit(requestMsg{a: action{kind: actScale, ns: d.Namespace, name: d.Name, current: desired(d)}})
	case key.Matches(k, v.s.keys.Restart):
		return emit(requestMsg{a: action{kind: actRestart, ns: d.Namespace, name: d.Name}})
	case key.Matches(k, v.s.keys.Undo):
		// Like `kubectl rollout undo`: back to the newest revision before
		// the current one.
		cur := kube.Revision(d)
		for _, rs := range kube.OwnedReplicaSets(v.s.snap.ReplicaSets, d) {
			if rev := kube.Revision(rs); rev < cur && rev > 0 {
				return emit(requestMsg{a: action{kind: actUndo, ns: d.Namespace, name: d.Name, revision: rev}})
			}
		}
		return emit(flashMsg{text: fmt.Sprintf("%s/%s has no earlier revision", d.Namespace, d.Name)})
	}
	return nil
}

func (v *deploymentsView) view(width, height int) string { return v.t.view(&v.s.styles, width, height) }

// ---- rollout history of one deployment ----

type historyView struct {
	s        *state
	ns, name string
	t        table
	found    bool
}

func newHistoryView(s *state, ns, name string) *historyView {
	v := &historyView{s: s, ns: ns, name: name}
	v.t = newTable("no ReplicaSets: no revision yet", 0, true,
		column{title: "REVISION", right: true}, column{title: ""}, column{title: "REPLICASET"}, column{title: "READY/WANT"},
		column{title: "AGE", right: true}, column{title: "IMAGES", flex: true}, column{title: "CHANGE-CAUSE", flex: true})
	v.refresh()
	return v
}

func (v *historyView) title() string     { return "History " + v.ns + "/" + v.name }
func (v *historyView) capturing() bool   { return v.t.capturing() }
func (v *historyView) clearFilter() bool { return v.t.clearFilter() }
func (v *historyView) close()            {}

func (v *historyView) deployment() *appsv1.Deployment {
	for _, d := range v.s.snap.Deployments {
		if d.Namespace == v.ns && d.Name == v.name {
			return d
		}
	}
	return nil
}

func (v *historyView) refresh() {
	d := v.deployment()
	v.found = d != nil
	if d == nil {
		v.t.setRows(nil)
		return
	}
	now := v.s.now()
	cur := kube.Revision(d)
	var rows []row
	for _, rs := range kube.OwnedReplicaSets(v.s.snap.ReplicaSets, d) {
		rev := kube.Revision(rs)
		mark := ""
		t := toneNormal
		if rev == cur {
			mark, t = "current", toneOK
		}
		want := int32(0)
		if rs.Spec.Replicas != nil {
			want = *rs.Spec.Replicas
		}
		cells := []string{strconv.FormatInt(rev, 10), mark, rs.Name, fmt.Sprintf("%d/%d", rs.Status.ReadyReplicas, want),
			age(now, rs.CreationTimestamp), images(rs.Spec.Template.Spec), rs.Annotations[kube.ChangeCauseAnnotation]}
		keys := []sortKey{numi(rev), str(mark), str(rs.Name), numi(int64(want)), num(-float64(rs.CreationTimestamp.Unix())), str(cells[5]), str(cells[6])}
		rows = append(rows, row{key: rs.Name, cells: cells, sort: keys, tone: t, obj: rs})
	}
	v.t.setRows(rows)
}

func (v *historyView) update(msg tea.Msg) tea.Cmd {
	k, ok := msg.(tea.KeyPressMsg)
	if !ok || v.t.handleKey(k, v.s.keys) {
		return nil
	}
	r := v.t.selected()
	if r == nil {
		return nil
	}
	rs := r.obj.(*appsv1.ReplicaSet)
	switch {
	case key.Matches(k, v.s.keys.Describe):
		return emit(openDescribeMsg{obj: describeReplicaSet(rs)})
	case key.Matches(k, v.s.keys.Undo):
		d := v.deployment()
		if d == nil {
			return nil
		}
		rev := kube.Revision(rs)
		if rev == kube.Revision(d) {
			return emit(flashMsg{text: fmt.Sprintf("revision %d is the current one", rev)})
		}
		return emit(requestMsg{a: action{kind: actUndo, ns: v.ns, name: v.name, revision: rev}})
	}
	return nil
}

func (v *historyView) view(width, height int) string {
	if !v.found {
		return v.s.styles.Bad.Render(fmt.Sprintf("deployment %s/%s not found (deleted?)", v.ns, v.name))
	}
	return v.t.view(&v.s.styles, width, height)
}

// ---- nodes ----

type nodesView struct {
	s *state
	t table
}

func newNodesView(s *state) *nodesView {
	v := &nodesView{s: s}
	v.t = newTable("no nodes", 0, false,
		column{title: "NAME", flex: true}, column{title: "STATUS"}, column{title: "ROLES"}, column{title: "PODS", right: true},
		column{title: "CPU"}, column{title: "CPU 5m"}, column{title: "MEMORY"}, column{title: "MEM 5m"},
		column{title: "VERSION"}, column{title: "AGE", right: true})
	return v
}

func (v *nodesView) title() string     { return "Nodes" }
func (v *nodesView) capturing() bool   { return v.t.capturing() }
func (v *nodesView) clearFilter() bool { return v.t.clearFilter() }
func (v *nodesView) close()            {}

func (v *nodesView) refresh() {
	now := v.s.now()
	v.t.cols[5].title, v.t.cols[7].title = "CPU "+v.s.trendWindow(), "MEM "+v.s.trendWindow()
	podsOn := podsPerNode(v.s.snap.Pods)
	var rows []row
	for _, n := range v.s.snap.Nodes {
		cpu, cpuTrend, mem, memTrend := nodeUsageCells(v.s, n)
		var cpuN, memN int64 = -1, -1
		if u, ok := v.nodeUsage(n.Name); ok {
			cpuN, memN = u.CPUMilli, u.MemoryBytes
		}
		cells := []string{n.Name, nodeStatus(n), nodeRoles(n), fmt.Sprintf("%d/%s", podsOn[n.Name], n.Status.Capacity.Pods().String()),
			cpu, cpuTrend, mem, memTrend, n.Status.NodeInfo.KubeletVersion, age(now, n.CreationTimestamp)}
		keys := []sortKey{str(n.Name), str(cells[1]), str(cells[2]), numi(int64(podsOn[n.Name])), numi(cpuN), numi(cpuN),
			numi(memN), numi(memN), str(cells[8]), num(-float64(n.CreationTimestamp.Unix()))}
		t := toneNormal
		switch {
		case !nodeReady(n):
			t = toneBad
		case n.Spec.Unschedulable:
			t = toneWarn
		}
		rows = append(rows, row{key: n.Name, cells: cells, sort: keys, tone: t, obj: n})
	}
	v.t.setRows(rows)
}

func (v *nodesView) nodeUsage(name string) (kube.Usage, bool) {
	if !v.s.metricsServed() {
		return kube.Usage{}, false
	}
	u, ok := v.s.metrics.Nodes[name]
	return u, ok
}

func (v *nodesView) update(msg tea.Msg) tea.Cmd {
	k, ok := msg.(tea.KeyPressMsg)
	if !ok || v.t.handleKey(k, v.s.keys) {
		return nil
	}
	r := v.t.selected()
	if r == nil {
		return nil
	}
	n := r.obj.(*corev1.Node)
	switch {
	case key.Matches(k, v.s.keys.Enter):
		return emit(showPodsMsg{filter: n.Name})
	case key.Matches(k, v.s.keys.Describe):
		return emit(openDescribeMsg{obj: describeNode(n)})
	case key.Matches(k, v.s.keys.Cordon):
		kind := actCordon
		if n.Spec.Unschedulable {
			kind = actUncordon
		}
		return emit(requestMsg{a: action{kind: kind, name: n.Name}})
	}
	return nil
}

func (v *nodesView) view(width, height int) string { return v.t.view(&v.s.styles, width, height) }

// ---- events ----

type eventsView struct {
	s   *state
	t   table
	all bool
}

func newEventsView(s *state) *eventsView {
	v := &eventsView{s: s, all: s.opts.Namespace == ""}
	cols := []column{{title: "LAST SEEN", right: true}, {title: "TYPE"}, {title: "REASON"}, {title: "OBJECT"},
		{title: "COUNT", right: true}, {title: "MESSAGE", flex: true}}
	if v.all {
		cols = append([]column{{title: "NAMESPACE"}}, cols...)
	}
	// Newest first: LAST SEEN sorts by time.
	first := 0
	if v.all {
		first = 1
	}
	v.t = newTable("no events", first, true, cols...)
	return v
}

func (v *eventsView) title() string     { return "Events" }
func (v *eventsView) capturing() bool   { return v.t.capturing() }
func (v *eventsView) clearFilter() bool { return v.t.clearFilter() }
func (v *eventsView) close()            {}

func (v *eventsView) refresh() {
	now := v.s.now()
	var rows []row
	for _, e := range v.s.snap.Events {
		at := eventTime(e)
		count := e.Count
		if e.Series != nil {
			count = e.Series.Count
		}
		cells := []string{age(now, metaTime(at)), e.Type, e.Reason, eventObject(e), strconv.Itoa(int(max(count, 1))), oneLine(e.Message)}
		keys := []sortKey{num(float64(at.UnixNano())), str(e.Type), str(e.Reason), str(cells[3]), numi(int64(count)), str(e.Message)}
		if v.all {
			cells = append([]string{e.Namespace}, cells...)
			keys = append([]sortKey{str(e.Namespace)}, keys...)
		}
		t := toneNormal
		if e.Type == corev1.EventTypeWarning {
			t = toneWarn
		}
		rows = append(rows, row{key: e.Namespace + "/" + e.Name, cells: cells, sort: keys, tone: t, obj: e})
	}
	v.t.setRows(rows)
}

func (v *eventsView) update(msg tea.Msg) tea.Cmd {
	k, ok := msg.(tea.KeyPressMsg)
	if !ok || v.t.handleKey(k, v.s.keys) {
		return nil
	}
	if r := v.t.selected(); r != nil && key.Matches(k, v.s.keys.Describe) {
		return emit(openDescribeMsg{obj: describeEvent(r.obj.(*corev1.Event))})
	}
	return nil
}

func (v *eventsView) view(width, height int) string { return v.t.view(&v.s.styles, width, height) }
