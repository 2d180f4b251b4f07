package tui

import "charm.land/bubbles/v2/key"

// KeyMap is every key binding of the dashboard, in one place: the views
// match against it and the help overlay lists it, so the two cannot drift.
type KeyMap struct {
	Up, Down, Left, Right key.Binding
	Top, Bottom           key.Binding
	PageUp, PageDown      key.Binding
	NextView, PrevView    key.Binding
	Overview, Pods        key.Binding
	Deployments, Nodes    key.Binding
	Volumes, Events       key.Binding
	Enter, Back           key.Binding
	Filter, Reverse       key.Binding
	Describe              key.Binding
	Scale, Restart, Undo  key.Binding
	Delete, Cordon        key.Binding
	Follow, NextContainer key.Binding
	Confirm, Cancel       key.Binding
	Help, Quit, ForceQuit key.Binding
}

// DefaultKeyMap is the dashboard's key map; readOnly disables (and so hides
// from help) every binding that changes the cluster.
func DefaultKeyMap(readOnly bool) KeyMap {
	k := KeyMap{
		Up:            key.NewBinding(key.WithKeys("up", "k"), key.WithHelp("↑/k", "up")),
		Down:          key.NewBinding(key.WithKeys("down", "j"), key.WithHelp("↓/j", "down")),
		Left:          key.NewBinding(key.WithKeys("left", "h"), key.WithHelp("←/h", "sort by left column; scroll")),
		Right:         key.NewBinding(key.WithKeys("right", "l"), key.WithHelp("→/l", "sort by right column; scroll")),
		Top:           key.NewBinding(key.WithKeys("g", "home"), key.WithHelp("g/home", "first row")),
		Bottom:        key.NewBinding(key.WithKeys("G", "end"), key.WithHelp("G/end", "last row")),
		PageUp:        key.NewBinding(key.WithKeys("pgup", "ctrl+u"), key.WithHelp("pgup/ctrl+u", "page up")),
		PageDown:      key.NewBinding(key.WithKeys("pgdown", "ctrl+f", "ctrl+d"), key.WithHelp("pgdn/ctrl+d", "page down")),
		NextView:      key.NewBinding(key.WithKeys("tab"), key.WithHelp("tab", "next view")),
		PrevView:      key.NewBinding(key.WithKeys("shift+tab"), key.WithHelp("shift+tab", "previous view")),
		Overview:      key.NewBinding(key.WithKeys("1"), key.WithHelp("1", "overview")),
		Pods:          key.NewBinding(key.WithKeys("2"), key.WithHelp("2", "pods")),
		Deployments:   key.NewBinding(key.WithKeys("3"), key.WithHelp("3", "deployments")),
		Nodes:         key.NewBinding(key.WithKeys("4"), key.WithHelp("4", "nodes")),
		Volumes:       key.NewBinding(key.WithKeys("5"), key.WithHelp("5", "volumes")),
		Events:        key.NewBinding(key.WithKeys("6"), key.WithHelp("6", "events")),
		Enter:         key.NewBinding(key.WithKeys("enter"), key.WithHelp("enter", "logs / history / pods")),
		Back:          key.NewBinding(key.WithKeys("esc"), key.WithHelp("esc", "back; clear filter")),
		Filter:        key.NewBinding(key.WithKeys("/"), key.WithHelp("/", "filter rows")),
		Reverse:       key.NewBinding(key.WithKeys("o"), key.WithHelp("o", "reverse sort order")),
		Describe:      key.NewBinding(key.WithKeys("d", "y"), key.WithHelp("d/y", "describe: YAML and events")),
		Scale:         key.NewBinding(key.WithKeys("s"), key.WithHelp("s", "scale deployment")),
		Restart:       key.NewBinding(key.WithKeys("r"), key.WithHelp("r", "rollout restart deployment")),
		Undo:          key.NewBinding(key.WithKeys("u"), key.WithHelp("u", "undo rollout; to selected revision")),
		Delete:        key.NewBinding(key.WithKeys("x"), key.WithHelp("x", "delete pod")),
		Cordon:        key.NewBinding(key.WithKeys("c"), key.WithHelp("c", "cordon/uncordon node")),
		Follow:        key.NewBinding(key.WithKeys("f"), key.WithHelp("f", "logs: follow on/off")),
		NextContainer: key.NewBinding(key.WithKeys("n"), key.WithHelp("n", "logs: next container")),
		Confirm:       key.NewBinding(key.WithKeys("y"), key.WithHelp("y", "dialog: confirm")),
		Cancel:        key.NewBinding(key.WithKeys("n", "esc"), key.WithHelp("n/esc", "dialog: cancel")),
		Help:          key.NewBinding(key.WithKeys("?"), key.WithHelp("?", "help on/off")),
		Quit:          key.NewBinding(key.WithKeys("q"), key.WithHelp("q", "quit")),
		ForceQuit:     key.NewBinding(key.WithKeys("ctrl+c"), key.WithHelp("ctrl+c", "quit (also while typing)")),
	}
	if readOnly {
		for _, b := range k.actions() {
			b.SetEnabled(false)
		}
	}
	return k
}

// tabs are the bindings that pick a view, in the order of the tabs.
func (k *KeyMap) tabs() []key.Binding {
	return []key.Binding{k.Overview, k.Pods, k.Deployments, k.Nodes, k.Volumes, k.Events}
}

// actions are the bindings that change the cluster.
func (k *KeyMap) actions() []*key.Binding {
	return []*key.Binding{&k.Scale, &k.Restart, &k.Undo, &k.Delete, &k.Cordon}
}

// ShortHelp is the status bar's reminder, in a word each.
func (k KeyMap) ShortHelp() []key.Binding {
	short := func(b key.Binding, desc string) key.Binding {
		b.SetHelp(b.Help().Key, desc)
		return b
	}
	return []key.Binding{short(k.Help, "help"), short(k.NextView, "views"), short(k.Enter, "open"),
		short(k.Filter, "filter"), short(k.Quit, "quit")}
}

// FullHelp is the help overlay, one column per group (helpGroupTitles).
func (k KeyMap) FullHelp() [][]key.Binding {
	return [][]key.Binding{
		{k.Up, k.Down, k.Left, k.Right, k.Top, k.Bottom, k.PageUp, k.PageDown},
		{k.NextView, k.PrevView, k.Overview, k.Pods, k.Deployments, k.Nodes, k.Volumes, k.Events, k.Enter, k.Back},
		{k.Filter, k.Reverse, k.Describe, k.Follow, k.NextContainer, k.Help, k.Quit, k.ForceQuit},
		{k.Scale, k.Restart, k.Undo, k.Delete, k.Cordon, k.Confirm, k.Cancel},
	}
}

var helpGroupTitles = []string{"Move", "Views", "Inspect", "Actions (ask first)"}
