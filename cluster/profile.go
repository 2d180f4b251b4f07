// Package cluster is minik's library: profiles on disk, create/start/stop/
// delete of a cluster through its driver, certificates and node configs,
// waiting for readiness, the kubeconfig merge, adding, stopping, starting
// and deleting single nodes, the URLs of Services, node logs and log
// exports (through the logexport package). It checks every
// option before it acts (InvalidOptionError) and reports progress through a
// Reporter. The CLI, the dashboard and tests all call it; it never prints
// and never exits.
package cluster

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"time"

	"minik.dev/minik/nodeconfig"
)

// DefaultProfile is the profile used when none is named.
const DefaultProfile = "minik"

// ErrNotFound is returned for a profile that does not exist.
var ErrNotFound = errors.New("profile not found")

// ErrCorrupt is returned for a profile folder minik cannot read.
var ErrCorrupt = errors.New("profile is corrupt")

// Profile is a cluster's persistent description, kept in profile.json.
type Profile struct {
	Name              string    `json:"name"`
	Driver            string    `json:"driver"`
	CreatedAt         time.Time `json:"createdAt"`
	KubernetesVersion string    `json:"kubernetesVersion"`
	APIServerPort     int       `json:"apiServerPort"`
	// APIServerAddress is where clients reach the apiserver (host:port)
	// when the driver's nodes are reachable on their addresses; "" for
	// 127.0.0.1:APIServerPort.
	APIServerAddress string `json:"apiServerAddress,omitempty"`
	ServiceCIDR      string `json:"serviceCIDR"`
	PodCIDR          string `json:"podCIDR"`
	// Subnet is the cluster's own network, for drivers that make one.
	Subnet string `json:"subnet,omitempty"`
	// Kubeconfig is the file minik merged the context into; delete cleans it.
	Kubeconfig string `json:"kubeconfig"`
	// NodeDefaults is the capacity of nodes made for this profile.
	NodeDefaults NodeResources `json:"nodeDefaults"`
	// Eviction settings of the control plane.
	NodeMonitorGracePeriodSeconds int           `json:"nodeMonitorGracePeriodSeconds,omitempty"`
	PodEvictionSeconds            int           `json:"podEvictionSeconds,omitempty"`
	Nodes                         []ProfileNode `json:"nodes"`
	// ManifestsDir is the folder the control plane applies; "" for the
	// profile's own manifests folder.
	ManifestsDir string `json:"manifestsDir,omitempty"`
	// PublishLocalhost: LoadBalancer Services are published on the host's
	// 127.0.0.1 too.
	PublishLocalhost bool `json:"publishLocalhost,omitempty"`
	// VMKernel and VMAccel: how VM drivers boot the nodes (drivers.VMOptions).
	VMKernel   string `json:"vmKernel,omitempty"`
	VMAccel    string `json:"vmAccel,omitempty"`
	VMFirmware string `json:"vmFirmware,omitempty"`
	// ListenAddress: the apiserver is also reachable on this address of
	// the host, and nodes from other machines can join (minik-node join).
	ListenAddress string `json:"listenAddress,omitempty"`
	// Autoscale: the control plane adds and removes workers as pods need.
	Autoscale *ProfileAutoscale `json:"autoscale,omitempty"`
}

// NodeResources is a node's capacity.
type NodeResources struct {
	CPUMillis   int64 `json:"cpuMillis"`
	MemoryBytes int64 `json:"memoryBytes"`
	MaxPods     int   `json:"maxPods"`
}

// newNode describes a node of this profile with the default capacity.
func (p *Profile) newNode(name, role, ip string) ProfileNode {
	return ProfileNode{
		Name:        name,
		Role:        role,
		IP:          ip,
		KubeletPort: DefaultKubeletPort,
		CPUMillis:   p.NodeDefaults.CPUMillis,
		MemoryBytes: p.NodeDefaults.MemoryBytes,
		MaxPods:     p.NodeDefaults.MaxPods,
	}
}

// NodeCIDRMaskSize is the size of each node's podCIDR: big enough for the
// largest max-pods of the profile's nodes (a /24 holds 253 pods).
func (p *Profile) NodeCIDRMaskSize() int {
	most := p.NodeDefaults.MaxPods
	for _, n := range p.Nodes {
		most = max(most, n.MaxPods)
	}
	switch {
	case most <= 253:
		return 24
	case most <= 509:
		return 23
	default:
		return 22
	}
}

// ProfileNode is one node of a profile.
type ProfileNode struct {
	Name        string `json:"name"`
	Role        string `json:"role"`
	IP          string `json:"ip"`
	KubeletPort int    `json:"kubeletPort"`
	CPUMillis   int64  `json:"cpuMillis"`
	MemoryBytes int64  `json:"memoryBytes"`
	MaxPods     int    `json:"maxPods,omitempty"`
	// Autoscaled: the autoscaler made this worker.
	Autoscaled bool `json:"autoscaled,omitempty"`
}

// ControlPlane returns the control-plane node.
func (p *Profile) ControlPlane() *ProfileNode {
	for i := range p.Nodes {
		if p.Nodes[i].Role == nodeconfig.RoleControlPlane {
			return &p.Nodes[i]
		}
	}
	return nil
}

// APIServerURL is where clients reach the apiserver.
func (p *Profile) APIServerURL() string {
	if p.APIServerAddress != "" {
		return "https://" + p.APIServerAddress
	}
	return fmt.Sprintf("https://127.0.0.1:%d", p.APIServerPort)
}

func (p *Profile) validate() error {
	if err := ValidateName(p.Name); err != nil {
		return err
	}
	if p.Driver == "" || len(p.Nodes) == 0 || p.ControlPlane() == nil {
		return errors.New("missing driver or control-plane node")
	}
	if p.APIServerPort <= 0 || p.APIServerPort > 65535 {
		return fmt.Errorf("apiserver port %d out of range", p.APIServerPort)
	}
	return nil
}

var profileNameRE = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)

// ValidateName checks that a profile name is a DNS-1123 label, because it
// names nodes, kubeconfig contexts and (with other drivers) containers.
func ValidateName(name string) error {
	if len(name) == 0 || len(name) > 50 || !profileNameRE.MatchString(name) {
		return &InvalidOptionError{Field: "Profile", Value: strconv.Quote(name),
			Reason: "use 1-50 lower-case letters, digits and '-', starting and ending with a letter or digit"}
	}
	return nil
}

// Store is the folder $MINIK_HOME that holds every profile.
type Store struct{ Home string }

// ProfileDir is a profile's folder.
func (s Store) ProfileDir(name string) string { return filepath.Join(s.Home, "profiles", name) }

func (s Store) profileFile(name string) string {
	return filepath.Join(s.ProfileDir(name), "profile.json")
}

// PKIDir is where a profile's certificates live.
// ManifestsDir is the folder the control plane of p applies.
func (s Store) ManifestsDir(p *Profile) string {
	if p.ManifestsDir != "" {
		return p.ManifestsDir
	}
	return filepath.Join(s.ProfileDir(p.Name), "manifests")
}

func (s Store) PKIDir(name string) string { return filepath.Join(s.ProfileDir(name), "pki") }

// AdminKubeconfig is the profile's own kubeconfig, always present.
func (s Store) AdminKubeconfig(name string) string {
	return filepath.Join(s.ProfileDir(name), "kubeconfig")
}

// NodeDir is a node's folder in its profile.
func (s Store) NodeDir(profile, node string) string {
	return filepath.Join(s.ProfileDir(profile), "nodes", node)
}

func (s Store) lockFile(name string) string { return filepath.Join(s.Home, "locks", name+".lock") }

// Exists reports whether the profile's folder exists.
func (s Store) Exists(name string) bool {
	_, err := os.Stat(s.ProfileDir(name))
	return err == nil
}

// Load reads a profile. A missing folder is ErrNotFound; a folder that does
// not hold a valid profile.json is ErrCorrupt.
func (s Store) Load(name string) (*Profile, error) {
	if !s.Exists(name) {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, name)
	}
	data, err := os.ReadFile(s.profileFile(name))
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrCorrupt, name, err)
	}
	var p Profile
	if err := json.Unmarshal(data, &p); err != nil {
		return nil, fmt.Errorf("%w: %s: parse %s: %v", ErrCorrupt, name, s.profileFile(name), err)
	}
	if p.Name != name {
		return nil, fmt.Errorf("%w: %s: profile.json names %q", ErrCorrupt, name, p.Name)
	}
	if err := p.validate(); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrCorrupt, name, err)
	}
	return &p, nil
}

// Save writes a profile atomically.
func (s Store) Save(p *Profile) error {
	if err := p.validate(); err != nil {
		return fmt.Errorf("save profile %s: %w", p.Name, err)
	}
	data, err := json.MarshalIndent(p, "", "  ")
	if err != nil {
		return fmt.Errorf("save profile %s: %w", p.Name, err)
	}
	if err := nodeconfig.WriteFileAtomic(s.profileFile(p.Name), data, 0o600); err != nil {
		return fmt.Errorf("save profile %s: %w", p.Name, err)
	}
	return nil
}

// Names lists the profiles' names, sorted.
func (s Store) Names() ([]string, error) {
	entries, err := os.ReadDir(filepath.Join(s.Home, "profiles"))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list profiles: %w", err)
	}
	var names []string
	for _, e := range entries {
		if e.IsDir() && ValidateName(e.Name()) == nil {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names)
	return names, nil
}
