package tui

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"
	"charm.land/lipgloss/v2"
	"github.com/charmbracelet/x/ansi"
)

// column is one table column.
type column struct {
	title string
	// flex columns give up width first when the screen is narrow.
	flex  bool
	right bool
}

// tone colours a whole row.
type tone int

const (
	toneNormal tone = iota
	toneOK
	toneWarn
	toneBad
	toneDim
)

// sortKey is a cell's value for sorting: numbers sort as numbers.
type sortKey struct {
	s   string
	n   float64
	num bool
}

func str(s string) sortKey  { return sortKey{s: strings.ToLower(s)} }
func num(n float64) sortKey { return sortKey{n: n, num: true} }
func numi(n int64) sortKey  { return num(float64(n)) }
func (a sortKey) cmp(b sortKey) int {
	if a.num && b.num {
		return cmp.Compare(a.n, b.n)
	}
	return strings.Compare(a.s, b.s)
}

// row is one table row; key identifies its object across refreshes.
type row struct {
	key   string
	cells []string
	sort  []sortKey
	tone  tone
	obj   any
}

// scope narrows a table to the rows whose object keep accepts, like the
// pods that mount one claim: an exact match the text filter cannot make.
// name says what the table is narrowed to, in the footer.
type scope struct {
	name string
	keep func(obj any) bool
}

// table is the list component every list view embeds: rows sorted by a
// chosen column, filtered by `/` (and a scope, if set), with the selection
// kept on the same object when the data changes underneath.
type table struct {
	cols      []column
	all       []row
	rows      []row
	cursor    int
	offset    int
	sortCol   int
	desc      bool
	filter    string
	filtering bool
	scope     *scope
	empty     string
	// page is how many rows the last render showed, for page up/down.
	page int
}

func newTable(empty string, sortCol int, desc bool, cols ...column) table {
	return table{cols: cols, sortCol: sortCol, desc: desc, empty: empty, page: 10}
}

// setRows replaces the data, keeping the selected object selected.
func (t *table) setRows(rows []row) {
	sel := ""
	if r := t.selected(); r != nil {
		sel = r.key
	}
	t.all = rows
	t.apply(sel)
}

// apply filters and sorts, then puts the cursor back on key if it is
// still visible.
func (t *table) apply(key string) {
	f := strings.ToLower(t.filter)
	t.rows = t.rows[:0]
	for _, r := range t.all {
		if t.scope != nil && !t.scope.keep(r.obj) {
			continue
		}
		if f == "" || strings.Contains(strings.ToLower(strings.Join(r.cells, " ")), f) {
			t.rows = append(t.rows, r)
		}
	}
	c := t.sortCol
	slices.SortStableFunc(t.rows, func(a, b row) int {
		if c < len(a.sort) && c < len(b.sort) {
			if d := a.sort[c].cmp(b.sort[c]); d != 0 {
				if t.desc {
					return -d
				}
				return d
			}
		}
		return strings.Compare(a.key, b.key)
	})
	if key != "" {
		for i, r := range t.rows {
			if r.key == key {
				t.cursor = i
				break
			}
		}
	}
	t.clamp()
}

func (t *table) clamp() {
	t.cursor = min(max(t.cursor, 0), max(len(t.rows)-1, 0))
}

func (t *table) selected() *row {
	if t.cursor < 0 || t.cursor >= len(t.rows) {
		return nil
	}
	return &t.rows[t.cursor]
}

// clearFilter drops the filter and the scope, reporting whether there was
// one (esc clears a filter before it closes a view).
func (t *table) clearFilter() bool {
	if t.filter == "" && t.scope == nil {
		return false
	}
	sel := ""
	if r := t.selected(); r != nil {
		sel = r.key
	}
	t.filter, t.scope = "", nil
	t.apply(sel)
	return true
}

// capturing says the filter input has the keyboard.
func (t *table) capturing() bool { return t.filtering }

// handleKey moves, sorts and filters; it reports whether it used the key.
func (t *table) handleKey(msg tea.KeyPressMsg, k *KeyMap) bool {
	if t.filtering {
		return t.filterKey(msg)
	}
	sel := ""
	if r := t.selected(); r != nil {
		sel = r.key
	}
	switch {
	case key.Matches(msg, k.Up):
		t.cursor--
	case key.Matches(msg, k.Down):
		t.cursor++
	case key.Matches(msg, k.Top):
		t.cursor = 0
	case key.Matches(msg, k.Bottom):
		t.cursor = len(t.rows) - 1
	case key.Matches(msg, k.PageUp):
		t.cursor -= t.page
	case key.Matches(msg, k.PageDown):
		t.cursor += t.page
	case key.Matches(msg, k.Left):
		t.sortCol = (t.sortCol + len(t.cols) - 1) % len(t.cols)
		t.apply(sel)
	case key.Matches(msg, k.Right):
		t.sortCol = (t.sortCol + 1) % len(t.cols)
		t.apply(sel)
	case key.Matches(msg, k.Reverse):
		t.desc = !t.desc
		t.apply(sel)
	case key.Matches(msg, k.Filter):
		t.filtering = true
	default:
		return false
	}
	t.clamp()
	return true
}

func (t *table) filterKey(msg tea.KeyPressMsg) bool {
	sel := ""
	if r := t.selected(); r != nil {
		sel = r.key
	}
	switch msg.String() {
	case "enter":
		t.filtering = false
	case "esc":
		t.filtering = false
		t.filter = ""
	case "backspace":
		if r := []rune(t.filter); len(r) > 0 {
			t.filter = string(r[:len(r)-1])
		}
	default:
		if msg.Text == "" {
			return true
		}
		t.filter += msg.Text
	}
	t.apply(sel)
	return true
}

// view renders the table into width x height cells.
func (t *table) view(st *Styles, width, height int) string {
	footer := ""
	if t.filtering || t.filter != "" || t.scope != nil {
		var parts []string
		if t.scope != nil {
			parts = append(parts, t.scope.name)
		}
		if t.filtering || t.filter != "" {
			cursor := ""
			if t.filtering {
				cursor = "▌"
			}
			parts = append(parts, "filter: "+t.filter+cursor)
		}
		footer = fmt.Sprintf("%s  (%d of %d)", strings.Join(parts, " · "), len(t.rows), len(t.all))
		height--
	}
	widths := t.widths(width)
	var lines []string
	lines = append(lines, st.Header.Render(t.line(t.headerCells(), widths, "  ")))
	bodyH := max(height-1, 1)
	t.page = bodyH
	if t.cursor < t.offset {
		t.offset = t.cursor
	}
	if t.cursor >= t.offset+bodyH {
		t.offset = t.cursor - bodyH + 1
	}
	t.offset = min(t.offset, max(len(t.rows)-bodyH, 0))
	if len(t.rows) == 0 {
		msg := t.empty
		switch {
		case len(t.all) > 0 && t.filter == "" && t.scope != nil:
			msg = "no row matches " + t.scope.name
		case len(t.all) > 0:
			msg = "no row matches the filter"
		}
		lines = append(lines, st.Dim.Render("  "+msg))
	}
	for i := t.offset; i < len(t.rows) && i < t.offset+bodyH; i++ {
		r := t.rows[i]
		if i == t.cursor {
			lines = append(lines, st.Selected.Render(t.line(r.cells, widths, "› ")))
			continue
		}
		lines = append(lines, toneStyle(st, r.tone).Render(t.line(r.cells, widths, "  ")))
	}
	for len(lines) < height {
		lines = append(lines, "")
	}
	if footer != "" {
		lines = append(lines, footer)
	}
	return strings.Join(lines, "\n")
}

// staticTable renders rows under a header, fitted to width as a table is
// (flex columns shrink, then columns drop from the right), without
// selection or sorting: for short read-only lists under a view's table.
// tones style whole rows.
func staticTable(st *Styles, cols []column, rows [][]string, tones []tone, width int) []string {
	t := newTable("", -1, false, cols...)
	for _, r := range rows {
		t.all = append(t.all, row{cells: r})
	}
	w := t.widths(width)
	out := []string{st.Header.Render(t.line(t.headerCells(), w, "  "))}
	for i, r := range rows {
		tn := toneNormal
		if i < len(tones) {
			tn = tones[i]
		}
		out = append(out, toneStyle(st, tn).Render(t.line(r, w, "  ")))
	}
	return out
}

func toneStyle(st *Styles, t tone) lipgloss.Style {
	switch t {
	case toneOK:
		return st.OK
	case toneWarn:
		return st.Warn
	case toneBad:
		return st.Bad
	case toneDim:
		return st.Dim
	}
	return lipgloss.NewStyle()
}

func (t *table) headerCells() []string {
	h := make([]string, len(t.cols))
	for i, c := range t.cols {
		h[i] = c.title
		if i == t.sortCol {
			if t.desc {
				h[i] += "↓"
			} else {
				h[i] += "↑"
			}
		}
	}
	return h
}

// widths fits the columns to width: flex columns shrink first (never below
// their title), then columns that still do not fit are dropped from the
// right (width 0).
func (t *table) widths(width int) []int {
	w := make([]int, len(t.cols))
	for i, h := range t.headerCells() {
		w[i] = lipgloss.Width(h)
	}
	for _, r := range t.all {
		for i, c := range r.cells {
			if i < len(w) {
				w[i] = max(w[i], lipgloss.Width(c))
			}
		}
	}
	total := func() int {
		n, cols := 2, 0
		for _, x := range w {
			if x > 0 {
				n += x
				cols++
			}
		}
		return n + 2*max(cols-1, 0)
	}
	for i, c := range t.cols {
		if over := total() - width; over > 0 && c.flex {
			w[i] = max(w[i]-over, lipgloss.Width(c.title)+1, min(w[i], 12))
		}
	}
	for i := len(w) - 1; i > 0 && total() > width; i-- {
		w[i] = 0
	}
	return w
}

func (t *table) line(cells []string, widths []int, marker string) string {
	var b strings.Builder
	b.WriteString(marker)
	first := true
	for i, wd := range widths {
		if wd == 0 {
			continue
		}
		if !first {
			b.WriteString("  ")
		}
		first = false
		c := ""
		if i < len(cells) {
			c = cells[i]
		}
		c = ansi.Truncate(c, wd, "…")
		pad := strings.Repeat(" ", wd-lipgloss.Width(c))
		if t.cols[i].right {
			b.WriteString(pad + c)
		} else {
			b.WriteString(c + pad)
		}
	}
	return strings.TrimRight(b.String(), " ")
}
