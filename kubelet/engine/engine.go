// Package engine is the Docker Engine side of the node agent's docker
// runtime: each pod is a sandbox container on the cluster's network (its
// address is the pod IP) plus one container per app container, joined to
// the sandbox's network and IPC namespaces. Everything it makes carries
// minik's labels, so the engine, not a private database, says which pod
// containers and volumes exist and whose they are.
package engine

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"

	"minik.dev/minik/nodeconfig"
)

// ErrNotFound is returned (wrapped) when a container the caller named does
// not exist.
var ErrNotFound = errors.New("not found")

// Engine runs one node's pod containers.
type Engine struct {
	cli     *client.Client
	cluster string
	node    string
	cfg     nodeconfig.DockerRuntime
}

// New connects to cfg.Host ("" for DOCKER_HOST or the default socket). The
// API version is negotiated with a ping, so an engine that does not answer
// fails here rather than on the first pod.
func New(ctx context.Context, cluster, node string, cfg nodeconfig.DockerRuntime) (*Engine, error) {
	cli, err := Dial(ctx, cfg.Host)
	if err != nil {
		return nil, err
	}
	return &Engine{cli: cli, cluster: cluster, node: node, cfg: cfg}, nil
}

// Dial connects to the engine at host ("" for DOCKER_HOST or the default
// socket) and negotiates the API version with a ping.
func Dial(ctx context.Context, host string) (*client.Client, error) {
	opts := []client.Opt{client.FromEnv}
	if host != "" {
		opts = append(opts, client.WithHost(host))
	}
	cli, err := client.New(opts...)
	if err != nil {
		return nil, fmt.Errorf("connect to docker engine: %w", err)
	}
	if _, err := cli.Ping(ctx, client.PingOptions{NegotiateAPIVersion: true}); err != nil {
		_ = cli.Close()
		return nil, fmt.Errorf("connect to docker engine: %w", err)
	}
	return cli, nil
}

// Close releases the engine connection.
func (e *Engine) Close() error {
	if err := e.cli.Close(); err != nil {
		return fmt.Errorf("close docker client: %w", err)
	}
	return nil
}

// Client is the underlying engine client, for what this package does not
// wrap.
func (e *Engine) Client() *client.Client { return e.cli }

// State is what the engine says about one container.
type State struct {
	// Status is the engine's word: created, running, exited, ...
	Status     string
	Running    bool
	ExitCode   int
	StartedAt  time.Time
	FinishedAt time.Time
	OOMKilled  bool
	// Error is the engine's message when the container could not start.
	Error   string
	ImageID string
	// Reason is a Kubernetes-style reason for a container that is not
	// running: Completed, Error, OOMKilled, StartError or Created.
	Reason string
}

// StartError is the reason of a run that could not start, with the
// engine's message: the kubelet's word for it.
const StartError = "StartError"

// Start starts a created (or stopped) container.
func (e *Engine) Start(ctx context.Context, id string) error {
	if _, err := e.cli.ContainerStart(ctx, id, client.ContainerStartOptions{}); err != nil {
		return wrap(err, "start container %s", id)
	}
	return nil
}

// Stop sends SIGTERM and, if the container is still running after grace,
// SIGKILL. A container that is not running is left as it is.
func (e *Engine) Stop(ctx context.Context, id string, grace time.Duration) error {
	// The engine counts whole seconds: round up so grace is never cut short.
	secs := int((grace + time.Second - 1) / time.Second)
	if secs < 0 {
		secs = 0
	}
	if _, err := e.cli.ContainerStop(ctx, id, client.ContainerStopOptions{Signal: "SIGTERM", Timeout: &secs}); err != nil {
		return wrap(err, "stop container %s", id)
	}
	return nil
}

// Remove force-removes a container and its anonymous volumes; a container
// that is already gone, or that another request is removing, is not an
// error.
func (e *Engine) Remove(ctx context.Context, id string) error {
	_, err := e.cli.ContainerRemove(ctx, id, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true})
	if err != nil && !cerrdefs.IsNotFound(err) && !(cerrdefs.IsConflict(err) && strings.Contains(err.Error(), "already in progress")) {
		return fmt.Errorf("remove container %s: %w", id, err)
	}
	return nil
}

// Inspect returns a container's state; ErrNotFound when it does not exist.
func (e *Engine) Inspect(ctx context.Context, id string) (State, error) {
	res, err := e.cli.ContainerInspect(ctx, id, client.ContainerInspectOptions{})
	if err != nil {
		return State{}, wrap(err, "inspect container %s", id)
	}
	return stateOf(res.Container), nil
}

func stateOf(c container.InspectResponse) State {
	st := State{ImageID: c.Image}
	if c.State == nil {
		return st
	}
	s := c.State
	st.Status = string(s.Status)
	st.Running = s.Running
	st.ExitCode = s.ExitCode
	st.OOMKilled = s.OOMKilled
	st.Error = s.Error
	st.StartedAt = parseTime(s.StartedAt)
	st.FinishedAt = parseTime(s.FinishedAt)
	// The engine stamps a start once its start call returns: a process
	// that ended at once can show an end before its start (seen in CI).
	if !st.FinishedAt.IsZero() && st.FinishedAt.Before(st.StartedAt) {
		st.FinishedAt = st.StartedAt
	}
	switch {
	case s.Running:
	case s.OOMKilled:
		st.Reason = "OOMKilled"
	case s.Error != "":
		// A run that could not start (the engine leaves it "created",
		// exit code 128) ended, as the kubelet reports containerd's: so
		// the restart policy applies to it.
		st.Status, st.Reason = string(container.StateExited), StartError
	case st.StartedAt.IsZero():
		st.Reason = "Created"
	case s.ExitCode == 0:
		st.Reason = "Completed"
	default:
		st.Reason = "Error"
	}
	return st
}

// parseTime reads the engine's timestamps; the engine writes Go's zero
// time for "never", which stays the zero time.Time.
func parseTime(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil || t.Year() <= 1 {
		return time.Time{}
	}
	return t
}

// wrap adds what was being done to an engine error, and makes a missing
// object match ErrNotFound so callers need not know the client's errors.
func wrap(err error, format string, args ...any) error {
	msg := fmt.Sprintf(format, args...)
	if cerrdefs.IsNotFound(err) {
		return fmt.Errorf("%s: %w: %w", msg, ErrNotFound, err)
	}
	return fmt.Errorf("%s: %w", msg, err)
}

// labelFilter matches every key=value of labels.
func labelFilter(labels map[string]string) client.Filters {
	f := client.Filters{}
	for k, v := range labels {
		f.Add("label", k+"="+v)
	}
	return f
}

func atoi(s string) int {
	n, _ := strconv.Atoi(s)
	return n
}

// Version is the engine's version, which a node reports as its container
// runtime's.
func (e *Engine) Version(ctx context.Context) (string, error) {
	v, err := e.cli.ServerVersion(ctx, client.ServerVersionOptions{})
	if err != nil {
		return "", fmt.Errorf("ask the engine its version: %w", err)
	}
	return v.Version, nil
}
