package tui

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	tea "charm.land/bubbletea/v2"
)

// Run shows the dashboard on a terminal until the user quits or ctx ends;
// bubbletea restores the terminal either way.
func Run(ctx context.Context, c Cluster, opts Options, in io.Reader, out io.Writer) error {
	ctx, cancel := context.WithCancel(ctx)
	// Stops the informers, log streams and polls when the UI is gone.
	defer cancel()
	p := tea.NewProgram(New(ctx, c, opts), tea.WithContext(ctx), tea.WithInput(in), tea.WithOutput(out))
	if _, err := p.Run(); err != nil && !errors.Is(err, tea.ErrProgramKilled) && !errors.Is(err, context.Canceled) {
		return fmt.Errorf("dashboard: %w", err)
	}
	return nil
}

// Once writes the overview as text and returns: for CI logs. It fails
// fast when the cluster does not answer.
func Once(ctx context.Context, c Cluster, opts Options, w io.Writer, width int) error {
	opts.defaults()
	hctx, hcancel := context.WithTimeout(ctx, 10*time.Second)
	err := c.Healthy(hctx)
	hcancel()
	if err != nil {
		return fmt.Errorf("cluster not reachable: %w", err)
	}
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	c.Watch(wctx)
	if err := c.WaitSynced(wctx); err != nil {
		return fmt.Errorf("read cluster state: %w", err)
	}
	m := c.Metrics(wctx, opts.Now())
	h := c.History(wctx, opts.Now())
	s := &state{opts: opts, styles: opts.Styles, snap: c.Snapshot(), metrics: &m, long: &h}
	ns := opts.Namespace
	if ns == "" {
		ns = "all namespaces"
	} else {
		ns = "namespace " + ns
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s  %s · %s · %s\n\n", s.styles.Title.Render("minik dashboard"), opts.Target, ns,
		opts.Now().UTC().Format(time.RFC3339))
	if banner := metricsBanner(s); banner != "" {
		b.WriteString(s.styles.Banner.Render(banner) + "\n\n")
	}
	b.WriteString(renderOverview(s, width) + "\n")
	if _, err := io.WriteString(w, b.String()); err != nil {
		return fmt.Errorf("write overview: %w", err)
	}
	return nil
}
