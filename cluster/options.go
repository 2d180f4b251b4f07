package cluster

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"k8s.io/apimachinery/pkg/api/resource"

	"minik.dev/minik/drivers"
	"minik.dev/minik/nodeconfig"
)

// Limits of the options.
const (
	// MaxNodes bounds a cluster's nodes.
	MaxNodes = 500
	// MaxPodsLimit bounds a node's max pods: its podCIDR is at most a /22.
	MaxPodsLimit = 1000
	// MinCPUMillis and MinMemoryBytes are the least capacity a node is given.
	MinCPUMillis   = 100
	MinMemoryBytes = 64 << 20
	// MinEvictionTiming is the shortest node monitor grace period and pod
	// eviction timeout: the control plane counts them in whole seconds.
	MinEvictionTiming = time.Second
)

// InvalidOptionError is the error of an option out of range: Start,
// AddNode and StartNode check every option before they do anything, and
// return it for the first bad one.
type InvalidOptionError struct {
	// Field is the option's field in StartOptions or AddNodeOptions:
	// Profile, Nodes, APIServerPort, Wait, CPUMillis, MemoryBytes, MaxPods,
	// NodeMonitorGracePeriod, PodEvictionTimeout or Role; Tail of
	// NodeLogOptions; Path of ExportLogsOptions.
	Field string
	// Value is the value given, as a message shows it.
	Value string
	// Reason says what is valid.
	Reason string
}

// optionWords name the options in messages of the library.
var optionWords = map[string]string{
	"Profile":                "profile name",
	"Nodes":                  "node count",
	"APIServerPort":          "apiserver port",
	"Wait":                   "wait",
	"CPUMillis":              "CPU capacity",
	"MemoryBytes":            "memory capacity",
	"MaxPods":                "max pods",
	"NodeMonitorGracePeriod": "node monitor grace period",
	"PodEvictionTimeout":     "pod eviction timeout",
	"Role":                   "role",
	"ManifestsDir":           "manifests folder",
	"ListenAddress":          "listen address",
	"TTL":                    "token lifetime",
	"Tail":                   "tail",
	"Path":                   "export path",
	"VMKernel":               "VM kernel",
	"VMAccel":                "VM accelerator",
	"VMFirmware":             "VM firmware",
	"Autoscale":              "autoscaling bounds",
	"ScaleDownAfter":         "scale-down delay",
}

func (e *InvalidOptionError) Error() string {
	name, ok := optionWords[e.Field]
	if !ok {
		name = e.Field
	}
	return fmt.Sprintf("invalid %s %s: %s", name, e.Value, e.Reason)
}

// StartOptions say what to start.
type StartOptions struct {
	Profile string
	// Driver is "" for auto-selection (or the existing profile's driver).
	Driver string
	// VMKernel and VMAccel choose how VM drivers boot nodes (see
	// drivers.VMOptions); kept in the profile for later starts.
	VMKernel   string
	VMAccel    string
	VMFirmware string
	// Retain keeps what a failed or interrupted start made, for a look.
	Retain bool
	// DefaultDriver is used instead of auto-selection when a profile is
	// created with no Driver ($MINIK_DRIVER).
	DefaultDriver string
	// Nodes is how many nodes a new profile gets, 1 to MaxNodes; nil for
	// the default (1, or what the existing profile has).
	Nodes *int
	// APIServerPort is 0 for a free port.
	APIServerPort int
	// Wait is how long to wait for every node Ready and the default
	// ServiceAccount; 0 returns as soon as the apiserver answers.
	Wait time.Duration
	// Node capacity, when creating: 0 for the defaults (this machine's CPUs,
	// a fair share of its memory, 110 pods).
	CPUMillis   int64
	MemoryBytes int64
	MaxPods     int
	// Eviction timing, at least MinEvictionTiming; 0 keeps the profile's
	// (default 20 s and 15 s).
	NodeMonitorGracePeriod time.Duration
	PodEvictionTimeout     time.Duration
	// ManifestsDir is the folder the control plane applies, when creating
	// (an absolute path); "" for the profile's manifests folder.
	ManifestsDir string
	// PublishLocalhost also publishes LoadBalancer Services' ports on the
	// host's 127.0.0.1 (docker driver), as minik does on its own for Docker
	// Desktop; kept in the profile once set.
	PublishLocalhost bool
	// ListenAddress is an address of this machine where the apiserver is
	// also reachable, for nodes joining from other machines (when
	// creating); "" keeps it on 127.0.0.1 only.
	ListenAddress string
	// Autoscale turns cluster autoscaling on (kept in the profile); nil
	// keeps the profile's.
	Autoscale *AutoscaleOptions
	// Prometheus turns the Prometheus server on once the cluster runs
	// (kept in the cluster, like `minik addons enable prometheus`); nil
	// keeps what the cluster has.
	Prometheus *nodeconfig.Prometheus
}

// Validate returns an *InvalidOptionError for the first option out of
// range. It needs no profile: Start calls it before it touches anything.
func (o StartOptions) Validate() error {
	if err := ValidateName(o.Profile); err != nil {
		return err
	}
	if o.Nodes != nil {
		switch n := *o.Nodes; {
		case n < 1:
			return &InvalidOptionError{Field: "Nodes", Value: strconv.Itoa(n), Reason: "a cluster needs at least 1 node"}
		case n > MaxNodes:
			return &InvalidOptionError{Field: "Nodes", Value: strconv.Itoa(n), Reason: fmt.Sprintf("use 1 to %d", MaxNodes)}
		}
	}
	if o.APIServerPort < 0 || o.APIServerPort > 65535 {
		return &InvalidOptionError{Field: "APIServerPort", Value: strconv.Itoa(o.APIServerPort), Reason: "use 1 to 65535, or 0 for a free port"}
	}
	if err := checkWait(o.Wait); err != nil {
		return err
	}
	if err := checkCapacity(o.CPUMillis, o.MemoryBytes, o.MaxPods); err != nil {
		return err
	}
	for _, t := range []struct {
		field string
		d     time.Duration
	}{{"NodeMonitorGracePeriod", o.NodeMonitorGracePeriod}, {"PodEvictionTimeout", o.PodEvictionTimeout}} {
		if t.d != 0 && t.d < MinEvictionTiming {
			return &InvalidOptionError{Field: t.field, Value: t.d.String(), Reason: "use at least " + MinEvictionTiming.String()}
		}
	}
	if d := o.ManifestsDir; d != "" {
		if !filepath.IsAbs(d) {
			return &InvalidOptionError{Field: "ManifestsDir", Value: d, Reason: "use an absolute path"}
		}
		if fi, err := os.Stat(d); err == nil && !fi.IsDir() {
			return &InvalidOptionError{Field: "ManifestsDir", Value: d, Reason: "it is a file, not a folder"}
		}
	}
	if a := o.ListenAddress; a != "" {
		if err := checkListenAddress(a); err != nil {
			return &InvalidOptionError{Field: "ListenAddress", Value: a, Reason: err.Error()}
		}
	}
	if o.Autoscale != nil {
		if err := o.Autoscale.Validate(); err != nil {
			return err
		}
	}
	if s := o.Prometheus; s != nil {
		if err := s.Validate(); err != nil {
			return &InvalidOptionError{Field: "Prometheus", Value: fmt.Sprint(s.Data()), Reason: err.Error()}
		}
	}
	switch o.VMAccel {
	case "", drivers.AccelKVM, drivers.AccelTCG:
	default:
		return &InvalidOptionError{Field: "VMAccel", Value: o.VMAccel, Reason: "use kvm or tcg, or leave it out to detect"}
	}
	switch o.VMFirmware {
	case "", drivers.FirmwareDirect, drivers.FirmwareEFI:
	default:
		return &InvalidOptionError{Field: "VMFirmware", Value: o.VMFirmware, Reason: "use direct or efi"}
	}
	if k := o.VMKernel; k != "" {
		if fi, err := os.Stat(k); err != nil || fi.IsDir() {
			return &InvalidOptionError{Field: "VMKernel", Value: k, Reason: "name a kernel file (vmlinuz-RELEASE) or a Debian linux-image .deb that exists"}
		}
	}
	return nil
}

// checkListenAddress accepts one address that this machine has, other
// than loopback (always listened on) or "every address".
func checkListenAddress(a string) error {
	ip := net.ParseIP(a)
	switch {
	case ip == nil:
		return errors.New("not an IP address")
	case ip.IsUnspecified():
		return errors.New("name one address of this machine, not every address")
	case ip.IsLoopback():
		return errors.New("the apiserver always listens on loopback; name an address other machines reach")
	}
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return fmt.Errorf("list this machine's addresses: %w", err)
	}
	for _, addr := range addrs {
		if n, ok := addr.(*net.IPNet); ok && n.IP.Equal(ip) {
			return nil
		}
	}
	return errors.New("no interface of this machine has it (`ip -brief address` lists them)")
}

// AddNodeOptions say what node to add.
type AddNodeOptions struct {
	// Role is "" or "worker": a cluster has exactly one control plane.
	Role string
	// Wait is how long to wait for the node Ready; 0 returns once it is started.
	Wait time.Duration
	// Capacity of this node; 0 takes the profile's defaults.
	CPUMillis   int64
	MemoryBytes int64
	MaxPods     int
	// Autoscaled marks a worker the autoscaler asked for.
	Autoscaled bool
}

// Validate returns an *InvalidOptionError for the first option out of
// range. What depends on the cluster (its node count, the size of its
// nodes' pod CIDRs) is checked by AddNode once it has read the profile.
func (o AddNodeOptions) Validate() error {
	if _, err := addRole(o.Role); err != nil {
		return err
	}
	if err := checkWait(o.Wait); err != nil {
		return err
	}
	return checkCapacity(o.CPUMillis, o.MemoryBytes, o.MaxPods)
}

// addRole validates the role of a node to add; "" means a worker.
func addRole(role string) (string, error) {
	switch role {
	case "", nodeconfig.RoleWorker:
		return nodeconfig.RoleWorker, nil
	case nodeconfig.RoleControlPlane:
		return "", &InvalidOptionError{Field: "Role", Value: strconv.Quote(role), Reason: "minik supports only one control plane; add a " + nodeconfig.RoleWorker}
	default:
		return "", &InvalidOptionError{Field: "Role", Value: strconv.Quote(role), Reason: "use " + nodeconfig.RoleWorker}
	}
}

// checkWait checks how long a command waits for readiness.
func checkWait(wait time.Duration) error {
	if wait < 0 {
		return &InvalidOptionError{Field: "Wait", Value: wait.String(), Reason: "use a duration such as 5m, or 0 not to wait"}
	}
	return nil
}

// checkCapacity checks a node's capacity; 0 takes the default.
func checkCapacity(cpuMillis, memoryBytes int64, maxPods int) error {
	if cpuMillis != 0 {
		if err := CheckCPUMillis(cpuMillis); err != nil {
			return err
		}
	}
	if memoryBytes != 0 {
		if err := CheckMemoryBytes(memoryBytes); err != nil {
			return err
		}
	}
	if maxPods < 0 || maxPods > MaxPodsLimit {
		return &InvalidOptionError{Field: "MaxPods", Value: strconv.Itoa(maxPods), Reason: fmt.Sprintf("use 1 to %d", MaxPodsLimit)}
	}
	return nil
}

// CheckCPUMillis checks a CPU capacity given for a node (where options
// take 0 for the default, a given 0 is too little).
func CheckCPUMillis(m int64) error {
	if m < MinCPUMillis {
		return &InvalidOptionError{Field: "CPUMillis", Value: strconv.FormatInt(m, 10) + "m",
			Reason: fmt.Sprintf("use cores such as 2 or millicores such as 1500m (at least %dm)", MinCPUMillis)}
	}
	return nil
}

// CheckMemoryBytes checks a memory capacity given for a node (where
// options take 0 for the default, a given 0 is too little).
func CheckMemoryBytes(b int64) error {
	if b < MinMemoryBytes {
		return &InvalidOptionError{Field: "MemoryBytes", Value: resource.NewQuantity(b, resource.BinarySI).String(),
			Reason: "use a size such as 4Gi or 4096 (MiB), at least " + resource.NewQuantity(MinMemoryBytes, resource.BinarySI).String()}
	}
	return nil
}
