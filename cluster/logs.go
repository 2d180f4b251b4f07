package cluster

import (
	"context"
	"fmt"
	"io"
	"strconv"

	"minik.dev/minik/drivers"
)

// NodeLogOptions say which node's log `minik logs` shows and how much.
type NodeLogOptions struct {
	// Node is the node's name; "" is the control-plane node, whose log
	// also holds the control plane's (it runs inside minik-node).
	Node string
	// Follow keeps streaming what the node appends until ctx is done.
	Follow bool
	// Tail is how many of the last lines to show; -1 (or 0) shows all.
	Tail int
}

// Validate returns an *InvalidOptionError for an option out of range.
func (o NodeLogOptions) Validate() error {
	if o.Tail < -1 {
		return &InvalidOptionError{Field: "Tail", Value: strconv.Itoa(o.Tail), Reason: "use a number of lines, or -1 for all"}
	}
	return nil
}

// NodeLog copies a node's agent log to w, through the driver. It takes no
// lock: reading a log must not wait for, nor block, another command (a
// start that hangs is when it is wanted most).
func (m *Manager) NodeLog(ctx context.Context, profile string, o NodeLogOptions, w io.Writer) error {
	if err := ValidateName(profile); err != nil {
		return err
	}
	if err := o.Validate(); err != nil {
		return err
	}
	p, err := m.store.Load(profile)
	if err != nil {
		return err
	}
	d, err := m.drivers.Get(p.Driver)
	if err != nil {
		return err
	}
	n := *p.ControlPlane()
	if o.Node != "" {
		if n, err = findNode(p, o.Node); err != nil {
			return err
		}
	}
	ls, ok := d.(drivers.NodeLogStreamer)
	if !ok {
		return fmt.Errorf("the %s driver cannot show node logs", p.Driver)
	}
	return ls.StreamNodeLog(ctx, m.driverNode(p, n), drivers.NodeLogOptions{Follow: o.Follow, Tail: max(o.Tail, 0)}, w)
}
