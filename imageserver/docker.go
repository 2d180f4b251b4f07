package imageserver

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/client"
)

// DockerEngine is this machine's Docker Engine (DOCKER_HOST or the
// default socket).
type DockerEngine struct{ cli *client.Client }

// NewDockerEngine connects lazily: the engine may start after the server.
func NewDockerEngine() (*DockerEngine, error) {
	cli, err := client.New(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		return nil, fmt.Errorf("docker engine: %w", err)
	}
	return &DockerEngine{cli: cli}, nil
}

// ImageID implements Engine.
func (d *DockerEngine) ImageID(ctx context.Context, ref string) (string, bool, error) {
	res, err := d.cli.ImageInspect(ctx, ref)
	if cerrdefs.IsNotFound(err) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("inspect image %s: %w", ref, err)
	}
	return res.ID, true, nil
}

// Save implements Engine.
func (d *DockerEngine) Save(ctx context.Context, ref string) (io.ReadCloser, error) {
	return d.SaveAll(ctx, []string{ref})
}

// SaveAll writes one docker-save archive of several images.
func (d *DockerEngine) SaveAll(ctx context.Context, refs []string) (io.ReadCloser, error) {
	rc, err := d.cli.ImageSave(ctx, refs)
	if err != nil {
		return nil, fmt.Errorf("save images %v: %w", refs, err)
	}
	return rc, nil
}

// Close releases the engine's client.
func (d *DockerEngine) Close() error { return d.cli.Close() }

// Serve answers on addr until ctx ends. The address may not exist yet
// (a VM network's bridge comes up with its first VM): listening is
// retried for a while.
func Serve(ctx context.Context, addr string, h http.Handler) error {
	var l net.Listener
	var err error
	for deadline := time.Now().Add(2 * time.Minute); ; {
		if l, err = net.Listen("tcp", addr); err == nil {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("image server: %w", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(200 * time.Millisecond):
		}
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		_ = srv.Close()
	}()
	if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("image server: %w", err)
	}
	return nil
}
