package engine

import (
	"context"
	"fmt"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/client"
)

// ImagePresent reports whether the engine's image store has image, and
// its ID if so. Images come from that store, so anything the user built
// with docker build runs with no pull.
func (e *Engine) ImagePresent(ctx context.Context, image string) (imageID string, ok bool, err error) {
	res, err := e.cli.ImageInspect(ctx, image)
	if cerrdefs.IsNotFound(err) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("inspect image %s: %w", image, err)
	}
	return res.ID, true, nil
}

// ImageUser is the user an image runs as, from its configuration ("" for
// root).
func (e *Engine) ImageUser(ctx context.Context, image string) (string, error) {
	res, err := e.cli.ImageInspect(ctx, image)
	if err != nil {
		return "", fmt.Errorf("inspect image %s: %w", image, err)
	}
	if res.Config == nil {
		return "", nil
	}
	return res.Config.User, nil
}

// PullImage pulls image into the engine's store. A failed pull returns the
// engine's own message (an unreachable registry, an unknown repository),
// which is what a user needs to see in the pod's events. ctx bounds the
// whole pull.
func (e *Engine) PullImage(ctx context.Context, image string) error {
	res, err := e.cli.ImagePull(ctx, image, client.ImagePullOptions{})
	if err != nil {
		return fmt.Errorf("pull image %s: %w", image, err)
	}
	// The engine reports failures inside the progress stream (errorDetail)
	// with a 200 status: Wait reads the stream to its end, returns the
	// first such error, and closes the stream when ctx ends.
	defer res.Close()
	if err := res.Wait(ctx); err != nil {
		return fmt.Errorf("pull image %s: %w", image, err)
	}
	return nil
}
