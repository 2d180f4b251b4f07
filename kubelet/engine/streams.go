package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/client"

	"minik.dev/minik/nodeconfig"
)

// LogOptions selects a container's log lines.
type LogOptions struct {
	Follow bool
	// Tail is how many of the last lines to send; < 0 for all.
	Tail       int
	Since      time.Time
	Timestamps bool
}

// Logs writes the container's stdout and stderr (a TTY's one stream: to
// stdout) until the log ends (with Follow: until the container stops) or
// ctx ends; ctx ending is how a follow is cancelled, not an error. Without
// a TTY, each Write holds one record of the engine's log.
func (e *Engine) Logs(ctx context.Context, id string, o LogOptions, stdout, stderr io.Writer) error {
	// A container without a TTY has its streams multiplexed in frames;
	// with a TTY it is one raw stream.
	insp, err := e.cli.ContainerInspect(ctx, id, client.ContainerInspectOptions{})
	if err != nil {
		return wrap(err, "read logs of %s", id)
	}
	tty := insp.Container.Config != nil && insp.Container.Config.Tty
	opts := client.ContainerLogsOptions{
		ShowStdout: true,
		ShowStderr: true,
		Follow:     o.Follow,
		Timestamps: o.Timestamps,
		Tail:       "all",
	}
	if o.Tail >= 0 {
		opts.Tail = strconv.Itoa(o.Tail)
	}
	if !o.Since.IsZero() {
		opts.Since = unixNano(o.Since.UnixNano())
	}
	rc, err := e.cli.ContainerLogs(ctx, id, opts)
	if err != nil {
		return wrap(err, "read logs of %s", id)
	}
	defer rc.Close()
	if tty {
		_, err = io.Copy(stdout, rc)
	} else {
		// StdCopy writes each frame, one log record, in one Write.
		_, err = stdcopy.StdCopy(stdout, stderr, rc)
	}
	if err != nil && ctx.Err() == nil {
		return fmt.Errorf("read logs of %s: %w", id, err)
	}
	return nil
}

// unixNano formats a time as the engine's "seconds.nanoseconds".
func unixNano(ns int64) string {
	return fmt.Sprintf("%d.%09d", ns/1e9, ns%1e9)
}

// Size is a terminal size.
type Size struct{ Width, Height uint }

// Exec runs cmd in a running container and returns its exit code. stdin
// (nil for none) is copied to the process and closed after its EOF; the
// process's output goes to stdout and stderr (either may be nil; with tty
// both streams arrive on stdout). Sizes from resize are applied to the
// tty. Exec returns when the process's output ends or ctx ends; a stdin
// that never returns from Read is the caller's to unblock.
func (e *Engine) Exec(ctx context.Context, id string, cmd []string, stdin io.Reader, stdout, stderr io.Writer, tty bool, resize <-chan Size) (int, error) {
	created, err := e.cli.ExecCreate(ctx, id, client.ExecCreateOptions{
		Cmd:          cmd,
		TTY:          tty,
		AttachStdin:  stdin != nil,
		AttachStdout: true,
		AttachStderr: true,
	})
	if err != nil {
		return -1, wrap(err, "exec in %s", id)
	}
	att, err := e.cli.ExecAttach(ctx, created.ID, client.ExecAttachOptions{TTY: tty})
	if err != nil {
		return -1, wrap(err, "exec in %s", id)
	}
	err = e.stream(ctx, att.HijackedResponse, stdin, stdout, stderr, tty, resize, func(s Size) {
		_, _ = e.cli.ExecResize(ctx, created.ID, client.ExecResizeOptions{Width: s.Width, Height: s.Height})
	})
	if ctx.Err() != nil {
		return -1, fmt.Errorf("exec in %s: %w", id, ctx.Err())
	}
	if err != nil {
		return -1, fmt.Errorf("exec in %s: %w", id, err)
	}
	// The stream can end a moment before the engine records the exit code.
	for {
		res, err := e.cli.ExecInspect(ctx, created.ID, client.ExecInspectOptions{})
		if err != nil {
			return -1, wrap(err, "exec in %s", id)
		}
		if !res.Running {
			return res.ExitCode, nil
		}
		select {
		case <-ctx.Done():
			return -1, fmt.Errorf("exec in %s: %w", id, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// Attach joins a running container's own stdin, stdout and stderr (as
// `kubectl attach` and `kubectl run -it` do) until its output ends or ctx
// ends. Sizes from resize are applied to its tty.
func (e *Engine) Attach(ctx context.Context, id string, stdin io.Reader, stdout, stderr io.Writer, tty bool, resize <-chan Size) error {
	att, err := e.cli.ContainerAttach(ctx, id, client.ContainerAttachOptions{
		Stream: true, Stdin: stdin != nil, Stdout: true, Stderr: true,
	})
	if err != nil {
		return wrap(err, "attach to %s", id)
	}
	err = e.stream(ctx, att.HijackedResponse, stdin, stdout, stderr, tty, resize, func(s Size) {
		_, _ = e.cli.ContainerResize(ctx, id, client.ContainerResizeOptions{Width: s.Width, Height: s.Height})
	})
	if err != nil && ctx.Err() == nil {
		return fmt.Errorf("attach to %s: %w", id, err)
	}
	return nil
}

// stream copies between a hijacked connection and the caller's streams
// until the output ends or ctx ends: stdin (nil for none) goes in and is
// half-closed after its EOF; output is demultiplexed unless a tty merges
// it; sizes from resize go to resizeTo. A stdin that never returns from
// Read is the caller's to unblock.
func (e *Engine) stream(ctx context.Context, att client.HijackedResponse, stdin io.Reader, stdout, stderr io.Writer, tty bool, resize <-chan Size, resizeTo func(Size)) error {
	defer att.Close()
	if stdout == nil {
		stdout = io.Discard
	}
	if stderr == nil {
		stderr = io.Discard
	}
	// The hijacked connection outlives the request's ctx: close it when
	// ctx ends so the copies below return.
	stop := context.AfterFunc(ctx, att.Close)
	defer stop()
	done := make(chan struct{})
	defer close(done)
	if stdin != nil {
		go func() {
			_, _ = io.Copy(att.Conn, stdin)
			// The process sees EOF on its stdin only when we half-close.
			_ = att.CloseWrite()
		}()
	}
	if resize != nil {
		go func() {
			for {
				select {
				case <-done:
					return
				case s, ok := <-resize:
					if !ok {
						return
					}
					// A resize that races the process's start or end fails
					// harmlessly; the next one applies.
					resizeTo(s)
				}
			}
		}()
	}
	var err error
	if tty {
		_, err = io.Copy(stdout, att.Reader)
	} else {
		_, err = stdcopy.StdCopy(stdout, stderr, att.Reader)
	}
	return err
}

// Stats samples a running container's usage: cumulative CPU time in
// nanoseconds and its memory working set, which is usage minus inactive
// file pages as the kubelet computes it (cgroup v1 calls them
// total_inactive_file, v2 inactive_file).
func (e *Engine) Stats(ctx context.Context, id string) (Stats, error) {
	res, err := e.cli.ContainerStats(ctx, id, client.ContainerStatsOptions{})
	if err != nil {
		return Stats{}, wrap(err, "read stats of %s", id)
	}
	defer res.Body.Close()
	var s container.StatsResponse
	if err := json.NewDecoder(res.Body).Decode(&s); err != nil {
		return Stats{}, fmt.Errorf("read stats of %s: %w", id, err)
	}
	return statsOf(s), nil
}

// Stats is one sample of a container's counters.
type Stats struct {
	CPUNanos uint64
	// WorkingSet is usage less inactive file pages, as the kubelet counts it.
	WorkingSet, MemoryUsage, RSS uint64
	// Network is the sum over the container's interfaces (an app
	// container reports its sandbox's, which it shares); nil when the
	// engine reports none.
	Network *NetworkStats
	// ReadBytes and WriteBytes are the block I/O of the container.
	ReadBytes, WriteBytes uint64
}

// NetworkStats are interface counters.
type NetworkStats struct {
	RxBytes, RxPackets, RxErrors, RxDropped uint64
	TxBytes, TxPackets, TxErrors, TxDropped uint64
}

func statsOf(s container.StatsResponse) Stats {
	out := Stats{CPUNanos: s.CPUStats.CPUUsage.TotalUsage, MemoryUsage: s.MemoryStats.Usage}
	inactive, ok := s.MemoryStats.Stats["total_inactive_file"]
	if !ok {
		inactive = s.MemoryStats.Stats["inactive_file"]
	}
	if inactive < out.MemoryUsage {
		out.WorkingSet = out.MemoryUsage - inactive
	}
	// cgroup v2 calls it anon, v1 rss.
	if rss, ok := s.MemoryStats.Stats["anon"]; ok {
		out.RSS = rss
	} else {
		out.RSS = s.MemoryStats.Stats["rss"]
	}
	if len(s.Networks) > 0 {
		n := &NetworkStats{}
		for _, i := range s.Networks {
			n.RxBytes += i.RxBytes
			n.RxPackets += i.RxPackets
			n.RxErrors += i.RxErrors
			n.RxDropped += i.RxDropped
			n.TxBytes += i.TxBytes
			n.TxPackets += i.TxPackets
			n.TxErrors += i.TxErrors
			n.TxDropped += i.TxDropped
		}
		out.Network = n
	}
	for _, b := range s.BlkioStats.IoServiceBytesRecursive {
		switch strings.ToLower(b.Op) {
		case "read":
			out.ReadBytes += b.Value
		case "write":
			out.WriteBytes += b.Value
		}
	}
	return out
}

// Event is a start, die or oom of one of this node's pod containers.
type Event struct {
	ID     string
	PodUID string
	// Container is the app container's name ("" for a sandbox).
	Container string
	// Kind is nodeconfig.KindSandbox or nodeconfig.KindContainer.
	Kind string
	// Action is "start", "die" or "oom".
	Action string
}

// eventRetry is how long Events waits before it reconnects.
const eventRetry = time.Second

// Events streams start, die and oom events of this node's pod containers
// until ctx ends, then closes the channel. A broken stream is reopened
// from the time of the last event received, so a reconnect loses nothing;
// consumers should still relist now and then, as events are hints.
func (e *Engine) Events(ctx context.Context) <-chan Event {
	out := make(chan Event, 64)
	go func() {
		defer close(out)
		var last int64            // TimeNano of the newest event sent
		seen := map[string]bool{} // events sent at exactly last
		for {
			f := labelFilter(map[string]string{
				nodeconfig.LabelCluster: e.cluster,
				nodeconfig.LabelNode:    e.node,
			})
			f.Add("type", string(events.ContainerEventType))
			f.Add("event", string(events.ActionStart), string(events.ActionDie), string(events.ActionOOM))
			opts := client.EventsListOptions{Filters: f}
			if last > 0 {
				opts.Since = unixNano(last)
			}
			sctx, cancel := context.WithCancel(ctx)
			res := e.cli.Events(sctx, opts)
			// The stream ends on ctx or when it breaks (an engine restart, a
			// proxy's timeout); a broken one is reopened after eventRetry.
			func() {
				for {
					select {
					case <-ctx.Done():
						return
					case <-res.Err:
						return
					case m := <-res.Messages:
						kind := m.Actor.Attributes[nodeconfig.LabelKind]
						if kind != nodeconfig.KindSandbox && kind != nodeconfig.KindContainer {
							continue
						}
						key := m.Actor.ID + "/" + string(m.Action)
						if m.TimeNano < last || (m.TimeNano == last && seen[key]) {
							continue // replayed after a reconnect
						}
						if m.TimeNano > last {
							last = m.TimeNano
							clear(seen)
						}
						seen[key] = true
						ev := Event{
							ID:        m.Actor.ID,
							PodUID:    m.Actor.Attributes[nodeconfig.LabelPodUID],
							Container: m.Actor.Attributes[nodeconfig.LabelContainer],
							Kind:      kind,
							Action:    string(m.Action),
						}
						select {
						case out <- ev:
						case <-ctx.Done():
							return
						}
					}
				}
			}()
			cancel()
			if ctx.Err() != nil {
				return
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(eventRetry):
			}
		}
	}()
	return out
}
