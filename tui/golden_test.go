package tui

import (
	"errors"
	"strings"
	"testing"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/exp/golden"
	"github.com/stretchr/testify/require"
)

// TestGolden renders the main screens at 100x30 with plain styles and
// compares them with testdata/TestGolden/*.golden; `go test ./tui -run
// TestGolden -update` rewrites them after an intended change.
func TestGolden(t *testing.T) {
	screens := []struct {
		name    string
		metrics bool
		ns      string
		keys    []string
		prep    func(t *testing.T, m *Model)
	}{
		{name: "overview"},
		{name: "overview_metrics", metrics: true},
		{name: "overview_all_namespaces", ns: "-"},
		{name: "pods", metrics: true, keys: []string{"2"}},
		{name: "pods_sorted_by_restarts_filtered", keys: []string{"2", "l", "l", "l", "o", "/", "w", "e", "b", "enter"}},
		{name: "deployments", keys: []string{"3"}},
		{name: "history", keys: []string{"3", "G", "enter"}},
		{name: "nodes", metrics: true, keys: []string{"4"}},
		{name: "volumes", keys: []string{"5"}},
		{name: "events", keys: []string{"6"}},
		{name: "logs", keys: []string{"2", "enter"}},
		{name: "describe_pod", keys: []string{"2", "d"}},
		{name: "help", keys: []string{"?"}},
		{name: "help_80x24_scrolled", keys: []string{"?", "j", "j", "j"}, prep: func(t *testing.T, m *Model) {
			m.Update(tea.WindowSizeMsg{Width: 80, Height: 24})
		}},
		{name: "scale_dialog", keys: []string{"3", "G", "s", "backspace", "5"}},
		{name: "scale_confirm", keys: []string{"3", "G", "s", "backspace", "5", "enter"}},
		{name: "disconnected", prep: func(t *testing.T, m *Model) {
			m.Update(healthMsg{err: errors.New(`apiserver /readyz: Get "https://127.0.0.1:6443/readyz": dial tcp 127.0.0.1:6443: connect: connection refused`)})
		}},
	}
	for _, sc := range screens {
		t.Run(sc.name, func(t *testing.T) {
			ns := "default"
			if sc.ns == "-" {
				ns = ""
			}
			f := newFakeCluster(t, ns, clusterObjects()...)
			if sc.metrics {
				f.serveMetrics(t, 1)
			}
			m := newModel(t, f, testOptions(ns))
			if sc.metrics {
				// Three polls, so the sparklines have a shape.
				for _, scale := range []int64{2, 3} {
					f.serveMetrics(t, scale)
					m.Update(metricsMsg{m: f.Metrics(t.Context(), now)})
				}
			}
			press(t, m, sc.keys...)
			if sc.prep != nil {
				sc.prep(t, m)
			}
			out := screen(m)
			require.NotContains(t, out, "\x1b", "plain styles emit no escape sequences")
			lines := strings.Split(out, "\n")
			require.Len(t, lines, m.height, "the frame fills the terminal exactly")
			golden.RequireEqual(t, out)
		})
	}
}
