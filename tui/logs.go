package tui

import (
	"bufio"
	"context"
	"fmt"
	"strings"

	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"
)

// ring is a bounded line buffer: the oldest lines go first.
type ring struct {
	buf   []string
	start int
	n     int
}

func newRing(size int) *ring { return &ring{buf: make([]string, size)} }

func (r *ring) push(s string) {
	if r.n < len(r.buf) {
		r.buf[(r.start+r.n)%len(r.buf)] = s
		r.n++
		return
	}
	r.buf[r.start] = s
	r.start = (r.start + 1) % len(r.buf)
}

func (r *ring) len() int        { return r.n }
func (r *ring) at(i int) string { return r.buf[(r.start+i)%len(r.buf)] }
func (r *ring) reset()          { r.start, r.n = 0, 0 }

// logLine is one line read from a stream, or the error that ended it.
type logLine struct {
	text string
	err  error
}

// logsView follows one container's log.
type logsView struct {
	s       *state
	ctx     context.Context
	cluster Cluster
	pod     podRef
	ci      int // container index
	id      int
	nextID  func() int
	lines   *ring
	follow  bool
	top     int // first line shown when not following
	xoff    int
	cancel  context.CancelFunc
	status  string
	height  int
}

func newLogsView(ctx context.Context, s *state, c Cluster, pod podRef, nextID func() int) *logsView {
	return &logsView{s: s, ctx: ctx, cluster: c, pod: pod, nextID: nextID, lines: newRing(s.opts.LogLines), follow: true, height: 10}
}

func (v *logsView) container() string {
	if len(v.pod.containers) == 0 {
		return ""
	}
	return v.pod.containers[v.ci]
}

func (v *logsView) title() string {
	return fmt.Sprintf("Logs %s/%s [%s]", v.pod.ns, v.pod.name, v.container())
}

func (v *logsView) capturing() bool { return false }
func (v *logsView) refresh()        {}

func (v *logsView) close() {
	if v.cancel != nil {
		v.cancel()
		v.cancel = nil
	}
}

// start (re)opens the stream; messages of older streams are ignored by id.
func (v *logsView) start() tea.Cmd {
	v.close()
	v.id = v.nextID()
	v.lines.reset()
	v.top, v.status = 0, "connecting"
	ctx, cancel := context.WithCancel(v.ctx)
	v.cancel = cancel
	id, c, pod, container, tail := v.id, v.cluster, v.pod, v.container(), v.s.opts.LogTail
	return func() tea.Msg {
		rc, err := c.Logs(ctx, pod.ns, pod.name, container, tail)
		if err != nil {
			return logLinesMsg{id: id, err: err, done: true}
		}
		ch := make(chan logLine, 256)
		go func() {
			defer close(ch)
			defer rc.Close()
			sc := bufio.NewScanner(rc)
			sc.Buffer(make([]byte, 64*1024), 1024*1024)
			for sc.Scan() {
				select {
				case ch <- logLine{text: sc.Text()}:
				case <-ctx.Done():
					return
				}
			}
			if err := sc.Err(); err != nil && ctx.Err() == nil {
				ch <- logLine{err: err}
			}
		}()
		return logStartedMsg{id: id, ch: ch}
	}
}

// waitLogs reads what the stream has: one line (waiting for it), then
// whatever else is already there, so a burst is one message.
func waitLogs(id int, ch <-chan logLine) tea.Cmd {
	return func() tea.Msg {
		var lines []string
		for {
			var l logLine
			var ok bool
			if len(lines) == 0 {
				l, ok = <-ch
			} else {
				select {
				case l, ok = <-ch:
				default:
					return logLinesMsg{id: id, ch: ch, lines: lines}
				}
			}
			switch {
			case !ok:
				return logLinesMsg{id: id, lines: lines, done: true}
			case l.err != nil:
				return logLinesMsg{id: id, lines: lines, err: l.err, done: true}
			}
			lines = append(lines, l.text)
			if len(lines) >= 1000 {
				return logLinesMsg{id: id, ch: ch, lines: lines}
			}
		}
	}
}

func (v *logsView) update(msg tea.Msg) tea.Cmd {
	switch msg := msg.(type) {
	case logStartedMsg:
		if msg.id != v.id {
			return nil
		}
		v.status = "streaming"
		return waitLogs(msg.id, msg.ch)
	case logLinesMsg:
		if msg.id != v.id {
			return nil
		}
		for _, l := range msg.lines {
			// Escape sequences in a log must not drive the terminal.
			v.lines.push(strings.ReplaceAll(ansi.Strip(l), "\t", "    "))
		}
		if msg.done {
			v.status = "stream ended"
			if msg.err != nil {
				v.status = "error: " + msg.err.Error()
			}
			return nil
		}
		return waitLogs(msg.id, msg.ch)
	case tea.KeyPressMsg:
		return v.key(msg)
	}
	return nil
}

func (v *logsView) key(k tea.KeyPressMsg) tea.Cmd {
	keys := v.s.keys
	maxTop := max(v.lines.len()-v.height, 0)
	switch {
	case key.Matches(k, keys.Follow):
		v.follow = !v.follow
		v.top = maxTop
	case key.Matches(k, keys.NextContainer):
		if len(v.pod.containers) > 1 {
			v.ci = (v.ci + 1) % len(v.pod.containers)
			return v.start()
		}
	case key.Matches(k, keys.Up):
		v.follow, v.top = false, v.top-1
	case key.Matches(k, keys.Down):
		v.top++
	case key.Matches(k, keys.PageUp):
		v.follow, v.top = false, v.top-v.height
	case key.Matches(k, keys.PageDown):
		v.top += v.height
	case key.Matches(k, keys.Top):
		v.follow, v.top = false, 0
	case key.Matches(k, keys.Bottom):
		v.follow = true
	case key.Matches(k, keys.Left):
		v.xoff = max(v.xoff-8, 0)
	case key.Matches(k, keys.Right):
		v.xoff += 8
	}
	if v.follow {
		v.top = maxTop
	}
	v.top = min(max(v.top, 0), maxTop)
	return nil
}

func (v *logsView) view(width, height int) string {
	height = max(height-1, 1)
	v.height = height
	n := v.lines.len()
	if v.follow {
		v.top = max(n-height, 0)
	}
	v.top = min(max(v.top, 0), max(n-height, 0))
	var out []string
	for i := v.top; i < n && i < v.top+height; i++ {
		l := v.lines.at(i)
		if v.xoff > 0 {
			l = ansi.Cut(l, v.xoff, v.xoff+width)
		}
		out = append(out, ansi.Truncate(l, width, "…"))
	}
	if n == 0 {
		out = append(out, v.s.styles.Dim.Render("  no log lines yet"))
	}
	for len(out) < height {
		out = append(out, "")
	}
	follow := "follow on"
	if !v.follow {
		follow = "follow off"
	}
	foot := fmt.Sprintf("%s · %s · %d/%d lines · f: follow  n: next container  ←/→: scroll  esc: back", v.status, follow, n, len(v.lines.buf))
	out = append(out, v.s.styles.Dim.Render(truncate(foot, width)))
	return strings.Join(out, "\n")
}
