package docker

import (
	"context"
	"io"
	"time"

	"minik.dev/minik/kubelet/engine"
)

// Engine is what the docker runtime asks of the container engine: pod
// sandboxes and containers, their state, streams and stats. *engine.Engine
// is the real one; tests use a fake.
type Engine interface {
	Version(ctx context.Context) (string, error)
	ImagePresent(ctx context.Context, image string) (imageID string, ok bool, err error)
	PullImage(ctx context.Context, image string) error
	// ImageUser is the user an image runs as ("" for root).
	ImageUser(ctx context.Context, image string) (string, error)

	RunSandbox(ctx context.Context, spec engine.SandboxSpec) (id, ip string, err error)
	CreateContainer(ctx context.Context, spec engine.ContainerSpec) (string, error)
	Start(ctx context.Context, id string) error
	Stop(ctx context.Context, id string, grace time.Duration) error
	// UpdateResources resizes a running container in place.
	UpdateResources(ctx context.Context, id string, r engine.Resources) error
	Remove(ctx context.Context, id string) error
	Inspect(ctx context.Context, id string) (engine.State, error)
	EnsureVolume(ctx context.Context, podUID, name string, o engine.EmptyDir) (string, error)
	EnsureNodeVolume(ctx context.Context, path string) (string, error)
	// WriteVolumeFiles writes a generation of a file volume through the
	// pod's sandbox.
	WriteVolumeFiles(ctx context.Context, sandboxID, volume, gen string, files []engine.File) error
	// EnsureImageVolume returns a volume that holds an image's file tree.
	EnsureImageVolume(ctx context.Context, podUID, name, image string) (string, error)

	// List, RemovePod and RemoveOrphans act on the pod containers of this
	// node (RemoveOrphans: of the cluster's lost nodes).
	List(ctx context.Context) ([]engine.PodContainer, error)
	RemovePod(ctx context.Context, podUID string) error
	RemoveOrphans(ctx context.Context) (int, error)
	Events(ctx context.Context) <-chan engine.Event

	Logs(ctx context.Context, id string, o engine.LogOptions, stdout, stderr io.Writer) error
	Exec(ctx context.Context, id string, cmd []string, stdin io.Reader, stdout, stderr io.Writer, tty bool, resize <-chan engine.Size) (int, error)
	Attach(ctx context.Context, id string, stdin io.Reader, stdout, stderr io.Writer, tty bool, resize <-chan engine.Size) error
	Stats(ctx context.Context, id string) (engine.Stats, error)
	// TerminationMessage is what a container of the pod wrote to its
	// termination-message file.
	TerminationMessage(ctx context.Context, sandboxID, podUID, container string) (string, error)
}

var _ Engine = (*engine.Engine)(nil)
