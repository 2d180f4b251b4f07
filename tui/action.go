package tui

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"

	"minik.dev/minik/tui/kube"
)

type actionKind int

const (
	actScale actionKind = iota
	actRestart
	actUndo
	actDeletePod
	actCordon
	actUncordon
)

// action is a change to the cluster, described as data so a dialog can
// show it, a test can inspect it and run executes it.
type action struct {
	kind     actionKind
	ns, name string
	// current is the replica count shown when asking for a new one.
	current  int32
	replicas int32
	revision int64
}

func (a action) target() string {
	if a.ns == "" {
		return a.name
	}
	return a.ns + "/" + a.name
}

// question is the confirmation dialog's text.
func (a action) question() string {
	switch a.kind {
	case actScale:
		return fmt.Sprintf("Scale deployment %s from %d to %d replicas?", a.target(), a.current, a.replicas)
	case actRestart:
		return fmt.Sprintf("Restart deployment %s (new pods replace all current ones)?", a.target())
	case actUndo:
		return fmt.Sprintf("Roll deployment %s back to revision %d?", a.target(), a.revision)
	case actDeletePod:
		return fmt.Sprintf("Delete pod %s?", a.target())
	case actCordon:
		return fmt.Sprintf("Cordon node %s (no new pods will be scheduled on it)?", a.name)
	case actUncordon:
		return fmt.Sprintf("Uncordon node %s?", a.name)
	}
	return "?"
}

// done is the status bar's note after success.
func (a action) done() string {
	switch a.kind {
	case actScale:
		return fmt.Sprintf("scaled %s to %d", a.target(), a.replicas)
	case actRestart:
		return fmt.Sprintf("restarted %s", a.target())
	case actUndo:
		return fmt.Sprintf("rolled %s back to revision %d", a.target(), a.revision)
	case actDeletePod:
		return fmt.Sprintf("deleted pod %s", a.target())
	case actCordon:
		return fmt.Sprintf("cordoned %s", a.name)
	case actUncordon:
		return fmt.Sprintf("uncordoned %s", a.name)
	}
	return ""
}

// binding is the key that starts the action; read-only mode disables it.
func (a action) binding(k *KeyMap) key.Binding {
	switch a.kind {
	case actScale:
		return k.Scale
	case actRestart:
		return k.Restart
	case actUndo:
		return k.Undo
	case actDeletePod:
		return k.Delete
	}
	return k.Cordon
}

// run executes the action in a command.
func (a action) run(ctx context.Context, c Cluster, now time.Time) tea.Cmd {
	return func() tea.Msg {
		ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		var err error
		switch a.kind {
		case actScale:
			err = c.Scale(ctx, a.ns, a.name, a.replicas)
		case actRestart:
			err = c.Restart(ctx, a.ns, a.name, now)
		case actUndo:
			err = c.Undo(ctx, a.ns, a.name, a.revision)
			if errors.Is(err, kube.ErrAlreadyAtRevision) {
				return actionDoneMsg{what: fmt.Sprintf("%s already runs revision %d", a.target(), a.revision)}
			}
		case actDeletePod:
			err = c.DeletePod(ctx, a.ns, a.name)
		case actCordon, actUncordon:
			err = c.Cordon(ctx, a.name, a.kind == actCordon)
		}
		return actionDoneMsg{what: a.done(), err: err}
	}
}

// dialog asks before an action: first for a number when scaling, then
// always y/n. Nothing changes on a single key.
type dialog struct {
	a       action
	asking  bool // typing the replica count
	input   string
	problem string
}

func newDialog(a action) *dialog {
	d := &dialog{a: a}
	if a.kind == actScale {
		d.asking = true
		d.input = strconv.Itoa(int(a.current))
	}
	return d
}

// dialogResult is what a key did to the dialog.
type dialogResult int

const (
	dialogOpen dialogResult = iota
	dialogCancelled
	dialogConfirmed
)

func (d *dialog) update(msg tea.KeyPressMsg, k *KeyMap) dialogResult {
	if d.asking {
		switch s := msg.String(); {
		case s == "esc":
			return dialogCancelled
		case s == "enter":
			n, err := strconv.ParseInt(strings.TrimSpace(d.input), 10, 32)
			if err != nil || n < 0 {
				d.problem = "enter a whole number of replicas, 0 or more"
				return dialogOpen
			}
			d.a.replicas = int32(n)
			d.asking, d.problem = false, ""
		case s == "backspace":
			if len(d.input) > 0 {
				d.input = d.input[:len(d.input)-1]
			}
		case len(msg.Text) == 1 && msg.Text[0] >= '0' && msg.Text[0] <= '9':
			if len(d.input) < 6 {
				d.input += msg.Text
			}
		}
		return dialogOpen
	}
	switch {
	case key.Matches(msg, k.Confirm):
		return dialogConfirmed
	case key.Matches(msg, k.Cancel):
		return dialogCancelled
	}
	return dialogOpen
}

func (d *dialog) view(st *Styles, width int) string {
	var body string
	if d.asking {
		body = fmt.Sprintf("Scale deployment %s (now %d replicas)\n\nReplicas: %s▌\n\nenter: next   esc: cancel",
			d.a.target(), d.a.current, d.input)
		if d.problem != "" {
			body += "\n" + st.Bad.Render(d.problem)
		}
	} else {
		body = d.a.question() + "\n\ny: yes   n/esc: no"
	}
	return st.Dialog.Width(min(width-4, 72)).Render(body)
}
