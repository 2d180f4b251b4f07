package docker

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"

	"minik.dev/minik/drivers"
	"minik.dev/minik/nodeconfig"
)

// DeleteCluster implements drivers.ClusterDeleter: every container, volume
// and network labelled with the cluster goes, unless another minik home's
// cluster of the same name holds them.
func (d *Driver) DeleteCluster(ctx context.Context, c drivers.Cluster) error {
	api, err := d.client()
	if err != nil {
		return fmt.Errorf("delete cluster %s: %w", c.Name, err)
	}
	if err := removeAll(ctx, api, clusterFilter(c.Name), c.ProfileDir, true); err != nil {
		return fmt.Errorf("delete cluster %s: %w", c.Name, err)
	}
	return nil
}

// removeAll force-removes the containers, then the volumes (they are free
// only then) and, with networks set, the networks matching f that belong
// to the profile at profileDir. When something matching f belongs to
// another profile, so may the unlabelled things (pods carry no profile
// label): then only what is labelled as profileDir's goes.
func removeAll(ctx context.Context, api *client.Client, f client.Filters, profileDir string, networks bool) error {
	cs, err := listContainers(ctx, api, f)
	if err != nil {
		return err
	}
	vols, err := api.VolumeList(ctx, client.VolumeListOptions{Filters: f})
	if err != nil {
		return fmt.Errorf("list volumes: %w", err)
	}
	var nets []network.Summary
	if networks {
		res, err := api.NetworkList(ctx, client.NetworkListOptions{Filters: f})
		if err != nil {
			return fmt.Errorf("list networks: %w", err)
		}
		nets = res.Items
	}
	shared := false
	for _, c := range cs {
		if p := nodeProfile(c.Labels, c.Mounts); p != "" && p != profileDir {
			shared = true
		}
	}
	for _, v := range vols.Items {
		shared = shared || otherProfile(v.Labels, profileDir) != ""
	}
	for _, nw := range nets {
		shared = shared || otherProfile(nw.Labels, profileDir) != ""
	}
	ours := func(labels map[string]string) bool {
		if shared {
			return labels[nodeconfig.LabelProfile] == profileDir
		}
		return true
	}

	var ids []string
	for _, c := range cs {
		if !ours(c.Labels) {
			continue
		}
		ids = append(ids, c.ID)
		// A route helper removes the host routes it made when it is
		// stopped; a forced removal would leave them behind.
		if c.Labels[nodeconfig.LabelKind] == nodeconfig.KindRouter && c.State == container.StateRunning {
			_ = stopContainer(ctx, api, c.ID, podStopTimeout)
		}
	}
	if err := forEach(ids, func(id string) error { return removeContainer(ctx, api, id) }); err != nil {
		return err
	}
	var names []string
	for _, v := range vols.Items {
		if ours(v.Labels) {
			names = append(names, v.Name)
		}
	}
	if err := forEach(names, func(name string) error { return removeVolume(ctx, api, name) }); err != nil {
		return err
	}
	for _, nw := range nets {
		if !ours(nw.Labels) {
			continue
		}
		if _, err := api.NetworkRemove(ctx, nw.ID, client.NetworkRemoveOptions{}); err != nil && !cerrdefs.IsNotFound(err) {
			attached := -1
			if res, inspectErr := api.NetworkInspect(ctx, nw.ID, client.NetworkInspectOptions{}); inspectErr == nil {
				attached = len(res.Network.Containers)
			}
			return networkRemoveError(nw.Name, attached, err)
		}
	}
	return nil
}

// networkRemoveError says what to do when the engine refuses to remove a
// network: one that "has active endpoints" while no container is attached
// holds an endpoint the engine lost track of (seen after many containers
// were removed at once), which only an engine restart clears.
func networkRemoveError(name string, attached int, err error) error {
	if attached == 0 && strings.Contains(err.Error(), "has active endpoints") {
		return fmt.Errorf("remove network %s: the Docker Engine keeps a stale endpoint on it although no container is attached; restart the Docker Engine, then delete again: %w", name, err)
	}
	return fmt.Errorf("remove network %s: %w", name, err)
}

func listContainers(ctx context.Context, api *client.Client, f client.Filters) ([]container.Summary, error) {
	res, err := api.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: f})
	if err != nil {
		return nil, fmt.Errorf("list containers: %w", err)
	}
	return res.Items, nil
}

func listVolumes(ctx context.Context, api *client.Client, f client.Filters) ([]string, error) {
	res, err := api.VolumeList(ctx, client.VolumeListOptions{Filters: f})
	if err != nil {
		return nil, fmt.Errorf("list volumes: %w", err)
	}
	names := make([]string, 0, len(res.Items))
	for _, v := range res.Items {
		names = append(names, v.Name)
	}
	return names, nil
}

// stopContainer stops a container; a missing one is stopped already.
func stopContainer(ctx context.Context, api *client.Client, id string, timeout int) error {
	_, err := api.ContainerStop(ctx, id, client.ContainerStopOptions{Timeout: &timeout})
	if err != nil && !cerrdefs.IsNotFound(err) {
		return fmt.Errorf("stop container %s: %w", shortID(id), err)
	}
	return nil
}

// removeContainer force-removes a container; a missing one is gone
// already, and one another client is removing (the node agent its pods',
// say) is going.
func removeContainer(ctx context.Context, api *client.Client, id string) error {
	_, err := api.ContainerRemove(ctx, id, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true})
	if err != nil && !cerrdefs.IsNotFound(err) && !removalInProgress(err) {
		return fmt.Errorf("remove container %s: %w", shortID(id), err)
	}
	return nil
}

// volumeInUseWait bounds how long a volume removal waits for the
// containers that use it to go.
const volumeInUseWait = 10 * time.Second

// removeVolume removes a volume; while a container that uses it is still
// being removed by another request (removeContainer does not wait for
// those: another node's agent removes a stopped node's pods too), it
// waits for it.
func removeVolume(ctx context.Context, api *client.Client, name string) error {
	deadline := time.Now().Add(volumeInUseWait)
	for {
		_, err := api.VolumeRemove(ctx, name, client.VolumeRemoveOptions{Force: true})
		if err == nil || cerrdefs.IsNotFound(err) {
			return nil
		}
		if !cerrdefs.IsConflict(err) || time.Now().After(deadline) {
			return fmt.Errorf("remove volume %s: %w", name, err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("remove volume %s: %w", name, err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func shortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

// forEach runs fn on every item at once: a node may have many pods, and
// each stop or removal waits on the engine.
func forEach(items []string, fn func(string) error) error {
	errs := make([]error, len(items))
	var wg sync.WaitGroup
	for i, it := range items {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = fn(it)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// removalInProgress is the engine's conflict for a container that another
// request is removing already.
func removalInProgress(err error) bool {
	return cerrdefs.IsConflict(err) && strings.Contains(err.Error(), "already in progress")
}
