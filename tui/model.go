// Package tui is `minik dashboard`: a terminal UI over any cluster's pods,
// rollouts, nodes, volumes, events, logs and metrics.
//
// The root Model routes messages to one small component per view. Cluster
// I/O happens only in tea.Cmds (package kube does it), whose results come
// back as typed messages; views read a shared state the root owns; one
// KeyMap serves the views and the help overlay.
package tui

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"charm.land/bubbles/v2/help"
	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"
	"charm.land/lipgloss/v2"

	"minik.dev/minik/tui/kube"
)

// Model is the dashboard's root model.
type Model struct {
	ctx     context.Context
	cluster Cluster
	s       *state
	keys    KeyMap
	help    help.Model

	width, height int
	tabs          []component
	active        int
	// stack holds views opened from the active tab (history, logs,
	// describe); esc closes the top one.
	stack    []component
	dialog   *dialog
	showHelp bool
	// helpOffset scrolls the help when it does not fit as a box.
	helpOffset int

	changes   <-chan struct{}
	connErr   error
	connKnown bool
	flash     string
	flashBad  bool
	ids       int
}

// New builds the dashboard; ctx bounds every request it makes and its
// informers.
func New(ctx context.Context, c Cluster, opts Options) *Model {
	opts.defaults()
	m := &Model{ctx: ctx, cluster: c, keys: DefaultKeyMap(opts.ReadOnly), help: help.New()}
	m.s = &state{opts: opts, styles: opts.Styles, keys: &m.keys, snap: &kube.Snapshot{}}
	m.help.Styles.ShortKey = opts.Styles.HelpKey
	m.help.Styles.ShortDesc = opts.Styles.Dim
	m.help.Styles.ShortSeparator = opts.Styles.Dim
	m.help.Styles.Ellipsis = opts.Styles.Dim
	m.tabs = []component{&overviewView{s: m.s}, newPodsView(m.s), newDeploymentsView(m.s), newNodesView(m.s),
		newVolumesView(m.s), newEventsView(m.s)}
	return m
}

// Init starts the informers, the first metrics poll and the health check.
func (m *Model) Init() tea.Cmd {
	return tea.Batch(m.startWatch(), m.pollMetrics(), m.pollHistory(), m.checkHealth())
}

func (m *Model) startWatch() tea.Cmd {
	ctx, c := m.ctx, m.cluster
	return func() tea.Msg { return watchingMsg{ch: c.Watch(ctx)} }
}

// waitChange turns informer notifications into snapshots, at most one per
// debounce interval: a rollout touches dozens of objects in a second.
func (m *Model) waitChange() tea.Cmd {
	ctx, c, ch, d := m.ctx, m.cluster, m.changes, m.s.opts.Debounce
	return func() tea.Msg {
		select {
		case <-ch:
		case <-ctx.Done():
			return nil
		}
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
			return nil
		}
		select {
		case <-ch:
		default:
		}
		return snapshotMsg{snap: c.Snapshot(), watched: true}
	}
}

func (m *Model) snapshotNow() tea.Cmd {
	c := m.cluster
	return func() tea.Msg { return snapshotMsg{snap: c.Snapshot()} }
}

func (m *Model) pollMetrics() tea.Cmd {
	ctx, c, now := m.ctx, m.cluster, m.s.opts.Now
	return func() tea.Msg {
		ctx, cancel := context.WithTimeout(ctx, 8*time.Second)
		defer cancel()
		return metricsMsg{m: c.Metrics(ctx, now())}
	}
}

func (m *Model) pollHistory() tea.Cmd {
	ctx, c, now := m.ctx, m.cluster, m.s.opts.Now
	return func() tea.Msg {
		ctx, cancel := context.WithTimeout(ctx, 8*time.Second)
		defer cancel()
		return historyMsg{h: c.History(ctx, now())}
	}
}

func (m *Model) checkHealth() tea.Cmd {
	ctx, c := m.ctx, m.cluster
	return func() tea.Msg {
		ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		defer cancel()
		return healthMsg{err: c.Healthy(ctx)}
	}
}

// top is the component on screen.
func (m *Model) top() component {
	if len(m.stack) > 0 {
		return m.stack[len(m.stack)-1]
	}
	return m.tabs[m.active]
}

func (m *Model) push(c component) { m.stack = append(m.stack, c) }

func (m *Model) pop() {
	if len(m.stack) == 0 {
		return
	}
	m.stack[len(m.stack)-1].close()
	m.stack = m.stack[:len(m.stack)-1]
}

func (m *Model) switchTab(i int) {
	for len(m.stack) > 0 {
		m.pop()
	}
	m.active = (i + len(m.tabs)) % len(m.tabs)
}

func (m *Model) refreshAll() {
	for _, c := range m.tabs {
		c.refresh()
	}
	for _, c := range m.stack {
		c.refresh()
	}
}

func (m *Model) setFlash(text string, bad bool) { m.flash, m.flashBad = text, bad }

// Update routes a message: data messages update the state and every
// view; keys go to the dialog, the help overlay, the global bindings or
// the view on top, in that order.
func (m *Model) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	switch msg := msg.(type) {
	case tea.WindowSizeMsg:
		m.width, m.height = msg.Width, msg.Height
		m.help.SetWidth(msg.Width)
		return m, nil
	case watchingMsg:
		m.changes = msg.ch
		return m, m.waitChange()
	case snapshotMsg:
		m.s.snap = msg.snap
		m.s.pruneHistory()
		m.refreshAll()
		if !msg.watched {
			return m, nil
		}
		return m, m.waitChange()
	case healthMsg:
		wasDown := m.connKnown && m.connErr != nil
		m.connErr, m.connKnown = msg.err, true
		cmds := []tea.Cmd{tea.Tick(m.s.opts.HealthEvery, func(time.Time) tea.Msg { return healthTick{} })}
		if msg.err == nil && (wasDown || !m.s.snap.Synced) {
			// Back (or still syncing): show what the informers have now
			// rather than wait for their next event.
			cmds = append(cmds, m.snapshotNow())
		}
		if msg.err == nil && wasDown {
			cmds = append(cmds, m.pollMetrics())
		}
		return m, tea.Batch(cmds...)
	case healthTick:
		return m, m.checkHealth()
	case metricsMsg:
		mm := msg.m
		m.s.metrics = &mm
		if mm.Served && mm.Err == nil {
			m.s.addSample(mm)
		}
		m.refreshAll()
		return m, tea.Tick(m.s.opts.MetricsEvery, func(time.Time) tea.Msg { return metricsTick{} })
	case metricsTick:
		return m, m.pollMetrics()
	case historyMsg:
		h := msg.h
		m.s.long = &h
		m.refreshAll()
		return m, tea.Tick(m.s.opts.HistoryEvery, func(time.Time) tea.Msg { return historyTick{} })
	case historyTick:
		return m, m.pollHistory()
	case logStartedMsg, logLinesMsg:
		// Only the log view whose stream this is still listens (by id).
		var cmds []tea.Cmd
		for _, c := range m.stack {
			cmds = append(cmds, c.update(msg))
		}
		return m, tea.Batch(cmds...)
	case actionDoneMsg:
		if msg.err != nil {
			m.setFlash(msg.err.Error(), true)
		} else {
			m.setFlash(msg.what, false)
		}
		return m, nil
	case flashMsg:
		m.setFlash(msg.text, false)
		return m, nil
	case openLogsMsg:
		lv := newLogsView(m.ctx, m.s, m.cluster, msg.pod, func() int { m.ids++; return m.ids })
		m.push(lv)
		return m, lv.start()
	case openHistoryMsg:
		m.push(newHistoryView(m.s, msg.ns, msg.name))
		return m, nil
	case showPodsMsg:
		m.switchTab(1)
		pv := m.tabs[1].(*podsView)
		pv.t.filter, pv.t.scope = msg.filter, msg.scope
		pv.t.apply("")
		return m, nil
	case openDescribeMsg:
		m.push(newDescribeView(m.s, msg.obj))
		return m, nil
	case requestMsg:
		if b := msg.a.binding(&m.keys); !b.Enabled() {
			m.setFlash("read-only: "+b.Help().Desc+" is disabled", true)
			return m, nil
		}
		m.dialog = newDialog(msg.a)
		return m, nil
	case tea.KeyPressMsg:
		return m, m.key(msg)
	}
	return m, nil
}

func (m *Model) key(msg tea.KeyPressMsg) tea.Cmd {
	k := &m.keys
	if key.Matches(msg, k.ForceQuit) {
		return m.quit()
	}
	if m.dialog != nil {
		switch m.dialog.update(msg, k) {
		case dialogCancelled:
			m.dialog = nil
			m.setFlash("cancelled", false)
		case dialogConfirmed:
			a := m.dialog.a
			m.dialog = nil
			m.setFlash("working…", false)
			return a.run(m.ctx, m.cluster, m.s.now())
		}
		return nil
	}
	if m.showHelp {
		switch {
		case key.Matches(msg, k.Help, k.Back, k.Quit):
			m.showHelp, m.helpOffset = false, 0
		case key.Matches(msg, k.Down):
			m.helpOffset++
		case key.Matches(msg, k.Up):
			m.helpOffset = max(m.helpOffset-1, 0)
		}
		return nil
	}
	top := m.top()
	if top.capturing() {
		return top.update(msg)
	}
	switch {
	case key.Matches(msg, k.Quit):
		return m.quit()
	case key.Matches(msg, k.Help):
		m.showHelp = true
	case key.Matches(msg, k.NextView):
		m.switchTab(m.active + 1)
	case key.Matches(msg, k.PrevView):
		m.switchTab(m.active - 1)
	case key.Matches(msg, k.tabs()...):
		for i, b := range k.tabs() {
			if key.Matches(msg, b) {
				m.switchTab(i)
			}
		}
	case key.Matches(msg, k.Back):
		if f, ok := top.(interface{ clearFilter() bool }); ok && f.clearFilter() {
			return nil
		}
		m.pop()
	default:
		m.setFlash("", false)
		return top.update(msg)
	}
	return nil
}

func (m *Model) quit() tea.Cmd {
	for len(m.stack) > 0 {
		m.pop()
	}
	return tea.Quit
}

// View draws the title bar, the tabs, the metrics banner, the view on top
// (under a dialog or the help, if open) and the status bar.
func (m *Model) View() tea.View {
	v := tea.NewView(m.render())
	v.AltScreen = true
	v.WindowTitle = "minik dashboard: " + m.s.opts.Target
	return v
}

func (m *Model) render() string {
	if m.width == 0 || m.height == 0 {
		return "starting…"
	}
	st := &m.s.styles
	w := m.width
	var head []string
	head = append(head, m.titleBar(), m.tabBar())
	if b := metricsBanner(m.s); b != "" {
		head = append(head, st.Banner.Render(truncate(b, w)))
	}
	status := m.statusBar()
	bodyH := max(m.height-len(head)-1, 1)
	body := m.top().view(w, bodyH)
	body = fit(body, w, bodyH)
	switch {
	case m.dialog != nil:
		body = overlay(body, m.dialog.view(st, w), w, bodyH)
	case m.showHelp:
		if h, box := m.helpView(w, bodyH); box {
			body = overlay(body, h, w, bodyH)
		} else {
			body = fit(h, w, bodyH)
		}
	}
	return strings.Join(append(head, body, status), "\n")
}

func (m *Model) titleBar() string {
	st := &m.s.styles
	ns := m.s.opts.Namespace
	if ns == "" {
		ns = "all namespaces"
	} else {
		ns = "namespace " + ns
	}
	t := st.Title.Render("minik dashboard") + "  " + m.s.opts.Target + " · " + ns
	if m.s.opts.ReadOnly {
		t += " · " + st.Warn.Render("read-only")
	}
	return truncate(t, m.width)
}

// tabBar is the tabs, then the titles of the views opened from the active
// one. When that does not fit, inactive tabs show their number only: the
// title of a drill-in (which container a log follows) matters more than
// the names of the other tabs.
func (m *Model) tabBar() string {
	bar := m.tabLine(false)
	if len(m.stack) > 0 && lipgloss.Width(bar) > m.width {
		bar = m.tabLine(true)
	}
	return truncate(bar, m.width)
}

func (m *Model) tabLine(compact bool) string {
	st := &m.s.styles
	var parts []string
	for i, c := range m.tabs {
		label := fmt.Sprintf(" %d %s ", i+1, c.title())
		if compact && i != m.active {
			label = fmt.Sprintf(" %d ", i+1)
		}
		if i == m.active {
			parts = append(parts, st.ActiveTab.Render("["+strings.TrimSpace(label)+"]"))
		} else {
			parts = append(parts, st.Tab.Render(label))
		}
	}
	bar := strings.TrimRight(strings.Join(parts, " "), " ")
	for _, c := range m.stack {
		bar += "  › " + st.Title.Render(c.title())
	}
	return bar
}

func (m *Model) statusBar() string {
	st := &m.s.styles
	var conn string
	switch {
	case !m.connKnown:
		conn = "connecting…"
	case m.connErr != nil:
		conn = st.Bad.Render("disconnected") + ": " + oneLine(rootCause(m.connErr).Error()) + "; retrying"
	case !m.s.snap.Synced && m.s.snap.WatchError != nil:
		// Reachable but a list fails, e.g. RBAC forbids listing nodes.
		conn = st.OK.Render("connected") + ", " + st.Bad.Render("cannot list") + ": " + oneLine(rootCause(m.s.snap.WatchError).Error())
	case !m.s.snap.Synced:
		conn = st.OK.Render("connected") + ", syncing…"
	default:
		conn = st.OK.Render("connected")
	}
	left := conn
	if m.flash != "" {
		f := m.flash
		if m.flashBad {
			f = st.Bad.Render(f)
		}
		left += " │ " + f
	}
	right := m.help.ShortHelpView(m.keys.ShortHelp())
	gap := m.width - lipgloss.Width(left) - lipgloss.Width(right)
	if gap < 2 {
		return truncate(left, m.width)
	}
	return left + strings.Repeat(" ", gap) + right
}

// rootCause keeps the status bar short: the innermost error says most.
func rootCause(err error) error {
	for {
		u := errors.Unwrap(err)
		if u == nil {
			return err
		}
		err = u
	}
}

// helpGroups renders each group of FullHelp as lines: a title, then one
// "key  description" line per enabled binding.
func (m *Model) helpGroups() [][]string {
	st := &m.s.styles
	var groups [][]string
	for i, group := range m.keys.FullHelp() {
		kw := 0
		for _, b := range group {
			kw = max(kw, lipgloss.Width(b.Help().Key))
		}
		lines := []string{st.Section.Render(helpGroupTitles[i])}
		for _, b := range group {
			if !b.Enabled() {
				continue
			}
			pad := strings.Repeat(" ", kw-lipgloss.Width(b.Help().Key))
			lines = append(lines, st.HelpKey.Render(b.Help().Key)+pad+"  "+st.HelpDesc.Render(b.Help().Desc))
		}
		groups = append(groups, lines)
	}
	return groups
}

// helpView is the help: a box over the view when it fits, else a plain
// list that j/k scroll (an 80x24 terminal is too small for the box).
func (m *Model) helpView(width, height int) (string, bool) {
	g := m.helpGroups()
	col := func(a, b []string) string {
		return strings.Join(append(append(append([]string{}, a...), ""), b...), "\n")
	}
	body := lipgloss.JoinHorizontal(lipgloss.Top, col(g[0], g[1]), "   ", col(g[2], g[3]))
	box := m.s.styles.Dialog.Render("Keys   (? or esc closes)\n\n" + body)
	if lipgloss.Width(box) <= width && lipgloss.Height(box) <= height {
		return box, true
	}
	lines := []string{m.s.styles.Title.Render("Keys") + "   (? or esc closes; j/k scroll)", ""}
	for _, group := range g {
		lines = append(lines, group...)
		lines = append(lines, "")
	}
	m.helpOffset = max(0, min(m.helpOffset, len(lines)-height))
	return strings.Join(lines[m.helpOffset:], "\n"), false
}

// fit pads or cuts s to exactly width x height cells.
func fit(s string, width, height int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > height {
		lines = lines[:height]
	}
	for len(lines) < height {
		lines = append(lines, "")
	}
	for i, l := range lines {
		lines[i] = strings.TrimRight(truncate(l, width), " ")
	}
	return strings.Join(lines, "\n")
}

// overlay draws box centred over base.
func overlay(base, box string, width, height int) string {
	bw, bh := lipgloss.Width(box), lipgloss.Height(box)
	x, y := max((width-bw)/2, 0), max((height-bh)/2, 0)
	c := lipgloss.NewCompositor(
		lipgloss.NewLayer(fit(base, width, height)),
		lipgloss.NewLayer(box).X(x).Y(y).Z(1),
	)
	lines := strings.Split(c.Render(), "\n")
	for i, l := range lines {
		lines[i] = strings.TrimRight(l, " ")
	}
	return fit(strings.Join(lines, "\n"), width, height)
}
