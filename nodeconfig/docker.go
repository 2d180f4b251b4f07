package nodeconfig

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"net"
	"path"
	"strings"
)

// Pod runtimes of the node agent.
const (
	RuntimeSim    = "sim"
	RuntimeDocker = "docker"
	// RuntimeRunc runs pods with runc on the node itself (VM nodes).
	RuntimeRunc = "runc"
)

// ServiceNetwork is what a runtime whose pods really run knows of the
// cluster's Services: pods' environment and DNS, and which node answers
// for ClusterIPs.
type ServiceNetwork struct {
	// ServiceCIDR is the cluster's Service range: pods get the
	// kubernetes Service's address in their environment, and the cluster
	// DNS is its tenth address.
	ServiceCIDR string `json:"serviceCIDR,omitempty"`
	// DNSDomain is the cluster's DNS zone (cluster.local).
	DNSDomain string `json:"dnsDomain,omitempty"`
	// ServeServices is set on the node that answers for ClusterIPs and
	// cluster DNS (the control plane).
	ServeServices bool `json:"serveServices,omitempty"`
}

// RuncRuntime configures the node agent's runc runtime: pods are runc
// containers of the node itself, plugged into a bridge that holds the
// node's interface on the cluster network, so pod addresses are on that
// network as on the docker driver's.
type RuncRuntime struct {
	// Bridge is the node's bridge; Gateway the pods' default route; and
	// PrefixLen the cluster network's prefix length.
	Bridge    string `json:"bridge"`
	Gateway   string `json:"gateway"`
	PrefixLen int    `json:"prefixLen"`
	// Binary is runc's path ("" looks in PATH).
	Binary string `json:"binary,omitempty"`
	// ImageServer is the host:port of the registry through which the
	// node pulls the images of the host's Docker Engine ("" for none).
	ImageServer string `json:"imageServer,omitempty"`
	// StateDir keeps images, containers and pod volumes; RunDir runc's
	// state and the pods' namespaces.
	StateDir string `json:"stateDir"`
	RunDir   string `json:"runDir"`
	ServiceNetwork
}

// DockerRuntime configures the node agent's docker runtime: pods are
// containers of the engine that also runs the node.
type DockerRuntime struct {
	// Host is the engine's endpoint as the node sees it ("" for the
	// default unix:///var/run/docker.sock).
	Host string `json:"host,omitempty"`
	// Network is the cluster's network: pod sandboxes join it, so a pod's
	// IP is its sandbox's address there.
	Network string `json:"network"`
	// SandboxImage runs each pod's sandbox container (the node image).
	SandboxImage string `json:"sandboxImage"`
	// SandboxCommand parks the sandbox: it holds the pod's network
	// namespace and does nothing else.
	SandboxCommand []string `json:"sandboxCommand,omitempty"`
	// HostIsNode says the node is the engine's machine itself (a joined
	// machine), not a container of the engine's: hostNetwork pods use the
	// engine's host network instead of a node container's.
	HostIsNode bool `json:"hostIsNode,omitempty"`
	ServiceNetwork
	// PublishLocalhost makes the control plane also publish every
	// LoadBalancer Service's ports on the host's 127.0.0.1, as it does on
	// its own when the engine is Docker Desktop (whose cluster networks the
	// host does not route to).
	PublishLocalhost bool `json:"publishLocalhost,omitempty"`
}

// NodeLogDir is a container node's log folder, as on a real node: the
// docker driver backs it with the node's hostPath volume of that path, so
// the pod logs the agent keeps there are what a pod mounting the node's
// /var/log (a log shipper) reads.
const NodeLogDir = "/var/log"

// HostPathVolumeName is the engine volume that stands for the directory
// dir of a node: every pod of the node that mounts it as a hostPath shares
// it, and it lives as long as the node.
func HostPathVolumeName(node, dir string) string {
	sum := sha256.Sum256([]byte(dir))
	return fmt.Sprintf("k8s_hostpath_%s_%s", node, hex.EncodeToString(sum[:6]))
}

// HostPathVolume maps a hostPath directory to the volume that backs it and
// the sub-path in that volume: a path under NodeLogDir is part of the
// node's log folder, any other directory a volume of its own.
func HostPathVolume(dir string) (volumeDir, subPath string) {
	dir = path.Clean(dir)
	if rest, ok := strings.CutPrefix(dir, NodeLogDir+"/"); ok {
		return NodeLogDir, rest
	}
	return dir, ""
}

// VolumeDriver is the CSI driver name of minik's PersistentVolumes: the
// control plane provisions them, node agents mount them.
const VolumeDriver = "volumes.minik.dev"

// Labels on everything minik makes in a container engine, so the engine,
// not a private database, says what exists and what belongs to whom.
const (
	LabelCluster = "dev.minik.cluster"
	LabelNode    = "dev.minik.node"
	LabelRole    = "dev.minik.role"
	// LabelKind is one of the Kind* values below.
	LabelKind = "dev.minik.kind"
	// LabelProfile is the host folder of the profile that made a node
	// container, its volumes or its cluster's network: two minik homes
	// may each have a cluster of the same name, and only one of them can
	// own the engine's names. Things made before it was set lack it.
	LabelProfile = "dev.minik.profile"
	// Pod containers carry the pod's identity and their container name.
	LabelPodUID       = "dev.minik.pod.uid"
	LabelPodNamespace = "dev.minik.pod.namespace"
	LabelPodName      = "dev.minik.pod.name"
	LabelContainer    = "dev.minik.container"
	// LabelAttempt counts a container's restarts (0 for the first run).
	LabelAttempt = "dev.minik.attempt"
	// LabelHostPath is the node directory a volume stands for.
	LabelHostPath = "dev.minik.hostpath"
	// LabelPersistentVolume is the PersistentVolume a volume keeps the data of.
	LabelPersistentVolume = "dev.minik.pv"
	// LabelService is the namespace/name of the LoadBalancer Service a
	// forwarder container publishes, and LabelServiceHash what it was made
	// for (the Service's address and ports).
	LabelService     = "dev.minik.service"
	LabelServiceHash = "dev.minik.service.hash"
)

// Values of LabelKind.
const (
	KindNode      = "node"
	KindSandbox   = "sandbox"
	KindContainer = "container"
	KindVolume    = "volume"
	KindNetwork   = "network"
	// KindForwarder publishes a LoadBalancer Service's ports on the host's
	// 127.0.0.1; it belongs to the control-plane node, like a pod.
	KindForwarder = "forwarder"
	// KindRouter changes the host's routes to joined nodes' pods for a
	// control-plane node whose network namespace is its container's.
	KindRouter = "router"
)

// SubnetLayout splits a cluster network into ranges that never overlap:
// static node IPs, LoadBalancer addresses, Service IPs, and the engine's
// own allocation range for pod sandboxes.
type SubnetLayout struct {
	Subnet        *net.IPNet
	Gateway       net.IP
	Nodes         *net.IPNet // x.y.0.0/18; node i is Nodes' base + 2 + i, below LoadBalancers
	LoadBalancers *net.IPNet // x.y.48.0/20, the top of the node range
	Services      *net.IPNet // x.y.64.0/18
	Pods          *net.IPNet // x.y.128.0/17: the network's --ip-range
}

// SimLoadBalancerCIDR is where LoadBalancer addresses of clusters whose
// pods are simulated come from: a loopback range, so that an address that
// exists only in the API is never dialled off this machine.
const SimLoadBalancerCIDR = "127.255.0.0/16"

// SplitSubnet lays out an IPv4 /16.
func SplitSubnet(cidr string) (SubnetLayout, error) {
	ip, n, err := net.ParseCIDR(cidr)
	if err != nil {
		return SubnetLayout{}, fmt.Errorf("parse cluster subnet: %w", err)
	}
	ip4 := ip.To4()
	if ones, bits := n.Mask.Size(); ip4 == nil || ones != 16 || bits != 32 {
		return SubnetLayout{}, fmt.Errorf("cluster subnet %s is not an IPv4 /16", cidr)
	}
	base := binary.BigEndian.Uint32(n.IP.To4())
	at := func(offset uint32, ones int) *net.IPNet {
		b := make(net.IP, 4)
		binary.BigEndian.PutUint32(b, base+offset)
		return &net.IPNet{IP: b, Mask: net.CIDRMask(ones, 32)}
	}
	gw := make(net.IP, 4)
	binary.BigEndian.PutUint32(gw, base+1)
	return SubnetLayout{
		Subnet:        n,
		Gateway:       gw,
		Nodes:         at(0, 18),
		LoadBalancers: at(48<<8, 20),
		Services:      at(64<<8, 18),
		Pods:          at(128<<8, 17),
	}, nil
}

// NodeIP is the i-th node address of the layout (i from 0).
func (l SubnetLayout) NodeIP(i int) (string, error) {
	if i < 0 || i >= 48*256-3 {
		return "", fmt.Errorf("node index %d is outside the cluster network's node range", i)
	}
	b := make(net.IP, 4)
	binary.BigEndian.PutUint32(b, binary.BigEndian.Uint32(l.Nodes.IP.To4())+2+uint32(i))
	return b.String(), nil
}
