package tui

import (
	"context"
	"io"
	"strings"
	"time"

	tea "charm.land/bubbletea/v2"

	"minik.dev/minik/tui/kube"
)

// Cluster is everything the dashboard needs from a cluster. *kube.Client
// implements it over client-go (and so over client-go's fake clientsets in
// tests).
type Cluster interface {
	Watch(ctx context.Context) <-chan struct{}
	WaitSynced(ctx context.Context) error
	Snapshot() *kube.Snapshot
	Healthy(ctx context.Context) error
	Metrics(ctx context.Context, now time.Time) kube.Metrics
	History(ctx context.Context, now time.Time) kube.History
	Logs(ctx context.Context, ns, pod, container string, tail int64) (io.ReadCloser, error)
	Scale(ctx context.Context, ns, name string, replicas int32) error
	Restart(ctx context.Context, ns, name string, at time.Time) error
	Undo(ctx context.Context, ns, name string, revision int64) error
	DeletePod(ctx context.Context, ns, name string) error
	Cordon(ctx context.Context, node string, unschedulable bool) error
}

var _ Cluster = (*kube.Client)(nil)

// Options configure a dashboard.
type Options struct {
	// Target says in the title bar what the dashboard shows, like
	// "profile minik" or "context kind-dev".
	Target string
	// Namespace is what the client watches; "" is all namespaces.
	Namespace string
	ReadOnly  bool
	Styles    Styles
	// Now is the clock; tests pin it so ages are stable.
	Now func() time.Time
	// MetricsEvery, HealthEvery and Debounce default to 10 s, 2 s, 100 ms;
	// HistoryEvery, how often the cluster's Prometheus is asked for the
	// last hour, to 30 s.
	MetricsEvery time.Duration
	HistoryEvery time.Duration
	HealthEvery  time.Duration
	Debounce     time.Duration
	// LogTail is how many lines a log view starts with (default 500);
	// LogLines bounds its ring buffer (default 5000).
	LogTail  int64
	LogLines int
}

func (o *Options) defaults() {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.MetricsEvery == 0 {
		o.MetricsEvery = 10 * time.Second
	}
	if o.HistoryEvery == 0 {
		o.HistoryEvery = 30 * time.Second
	}
	if o.HealthEvery == 0 {
		o.HealthEvery = 2 * time.Second
	}
	if o.Debounce == 0 {
		o.Debounce = 100 * time.Millisecond
	}
	if o.LogTail == 0 {
		o.LogTail = 500
	}
	if o.LogLines == 0 {
		o.LogLines = 5000
	}
}

// historyLen is how many metrics samples the sparklines keep: 5 minutes at
// the default 10 s poll.
const historyLen = 30

// state is what every view reads: the latest snapshot and metrics. The
// root model owns it and is the only writer.
type state struct {
	opts    Options
	styles  Styles
	keys    *KeyMap
	snap    *kube.Snapshot
	metrics *kube.Metrics // nil until the first poll returns
	// hist holds usage samples per "pod/NS/NAME/cpu", "node/NAME/mem", ...
	hist map[string][]float64
	// long is the last hour from the cluster's Prometheus, when it runs
	// one; the trends then come from it.
	long *kube.History
}

// fromPrometheus says the trends show the last hour from Prometheus.
func (s *state) fromPrometheus() bool {
	return s.long != nil && s.long.Source != "" && s.long.Err == nil
}

// trend is the sparkline's values for key: Prometheus' last hour when it
// has them, else the polls of the last minutes.
func (s *state) trend(key string) []float64 {
	if s.fromPrometheus() {
		if v, ok := s.long.Series[key]; ok {
			return v
		}
	}
	return s.hist[key]
}

// trendWindow names what the trends span, for column titles.
func (s *state) trendWindow() string {
	if s.fromPrometheus() {
		return "1h"
	}
	return "5m"
}

func (s *state) now() time.Time { return s.opts.Now() }

// addSample records one metrics poll into the sparkline history. A
// series is dropped when its object leaves the cluster, not when one poll
// lacks it (a restarted metrics API has no node rates for a while).
func (s *state) addSample(m kube.Metrics) {
	if s.hist == nil {
		s.hist = map[string][]float64{}
	}
	push := func(k string, v float64) {
		h := append(s.hist[k], v)
		if len(h) > historyLen {
			h = h[len(h)-historyLen:]
		}
		s.hist[k] = h
	}
	for k, u := range m.Pods {
		push("pod/"+k+"/cpu", float64(u.CPUMilli))
		push("pod/"+k+"/mem", float64(u.MemoryBytes))
	}
	for k, u := range m.Nodes {
		push("node/"+k+"/cpu", float64(u.CPUMilli))
		push("node/"+k+"/mem", float64(u.MemoryBytes))
	}
	s.pruneHistory()
}

// pruneHistory drops the series of pods and nodes that are gone.
func (s *state) pruneHistory() {
	if len(s.hist) == 0 || !s.snap.Synced {
		return
	}
	live := map[string]bool{}
	for _, p := range s.snap.Pods {
		live["pod/"+p.Namespace+"/"+p.Name] = true
	}
	for _, n := range s.snap.Nodes {
		live["node/"+n.Name] = true
	}
	for k := range s.hist {
		if !live[k[:strings.LastIndexByte(k, '/')]] {
			delete(s.hist, k)
		}
	}
}

// metricsServed says usage columns have data.
func (s *state) metricsServed() bool {
	return s.metrics != nil && s.metrics.Served && s.metrics.Err == nil
}

// Messages. Every I/O result reaches the model as one of these.
type (
	// watchingMsg: the informers run; ch signals changes.
	watchingMsg struct{ ch <-chan struct{} }
	// snapshotMsg: the caches changed. watched says it came from the
	// change wait, which is then re-armed (exactly one waits at a time).
	snapshotMsg struct {
		snap    *kube.Snapshot
		watched bool
	}
	healthMsg   struct{ err error }
	healthTick  struct{}
	metricsMsg  struct{ m kube.Metrics }
	metricsTick struct{}
	historyMsg  struct{ h kube.History }
	historyTick struct{}
	// actionDoneMsg: a change to the cluster finished.
	actionDoneMsg struct {
		what string
		err  error
	}
	// logStartedMsg: a log stream is open; lines arrive on ch.
	logStartedMsg struct {
		id int
		ch <-chan logLine
	}
	// logLinesMsg: lines read; ch is where more will come from.
	logLinesMsg struct {
		id    int
		ch    <-chan logLine
		lines []string
		err   error
		done  bool
	}
	// Requests from a view to the root model.
	openLogsMsg     struct{ pod podRef }
	openHistoryMsg  struct{ ns, name string }
	openDescribeMsg struct{ obj describable }
	// showPodsMsg: switch to the pods view, filtered by text (a node's
	// name) or narrowed by a scope (the pods that mount a claim).
	showPodsMsg struct {
		filter string
		scope  *scope
	}
	requestMsg struct{ a action }
	flashMsg   struct{ text string }
)

// emit wraps a message into a command, for a view to ask the root model
// to do something (open a view, start an action).
func emit(m tea.Msg) tea.Cmd { return func() tea.Msg { return m } }

// component is one screen: a top-level tab or a view opened from one.
type component interface {
	// title names the screen in the header.
	title() string
	// update handles keys and the component's own messages.
	update(msg tea.Msg) tea.Cmd
	// view renders width x height cells.
	view(width, height int) string
	// refresh rebuilds from the state after new data.
	refresh()
	// capturing says the component is reading text (a filter): keys
	// other than ctrl+c go to it, not to the global bindings.
	capturing() bool
	// close releases what the component holds (a log stream).
	close()
}
