// Package nodeconfig is the contract between minik (which writes a node's
// config file) and minik-node (which reads it). It holds plain data and the
// flag lists for the upstream components, so both binaries and their tests
// share it without linking the control plane.
package nodeconfig

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"

	"minik.dev/minik/atomicfile"
)

// Roles of a node.
const (
	RoleControlPlane = "control-plane"
	RoleWorker       = "worker"
)

// A node host's folder (minik-node --host-dir): desired/NAME holds the
// config path of a node to run; running/NAME exists while its agent runs.
// The process driver writes the first and reads the second.
const (
	HostDesiredDir = "desired"
	HostRunningDir = "running"
	// HostReadyFile holds the host's pid once it handles SIGHUP.
	HostReadyFile = "ready"
)

// Cluster-wide network defaults, the same as kind's and kubeadm's.
const (
	DefaultServiceCIDR = "10.96.0.0/16"
	DefaultPodCIDR     = "10.244.0.0/16"
	DefaultDNSDomain   = "cluster.local"
)

// Config is everything one minik-node process needs to know.
type Config struct {
	Cluster string `json:"cluster"`
	Name    string `json:"name"`
	Role    string `json:"role"`
	// IP is the node's own address: its InternalIP and where its kubelet listens.
	IP string `json:"ip"`
	// KubeletPort is where the node agent serves the kubelet API.
	KubeletPort int `json:"kubeletPort"`
	// DataDir holds this node's state (etcd data on the control-plane node).
	DataDir string `json:"dataDir"`
	// PKIDir holds the cluster's certificates (see package pki for file names).
	PKIDir string `json:"pkiDir"`
	// APIServer is the URL the node agent talks to.
	APIServer string `json:"apiServer"`
	// Kubeconfig is the node agent's kubeconfig (its client cert).
	Kubeconfig string `json:"kubeconfig"`
	// Capacity the node reports.
	CPUMillis   int64 `json:"cpuMillis"`
	MemoryBytes int64 `json:"memoryBytes"`
	MaxPods     int   `json:"maxPods"`
	// Labels the node agent puts on its Node at registration.
	Labels map[string]string `json:"labels,omitempty"`
	// Runtime runs the node's pods: RuntimeSim (the default),
	// RuntimeDocker or RuntimeRunc.
	Runtime string `json:"runtime,omitempty"`
	// Docker configures the docker runtime.
	Docker *DockerRuntime `json:"docker,omitempty"`
	// Runc configures the runc runtime.
	Runc *RuncRuntime `json:"runc,omitempty"`
	// LogDir is the node's log folder (its /var/log), served by the
	// kubelet API's /logs/; the docker runtime keeps pod logs in it as
	// the kubelet does. Empty: the node keeps none (process nodes share
	// the host's, which is not theirs to serve).
	LogDir string `json:"logDir,omitempty"`
	// AgentLog is the file that holds this node agent's own output, for
	// the node log query; minik-node copies its output there unless its
	// output already goes to that file.
	AgentLog string `json:"agentLog,omitempty"`
	// Joined marks a node that joined from another machine (minik-node
	// join): its kubelet serving certificate comes through the
	// CertificateSigningRequest API instead of files from minik, and the
	// agent stops for good once its Node is deleted.
	Joined bool `json:"joined,omitempty"`
	// RouteJoinedPods makes the control-plane node's agent keep the
	// host's route to each joined node's podCIDR through that node's
	// InternalIP, so the pods of joined machines are reachable from this
	// one: directly when the node runs in the host's network namespace
	// (the process driver), else through the engine's route helper (the
	// docker driver).
	RouteJoinedPods bool `json:"routeJoinedPods,omitempty"`

	ControlPlane *ControlPlane `json:"controlPlane,omitempty"`
}

// ControlPlane configures the embedded control plane on the first node.
type ControlPlane struct {
	// BindAddress and Port are where the apiserver listens (127.0.0.1 unless asked otherwise).
	BindAddress string `json:"bindAddress"`
	Port        int    `json:"port"`
	// ListenAddress, when set, is a second address the apiserver listens
	// on (same port) besides BindAddress, for nodes on other machines; a
	// node that binds every address (0.0.0.0) needs none.
	ListenAddress string `json:"listenAddress,omitempty"`
	// JoinServer is the apiserver's URL for other machines: cluster-info
	// in kube-public names it, for minik-node join. Empty: none can join.
	JoinServer  string `json:"joinServer,omitempty"`
	ServiceCIDR string `json:"serviceCIDR"`
	PodCIDR     string `json:"podCIDR"`
	DNSDomain   string `json:"dnsDomain"`
	// ControllerManagerKubeconfig and SchedulerKubeconfig are written by minik next to the PKI.
	ControllerManagerKubeconfig string `json:"controllerManagerKubeconfig"`
	SchedulerKubeconfig         string `json:"schedulerKubeconfig"`
	// AdminKubeconfig lets the control plane label its nodes after they register.
	AdminKubeconfig string `json:"adminKubeconfig"`
	// NodeCIDRMaskSize is the prefix length of each node's podCIDR.
	NodeCIDRMaskSize int `json:"nodeCIDRMaskSize,omitempty"`
	// NodeMonitorGracePeriodSeconds is how long a silent node stays Ready.
	NodeMonitorGracePeriodSeconds int `json:"nodeMonitorGracePeriodSeconds,omitempty"`
	// PodEvictionSeconds is how long pods stay on a NotReady node.
	PodEvictionSeconds int `json:"podEvictionSeconds,omitempty"`
	// EgressAllowCIDRs are networks besides loopback the apiserver may dial.
	EgressAllowCIDRs []string `json:"egressAllowCIDRs,omitempty"`
	// LoadBalancerCIDR is the pool of LoadBalancer Services' addresses.
	LoadBalancerCIDR string `json:"loadBalancerCIDR,omitempty"`
	// ManifestsDir is the folder the control plane applies (as this node sees it).
	ManifestsDir string `json:"manifestsDir,omitempty"`
	// MetricsResolutionSeconds is how often metrics.k8s.io scrapes every
	// kubelet (default DefaultMetricsResolutionSeconds).
	MetricsResolutionSeconds int `json:"metricsResolutionSeconds,omitempty"`
	// HPASyncPeriodSeconds is how often the HorizontalPodAutoscaler
	// controller looks at metrics (default DefaultHPASyncPeriodSeconds).
	HPASyncPeriodSeconds int `json:"hpaSyncPeriodSeconds,omitempty"`
	// HPADownscaleStabilizationSeconds is how long the HorizontalPodAutoscaler
	// waits for load to stay low before it scales down (default
	// DefaultHPADownscaleStabilizationSeconds).
	HPADownscaleStabilizationSeconds int `json:"hpaDownscaleStabilizationSeconds,omitempty"`
}

var nameRE = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)

// Validate reports the first thing wrong with c.
func (c *Config) Validate() error {
	switch {
	case !nameRE.MatchString(c.Name) || len(c.Name) > 63:
		return fmt.Errorf("node name %q is not a DNS-1123 label", c.Name)
	case c.Role != RoleControlPlane && c.Role != RoleWorker:
		return fmt.Errorf("node role %q is neither %q nor %q", c.Role, RoleControlPlane, RoleWorker)
	case net.ParseIP(c.IP) == nil:
		return fmt.Errorf("node IP %q is not an IP address", c.IP)
	case c.DataDir == "" || c.PKIDir == "":
		return fmt.Errorf("node %s: dataDir and pkiDir are required", c.Name)
	case c.APIServer == "" || c.Kubeconfig == "":
		return fmt.Errorf("node %s: apiServer and kubeconfig are required", c.Name)
	case c.CPUMillis <= 0 || c.MemoryBytes <= 0:
		return fmt.Errorf("node %s: capacity must be positive (cpu %dm, memory %d)", c.Name, c.CPUMillis, c.MemoryBytes)
	case c.Runtime != "" && c.Runtime != RuntimeSim && c.Runtime != RuntimeDocker && c.Runtime != RuntimeRunc:
		return fmt.Errorf("node %s: runtime %q is not %q, %q or %q", c.Name, c.Runtime, RuntimeSim, RuntimeDocker, RuntimeRunc)
	case c.Runtime == RuntimeDocker && (c.Docker == nil || c.Docker.Network == "" || c.Docker.SandboxImage == ""):
		return fmt.Errorf("node %s: the docker runtime needs docker.network and docker.sandboxImage", c.Name)
	case c.Runtime == RuntimeRunc && (c.Runc == nil || c.Runc.Bridge == "" || net.ParseIP(c.Runc.Gateway) == nil ||
		c.Runc.PrefixLen <= 0 || c.Runc.PrefixLen > 32 || c.Runc.StateDir == "" || c.Runc.RunDir == ""):
		return fmt.Errorf("node %s: the runc runtime needs runc.bridge, runc.gateway, runc.prefixLen, runc.stateDir and runc.runDir", c.Name)
	}
	if c.Role == RoleControlPlane {
		cp := c.ControlPlane
		if cp == nil {
			return fmt.Errorf("node %s: a control-plane node needs a controlPlane section", c.Name)
		}
		if cp.Port <= 0 || cp.Port > 65535 {
			return fmt.Errorf("node %s: apiserver port %d out of range", c.Name, cp.Port)
		}
		if cp.ListenAddress != "" && net.ParseIP(cp.ListenAddress) == nil {
			return fmt.Errorf("node %s: listen address %q is not an IP address", c.Name, cp.ListenAddress)
		}
		for _, cidr := range []string{cp.ServiceCIDR, cp.PodCIDR} {
			if _, _, err := net.ParseCIDR(cidr); err != nil {
				return fmt.Errorf("node %s: %w", c.Name, err)
			}
		}
	}
	return nil
}

// Services is the node's view of the cluster's Services when its runtime
// runs pods for real; nil on the sim runtime.
func (c *Config) Services() *ServiceNetwork {
	switch {
	case c.Docker != nil:
		return &c.Docker.ServiceNetwork
	case c.Runc != nil:
		return &c.Runc.ServiceNetwork
	}
	return nil
}

// Load reads and validates a node config file.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read node config: %w", err)
	}
	var c Config
	if err := json.Unmarshal(data, &c); err != nil {
		return nil, fmt.Errorf("parse node config %s: %w", path, err)
	}
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("validate node config %s: %w", path, err)
	}
	return &c, nil
}

// Save writes c to path atomically.
func Save(path string, c *Config) error {
	if err := c.Validate(); err != nil {
		return err
	}
	data, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return fmt.Errorf("encode node config: %w", err)
	}
	return WriteFileAtomic(path, data, 0o600)
}

// WriteFileAtomic writes data to path atomically, creating its folder.
func WriteFileAtomic(path string, data []byte, mode os.FileMode) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("create folder: %w", err)
	}
	return atomicfile.Write(path, data, mode)
}

// Joining nodes from other machines (minik-node join).
const (
	// JoinedLabel is on the Node of every node that joined from another
	// machine: minik lists and deletes those through the API, not a driver.
	JoinedLabel = "minik.dev/joined"
	// JoinedHostLabel names the machine a joined node runs on.
	JoinedHostLabel = "minik.dev/joined-host"
	// JoinTokenGroup is the extra group of minik's bootstrap tokens: the
	// control plane grants it what a joining node needs before it has
	// credentials of its own.
	JoinTokenGroup = "system:bootstrappers:minik:default-node-token"
)
