package docker

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"path"
	"path/filepath"
	"strconv"
	"strings"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"

	"minik.dev/minik/drivers"
	"minik.dev/minik/nodeconfig"
)

// StartNode implements drivers.Driver: an existing node container is
// started (its static IP is in its endpoint config, so it keeps it); a
// missing one is created.
func (d *Driver) StartNode(ctx context.Context, n drivers.Node) error {
	if err := d.startNode(ctx, n); err != nil {
		return fmt.Errorf("start node %s: %w", n.Name, err)
	}
	return nil
}

func (d *Driver) startNode(ctx context.Context, n drivers.Node) error {
	api, err := d.client()
	if err != nil {
		return err
	}
	c, err := d.nodeContainer(ctx, api, n)
	if err != nil {
		return err
	}
	if c == nil {
		return d.createNode(ctx, api, n)
	}
	if c.State != nil && c.State.Running {
		return nil
	}
	nw, err := d.ensureNetwork(ctx, api, n)
	if err != nil {
		return err
	}
	current, err := d.runsCurrentImage(ctx, api, c)
	if err != nil {
		return err
	}
	if !onNetwork(c, nw) || !current {
		// `docker network prune` removes a stopped cluster's network, and
		// a container that ran is bound to the old network's ID; a new
		// minik-node is a new node image. The node keeps its state in its
		// volume and its config in the profile, not in its container:
		// make it anew.
		if err := removeContainer(ctx, api, c.ID); err != nil {
			return err
		}
		if !current {
			// The old node image goes with its last container; while
			// another node still uses it, this fails and that node's
			// start removes it.
			_, _ = api.ImageRemove(ctx, c.Image, client.ImageRemoveOptions{})
		}
		return d.createNode(ctx, api, n)
	}
	if c.HostConfig != nil && c.HostConfig.RestartPolicy.Name != nodeRestartPolicy.Name {
		// A node made before nodes came back with the engine.
		policy := nodeRestartPolicy
		if _, err := api.ContainerUpdate(ctx, c.ID, client.ContainerUpdateOptions{RestartPolicy: &policy}); err != nil {
			return fmt.Errorf("set the restart policy: %w", err)
		}
	}
	if _, err := api.ContainerStart(ctx, c.ID, client.ContainerStartOptions{}); err != nil {
		return fmt.Errorf("start container: %w", err)
	}
	return nil
}

// nodeRestartPolicy brings a node back when the engine restarts (or the
// machine reboots), as kind's nodes come back, while `minik stop` (a
// stop through the engine) keeps it stopped. The node agent then starts
// the node's pods again, as at `minik start`.
var nodeRestartPolicy = container.RestartPolicy{Name: container.RestartPolicyUnlessStopped}

// onNetwork reports whether a container is attached to the network as it
// is now (a container that never ran has no network ID yet).
func onNetwork(c *container.InspectResponse, nw clusterNetwork) bool {
	if c.NetworkSettings == nil {
		return false
	}
	ep := c.NetworkSettings.Networks[nw.name]
	return ep != nil && (ep.NetworkID == "" || ep.NetworkID == nw.id)
}

// nodeContainer returns the node's container, nil if there is none, or an
// error if a container of that name is not this cluster's.
func (d *Driver) nodeContainer(ctx context.Context, api *client.Client, n drivers.Node) (*container.InspectResponse, error) {
	res, err := api.ContainerInspect(ctx, n.Name, client.ContainerInspectOptions{})
	if cerrdefs.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("inspect container %s: %w", n.Name, err)
	}
	c := res.Container
	// The engine also resolves ID prefixes: a node named "abc" must not
	// match a container whose ID starts with abc.
	if strings.TrimPrefix(c.Name, "/") != n.Name {
		return nil, nil
	}
	var labels map[string]string
	if c.Config != nil {
		labels = c.Config.Labels
	}
	if labels[nodeconfig.LabelCluster] != n.Cluster || labels[nodeconfig.LabelKind] != nodeconfig.KindNode {
		return nil, &foreignError{name: n.Name}
	}
	if p := nodeProfile(labels, c.Mounts); p != "" && p != n.ProfileDir {
		return nil, takenError(n.Cluster, "its node container "+n.Name, p)
	}
	return &c, nil
}

// foreignError is a container that has a node's name but is not the node.
type foreignError struct{ name string }

func (e *foreignError) Error() string {
	return fmt.Sprintf("a container named %s exists and is not minik's: remove it or choose another profile name", e.name)
}

// existingNode is nodeContainer for callers to whom a foreign container of
// the node's name, or another minik home's node, just means the node does
// not exist: they never touch it.
func (d *Driver) existingNode(ctx context.Context, api *client.Client, n drivers.Node) (*container.InspectResponse, error) {
	c, err := d.nodeContainer(ctx, api, n)
	if errors.As(err, new(*foreignError)) || errors.As(err, new(*drivers.TakenError)) {
		return nil, nil
	}
	return c, err
}

// takenByOtherHome reports whether the node's name is another minik
// home's node: then its pods and volumes, which carry the same cluster
// and node labels, are that home's too.
func (d *Driver) takenByOtherHome(ctx context.Context, api *client.Client, n drivers.Node) (bool, error) {
	_, err := d.nodeContainer(ctx, api, n)
	if errors.As(err, new(*drivers.TakenError)) {
		return true, nil
	}
	if errors.As(err, new(*foreignError)) {
		return false, nil
	}
	return false, err
}

// configPathInNode is the node config's path as the container sees it.
func configPathInNode(n drivers.Node) (string, error) {
	rel, err := filepath.Rel(n.ProfileDir, n.ConfigPath)
	if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return "", fmt.Errorf("node config %s is not inside the profile folder %s, which is all a node container sees", n.ConfigPath, n.ProfileDir)
	}
	return path.Join(nodeProfileDir, filepath.ToSlash(rel)), nil
}

// dockerSocket is the engine's socket on the host, mounted into nodes so
// their agent runs pods as sibling containers.
func dockerSocket(api *client.Client) string {
	if s, ok := strings.CutPrefix(endpoint(api), "unix://"); ok {
		return s
	}
	return nodeDockerSocket
}

func (d *Driver) createNode(ctx context.Context, api *client.Client, n drivers.Node) error {
	ip, err := netip.ParseAddr(n.IP)
	if err != nil || !ip.Is4() {
		return fmt.Errorf("node IP %q is not an IPv4 address", n.IP)
	}
	cfgPath, err := configPathInNode(n)
	if err != nil {
		return err
	}
	image, err := d.ensureImage(ctx, nil, false)
	if err != nil {
		return err
	}
	nw, err := d.ensureNetwork(ctx, api, n)
	if err != nil {
		return err
	}
	vol, err := ensureDataVolume(ctx, api, n)
	if err != nil {
		return err
	}
	logVol, err := ensureLogVolume(ctx, api, n)
	if err != nil {
		return err
	}
	labels := map[string]string{
		nodeconfig.LabelCluster: n.Cluster,
		nodeconfig.LabelNode:    n.Name,
		nodeconfig.LabelRole:    n.Role,
		nodeconfig.LabelKind:    nodeconfig.KindNode,
		nodeconfig.LabelProfile: n.ProfileDir,
	}
	cfg := &container.Config{
		Image:    image,
		Hostname: n.Name,
		Cmd:      []string{"--config", cfgPath},
		Labels:   labels,
	}
	host := &container.HostConfig{
		NetworkMode: container.NetworkMode(nw.name),
		// Enough to add Service IPs to its interface; --privileged is not
		// available everywhere (see docs/drivers/docker.md).
		CapAdd:        []string{"NET_ADMIN"},
		RestartPolicy: nodeRestartPolicy,
		Mounts: []mount.Mount{
			{Type: mount.TypeBind, Source: n.ProfileDir, Target: nodeProfileDir, ReadOnly: true},
			{Type: mount.TypeVolume, Source: vol, Target: nodeDataDir},
			{Type: mount.TypeVolume, Source: logVol, Target: nodeconfig.NodeLogDir},
			{Type: mount.TypeBind, Source: dockerSocket(api), Target: nodeDockerSocket},
		},
	}
	if n.Role == nodeconfig.RoleControlPlane && n.ManifestsDir != "" {
		host.Mounts = append(host.Mounts, mount.Mount{Type: mount.TypeBind, Source: n.ManifestsDir, Target: nodeManifestsDir, ReadOnly: true})
	}
	if n.Role == nodeconfig.RoleControlPlane {
		if err := publishAPIServer(cfg, host, n.APIServerPort, n.ListenAddress); err != nil {
			return err
		}
	}
	created, err := api.ContainerCreate(ctx, client.ContainerCreateOptions{
		Name:       n.Name,
		Config:     cfg,
		HostConfig: host,
		NetworkingConfig: &network.NetworkingConfig{EndpointsConfig: map[string]*network.EndpointSettings{
			nw.name: {IPAMConfig: &network.EndpointIPAMConfig{IPv4Address: ip}},
		}},
	})
	if err != nil {
		return fmt.Errorf("create container: %w", err)
	}
	if _, err := api.ContainerStart(ctx, created.ID, client.ContainerStartOptions{}); err != nil {
		// A node that never ran has nothing to keep; removing it lets a
		// retry create it afresh (with a fixed port or IP).
		_, _ = api.ContainerRemove(ctx, created.ID, client.ContainerRemoveOptions{Force: true})
		return fmt.Errorf("start container: %w", err)
	}
	return nil
}

// publishAPIServer publishes the apiserver on the host's loopback, and on
// listen too when it is set (nodes joining from other machines).
func publishAPIServer(cfg *container.Config, host *container.HostConfig, hostPort int, listen string) error {
	if hostPort <= 0 || hostPort > 65535 {
		return fmt.Errorf("control-plane node needs a host port for the apiserver, got %d", hostPort)
	}
	port, err := network.ParsePort(strconv.Itoa(nodeAPIServerPort) + "/tcp")
	if err != nil {
		return err
	}
	cfg.ExposedPorts = network.PortSet{port: {}}
	bindings := []network.PortBinding{{HostIP: netip.MustParseAddr("127.0.0.1"), HostPort: strconv.Itoa(hostPort)}}
	if listen != "" {
		addr, err := netip.ParseAddr(listen)
		if err != nil {
			return fmt.Errorf("listen address: %w", err)
		}
		bindings = append(bindings, network.PortBinding{HostIP: addr, HostPort: strconv.Itoa(hostPort)})
	}
	host.PortBindings = network.PortMap{port: bindings}
	return nil
}

// ensureDataVolume creates the node's state volume (creating one that
// exists returns it as it is).
func ensureDataVolume(ctx context.Context, api *client.Client, n drivers.Node) (string, error) {
	name := DataVolumeName(n.Name)
	res, err := api.VolumeCreate(ctx, client.VolumeCreateOptions{
		Name: name,
		Labels: map[string]string{
			nodeconfig.LabelCluster: n.Cluster,
			nodeconfig.LabelNode:    n.Name,
			nodeconfig.LabelKind:    nodeconfig.KindVolume,
			nodeconfig.LabelProfile: n.ProfileDir,
		},
	})
	if err != nil {
		return "", fmt.Errorf("create volume %s: %w", name, err)
	}
	if res.Volume.Labels[nodeconfig.LabelCluster] != n.Cluster {
		return "", fmt.Errorf("a volume named %s exists and is not minik's: remove it or choose another profile name", name)
	}
	if other := otherProfile(res.Volume.Labels, n.ProfileDir); other != "" {
		return "", takenError(n.Cluster, "its volume "+name, other)
	}
	return name, nil
}

// ensureLogVolume makes the volume that is the node's /var/log: the same
// volume its pods get for a hostPath under /var/log (the node agent labels
// it alike when a pod asks first), so a log shipper reads what the agent
// writes there. It outlives stops, like the node's data.
func ensureLogVolume(ctx context.Context, api *client.Client, n drivers.Node) (string, error) {
	name := nodeconfig.HostPathVolumeName(n.Name, nodeconfig.NodeLogDir)
	res, err := api.VolumeCreate(ctx, client.VolumeCreateOptions{
		Name: name,
		Labels: map[string]string{
			nodeconfig.LabelCluster:  n.Cluster,
			nodeconfig.LabelNode:     n.Name,
			nodeconfig.LabelKind:     nodeconfig.KindVolume,
			nodeconfig.LabelHostPath: nodeconfig.NodeLogDir,
			nodeconfig.LabelProfile:  n.ProfileDir,
		},
	})
	if err != nil {
		return "", fmt.Errorf("create volume %s: %w", name, err)
	}
	if l := res.Volume.Labels; l[nodeconfig.LabelCluster] != n.Cluster || l[nodeconfig.LabelHostPath] != nodeconfig.NodeLogDir {
		return "", fmt.Errorf("a volume named %s exists and is not minik's: remove it or choose another profile name", name)
	}
	if other := otherProfile(res.Volume.Labels, n.ProfileDir); other != "" {
		return "", takenError(n.Cluster, "its volume "+name, other)
	}
	return name, nil
}

// StopNode implements drivers.Driver: the node's pods stop first (all at
// once, briefly), then the node, which shuts down cleanly on SIGTERM. Pod
// containers and pod volumes are then removed: the node agent recreates
// its pods when it starts again, and a stopped cluster should hold nothing
// but its nodes and their data.
func (d *Driver) StopNode(ctx context.Context, n drivers.Node) error {
	if err := d.stopNode(ctx, n); err != nil {
		return fmt.Errorf("stop node %s: %w", n.Name, err)
	}
	return nil
}

func (d *Driver) stopNode(ctx context.Context, n drivers.Node) error {
	api, err := d.client()
	if err != nil {
		return err
	}
	if taken, err := d.takenByOtherHome(ctx, api, n); err != nil || taken {
		return err
	}
	node, err := d.existingNode(ctx, api, n)
	if err != nil {
		return err
	}
	// The agent goes first: it would count the pods' stops as crashes.
	if node != nil {
		if err := stopContainer(ctx, api, node.ID, nodeStopTimeout); err != nil {
			return err
		}
	}
	pods, err := listContainers(ctx, api, nodeFilter(n))
	if err != nil {
		return err
	}
	var running []string
	for _, c := range pods {
		if isPod(c.Labels) && c.State == container.StateRunning {
			running = append(running, c.ID)
		}
	}
	if err := forEach(running, func(id string) error { return stopContainer(ctx, api, id, podStopTimeout) }); err != nil {
		return err
	}
	return removePods(ctx, api, n)
}

// removePods force-removes the node's pod containers and pod volumes.
func removePods(ctx context.Context, api *client.Client, n drivers.Node) error {
	all, err := listContainers(ctx, api, nodeFilter(n))
	if err != nil {
		return err
	}
	var pods []string
	for _, c := range all {
		if isPod(c.Labels) {
			pods = append(pods, c.ID)
		}
	}
	if err := forEach(pods, func(id string) error { return removeContainer(ctx, api, id) }); err != nil {
		return err
	}
	// Pod volumes carry the pod's UID; the node's own data volume does not.
	vols, err := listVolumes(ctx, api, nodeFilter(n).Add("label", nodeconfig.LabelPodUID))
	if err != nil {
		return err
	}
	return forEach(vols, func(name string) error { return removeVolume(ctx, api, name) })
}

func isPod(labels map[string]string) bool {
	k := labels[nodeconfig.LabelKind]
	// A Service's forwarder goes with the pods: the control plane makes
	// it again when it starts.
	// So does its route helper, which removes its routes when stopped.
	return k == nodeconfig.KindSandbox || k == nodeconfig.KindContainer || k == nodeconfig.KindForwarder || k == nodeconfig.KindRouter
}

// nodeFilter matches everything of one node of one cluster.
func nodeFilter(n drivers.Node) client.Filters {
	return clusterFilter(n.Cluster).Add("label", nodeconfig.LabelNode+"="+n.Name)
}

func clusterFilter(cluster string) client.Filters {
	return make(client.Filters).Add("label", nodeconfig.LabelCluster+"="+cluster)
}

// DeleteNode implements drivers.Driver: the node container, its pod
// containers and all the node's volumes go, whatever state they are in.
func (d *Driver) DeleteNode(ctx context.Context, n drivers.Node) error {
	if err := d.deleteNode(ctx, n); err != nil {
		return fmt.Errorf("delete node %s: %w", n.Name, err)
	}
	return nil
}

func (d *Driver) deleteNode(ctx context.Context, n drivers.Node) error {
	api, err := d.client()
	if err != nil {
		return err
	}
	if taken, err := d.takenByOtherHome(ctx, api, n); err != nil || taken {
		return err
	}
	return removeAll(ctx, api, nodeFilter(n), n.ProfileDir, false)
}

// NodeState implements drivers.Driver.
func (d *Driver) NodeState(ctx context.Context, n drivers.Node) (string, error) {
	api, err := d.client()
	if err != nil {
		return "", fmt.Errorf("state of node %s: %w", n.Name, err)
	}
	c, err := d.existingNode(ctx, api, n)
	if err != nil {
		return "", fmt.Errorf("state of node %s: %w", n.Name, err)
	}
	if c != nil && c.State != nil && c.State.Running {
		return drivers.StateRunning, nil
	}
	return drivers.StateStopped, nil
}

// NodeIP returns the node container's address on the cluster network, as
// the engine reports it ("" when it has none).
func (d *Driver) NodeIP(ctx context.Context, n drivers.Node) (string, error) {
	api, err := d.client()
	if err != nil {
		return "", err
	}
	c, err := d.existingNode(ctx, api, n)
	if err != nil || c == nil || c.NetworkSettings == nil {
		return "", err
	}
	if ep := c.NetworkSettings.Networks[NetworkName(n.Cluster)]; ep != nil && ep.IPAddress.IsValid() {
		return ep.IPAddress.String(), nil
	}
	return "", nil
}

// runsCurrentImage reports whether a node container was made from the
// node image that holds this minik's minik-node.
func (d *Driver) runsCurrentImage(ctx context.Context, api *client.Client, c *container.InspectResponse) (bool, error) {
	ref, err := d.Image(ctx)
	if err != nil {
		return false, err
	}
	img, err := api.ImageInspect(ctx, ref)
	if err != nil {
		return false, fmt.Errorf("inspect node image %s: %w", ref, err)
	}
	return img.ID == c.Image, nil
}
