package engine

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"path"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/client"
)

// terminationVolume is the name, among a pod's volumes, of the one that
// holds its containers' termination-message files; no volume of a pod
// spec can be named so.
const terminationVolume = ".termination"

// MaxTerminationMessage is how much of a termination-message file is read,
// the kubelet's limit.
const MaxTerminationMessage = 4096

func terminationVolumeName(podUID string) string {
	return fmt.Sprintf("k8s_%s_%s", terminationVolume, podUID)
}

// terminationMount makes the container's empty termination-message file,
// writable by any user as the kubelet makes it, in the pod's volume
// through the sandbox that mounts it, and returns the bind of that file at
// the container's terminationMessagePath. A restarted container gets it
// empty again.
func (e *Engine) terminationMount(ctx context.Context, spec ContainerSpec) (mount.Mount, error) {
	vol := terminationVolumeName(spec.PodUID)
	info, err := e.cli.VolumeInspect(ctx, vol, client.VolumeInspectOptions{})
	if err != nil {
		return mount.Mount{}, fmt.Errorf("termination message file: %w", err)
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: spec.Name, Mode: 0o666}); err != nil {
		return mount.Mount{}, err
	}
	if err := tw.Close(); err != nil {
		return mount.Mount{}, err
	}
	if _, err := e.cli.CopyToContainer(ctx, spec.SandboxID, client.CopyToContainerOptions{
		DestinationPath: "/volumes/" + vol, Content: &buf,
	}); err != nil {
		return mount.Mount{}, fmt.Errorf("termination message file: %w", err)
	}
	return mount.Mount{Type: mount.TypeBind, Source: path.Join(info.Volume.Mountpoint, spec.Name), Target: spec.TerminationMessagePath}, nil
}

// TerminationMessage reads what a container of the pod wrote to its
// termination-message file (at most MaxTerminationMessage bytes); a
// container without one has an empty message.
func (e *Engine) TerminationMessage(ctx context.Context, sandboxID, podUID, container string) (string, error) {
	res, err := e.cli.CopyFromContainer(ctx, sandboxID, client.CopyFromContainerOptions{
		SourcePath: "/volumes/" + terminationVolumeName(podUID) + "/" + container,
	})
	if cerrdefs.IsNotFound(err) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("read termination message of %s: %w", container, err)
	}
	defer res.Content.Close()
	tr := tar.NewReader(res.Content)
	if _, err := tr.Next(); err != nil {
		if errors.Is(err, io.EOF) {
			return "", nil
		}
		return "", fmt.Errorf("read termination message of %s: %w", container, err)
	}
	b, err := io.ReadAll(io.LimitReader(tr, MaxTerminationMessage))
	if err != nil {
		return "", fmt.Errorf("read termination message of %s: %w", container, err)
	}
	return string(b), nil
}
