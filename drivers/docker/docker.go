// Package docker is the docker driver: every node is a container of the
// local Docker Engine, run from the node image minik builds from
// minik-node, on a network of its own per cluster. The engine is the only
// state: everything the driver makes carries minik's labels, so the engine
// says what exists and what belongs to which cluster.
package docker

import (
	"context"
	"fmt"
	"os"
	"path"
	"sync"
	"time"

	"github.com/moby/moby/client"
	"github.com/moby/moby/client/pkg/versions"

	"minik.dev/minik/drivers"
	containerimage "minik.dev/minik/node-image/container"
	"minik.dev/minik/nodeconfig"
	"minik.dev/minik/version"
)

// Name is the driver's name on the command line.
const Name = "docker"

// Where a node container sees things (see drivers.NodeView).
const (
	nodeProfileDir    = "/minik"
	nodeDataDir       = "/var/lib/minik"
	nodeAPIServerPort = 6443
	nodeDockerSocket  = "/var/run/docker.sock"
	nodeManifestsDir  = "/minik-manifests"
	// agentLogName is the node agent's own log in the node's /var/log.
	agentLogName = "minik-node.log"
)

// Engine requirements and timeouts.
const (
	// minAPIVersion is the oldest Engine API the client speaks.
	minAPIVersion  = client.MinAPIVersion
	pingTimeout    = 3 * time.Second
	podStopTimeout = 2 // seconds: pods are recreated when the node starts
	// nodeStopTimeout gives minik-node time to shut down cleanly on SIGTERM.
	nodeStopTimeout = 10
	doc             = "docs/drivers/docker.md"
)

// The optional capabilities the driver has.
var (
	_ drivers.Driver          = (*Driver)(nil)
	_ drivers.ClusterNetworks = (*Driver)(nil)
	_ drivers.ClusterDeleter  = (*Driver)(nil)
	_ drivers.Preparer        = (*Driver)(nil)
	_ drivers.NodeConfigurer  = (*Driver)(nil)
	_ drivers.LogTailer       = (*Driver)(nil)

	_ drivers.NodeLogStreamer      = (*Driver)(nil)
	_ drivers.DiagnosticsCollector = (*Driver)(nil)
)

// Driver runs nodes as containers of a Docker Engine.
type Driver struct {
	findBinary func() (string, error)
	// version tags the node image (tests use their own).
	version string

	mu  sync.Mutex
	api *client.Client
	// image is the node image's reference once Prepare (or a StartNode)
	// has made sure it holds the current minik-node.
	image string
	// imageMu serialises image builds: nodes start concurrently.
	imageMu sync.Mutex
	// netMu serialises network creation of concurrent StartNode calls.
	netMu sync.Mutex
}

// New returns the docker driver; findBinary locates minik-node, which goes
// into the node image. The engine is the one DOCKER_HOST names (or the
// default socket), reached on first use.
func New(findBinary func() (string, error)) *Driver {
	return &Driver{findBinary: findBinary, version: version.Version}
}

// NetworkName is the cluster's network.
func NetworkName(cluster string) string { return "minik-" + cluster }

// DataVolumeName is the volume that holds a node's state across stop and start.
func DataVolumeName(node string) string { return node + "-data" }

// Info implements drivers.Driver.
func (d *Driver) Info() drivers.Info {
	return drivers.Info{
		Name:        Name,
		Description: "nodes are containers of the local Docker Engine (pods are real containers)",
		Runtime:     nodeconfig.RuntimeDocker,
		// Above process (0): a running engine wins auto-selection.
		Priority: 10,
		// Pods are containers on the cluster's network, which is a bridge
		// of this machine; node agents answer for ClusterIPs.
		ServicesReachable: true,
		NodeView: &drivers.NodeView{
			ProfileDir:    nodeProfileDir,
			DataDir:       nodeDataDir,
			APIServerPort: nodeAPIServerPort,
			ManifestsDir:  nodeManifestsDir,
		},
	}
}

// client returns the engine client, creating it on first use so that
// merely registering the driver never touches the environment.
func (d *Driver) client() (*client.Client, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.api == nil {
		api, err := client.New(client.FromEnv, client.WithAPIVersionNegotiation())
		if err != nil {
			return nil, fmt.Errorf("create docker client for %s: %w", endpoint(nil), err)
		}
		d.api = api
	}
	return d.api, nil
}

// Close releases the engine client's connections.
func (d *Driver) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.api == nil {
		return nil
	}
	err := d.api.Close()
	d.api = nil
	return err
}

// endpoint names the engine the driver talks to, for messages.
func endpoint(api *client.Client) string {
	if api != nil {
		return api.DaemonHost()
	}
	if h := os.Getenv(client.EnvOverrideHost); h != "" {
		return h
	}
	return client.DefaultDockerHost
}

// Health implements drivers.Driver: an engine must answer, quickly, and
// speak an API this client supports.
func (d *Driver) Health(ctx context.Context) error {
	api, err := d.client()
	if err != nil {
		return &drivers.HealthError{Driver: Name, Problem: err.Error(),
			Fix: "set DOCKER_HOST to a valid engine address, or unset it", Doc: doc}
	}
	ctx, cancel := context.WithTimeout(ctx, pingTimeout)
	defer cancel()
	// A plain ping: negotiating would fail on an old engine with a less
	// helpful message than the one below.
	ping, err := api.Ping(ctx, client.PingOptions{})
	if err != nil {
		return &drivers.HealthError{Driver: Name,
			Problem: fmt.Sprintf("no Docker Engine answers at %s: %v", endpoint(api), err),
			Fix:     "start the Docker Engine, or set DOCKER_HOST to one that runs", Doc: doc}
	}
	if ping.APIVersion == "" || versions.LessThan(ping.APIVersion, minAPIVersion) {
		return &drivers.HealthError{Driver: Name,
			Problem: fmt.Sprintf("the Docker Engine at %s speaks API %q; minik needs %s or newer", endpoint(api), ping.APIVersion, minAPIVersion),
			Fix:     "upgrade the Docker Engine (20.10 or newer)", Doc: doc}
	}
	return nil
}

// Prepare implements drivers.Preparer: it builds the node image from
// minik-node unless an image of this version already holds that binary.
func (d *Driver) Prepare(ctx context.Context, progress func(msg string)) error {
	if _, err := d.ensureImage(ctx, progress, true); err != nil {
		return fmt.Errorf("prepare docker driver: %w", err)
	}
	return nil
}

// Image returns the node image's reference, making sure it is current
// (pod sandboxes run it too).
func (d *Driver) Image(ctx context.Context) (string, error) {
	return d.ensureImage(ctx, nil, false)
}

// ensureImage checks the node image against minik-node once per driver
// (again when force is set) and returns its reference.
func (d *Driver) ensureImage(ctx context.Context, progress func(string), force bool) (string, error) {
	d.imageMu.Lock()
	defer d.imageMu.Unlock()
	if d.image != "" && !force {
		return d.image, nil
	}
	api, err := d.client()
	if err != nil {
		return "", err
	}
	bin, err := d.findBinary()
	if err != nil {
		return "", err
	}
	ref, err := containerimage.Ensure(ctx, api, bin, d.version, progress)
	if err != nil {
		return "", err
	}
	d.image = ref
	return ref, nil
}

// ConfigureNode implements drivers.NodeConfigurer: the node agent runs pods
// on the cluster's network, through the engine's socket mounted in the
// node, with the node image as every pod's sandbox. Pods learn the
// cluster's Service range and DNS zone; the control-plane node answers for
// ClusterIPs and the cluster DNS.
func (d *Driver) ConfigureNode(n drivers.Node, cfg *nodeconfig.Config) {
	cfg.Runtime = nodeconfig.RuntimeDocker
	cfg.Docker = &nodeconfig.DockerRuntime{
		Host:           "unix://" + nodeDockerSocket,
		Network:        NetworkName(n.Cluster),
		SandboxImage:   containerimage.Ref(d.version),
		SandboxCommand: []string{"/minik-node", "pause"},
		ServiceNetwork: nodeconfig.ServiceNetwork{
			ServiceCIDR:   n.ServiceCIDR,
			DNSDomain:     n.DNSDomain,
			ServeServices: n.Role == nodeconfig.RoleControlPlane,
		},
		// The control plane also turns it on for Docker Desktop.
		PublishLocalhost: n.PublishLocalhost,
	}
	cfg.LogDir = nodeconfig.NodeLogDir
	cfg.AgentLog = path.Join(nodeconfig.NodeLogDir, agentLogName)
	// Through the engine's route helper: the node's own namespace is its
	// container's, not the host's.
	cfg.RouteJoinedPods = n.Role == nodeconfig.RoleControlPlane
}
