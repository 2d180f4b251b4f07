package engine

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"net/netip"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"

	"minik.dev/minik/nodeconfig"
)

// SandboxSpec is the pod a sandbox holds the network namespace for.
type SandboxSpec struct {
	PodUID, Namespace, Name string
	Hostname                string
	// Domainname makes the engine's /etc/hosts name the pod
	// HOSTNAME.DOMAINNAME too, as the kubelet's does for a pod with a
	// subdomain; ExtraHosts ("name:ip") are the pod's hostAliases.
	Domainname string
	ExtraHosts []string
	// DNS servers, search domains and resolver options for the pod; app
	// containers share the sandbox's resolv.conf. Empty means the
	// engine's defaults.
	DNS, DNSSearch, DNSOptions []string
	// HostNetwork puts the pod in the node container's network namespace
	// (hostNetwork: true): it has the node's IP, and no address of its own.
	HostNetwork bool
	// Volumes are mounted in the sandbox for the pod's life: a tmpfs
	// volume (an emptyDir of medium Memory) keeps its data while the
	// pod's containers restart.
	Volumes []string
	// Sysctls are the pod's namespaced kernel parameters, set in the
	// sandbox's namespaces, which the pod's containers share.
	Sysctls map[string]string
}

// RunSandbox creates and starts the pod's sandbox container on the cluster
// network and returns its ID and its address there (the pod IP). It is
// safe to repeat: a running sandbox of the pod is returned as it is, a
// stopped one is replaced (its network namespace, and so the pod IP, is
// gone with it), together with the app containers that joined it. Calls
// for one pod must not run concurrently.
func (e *Engine) RunSandbox(ctx context.Context, spec SandboxSpec) (id, ip string, err error) {
	labels := e.podLabels(nodeconfig.KindSandbox, spec.PodUID, spec.Namespace, spec.Name)
	existing, err := e.cli.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: labelFilter(map[string]string{
		nodeconfig.LabelCluster: e.cluster,
		nodeconfig.LabelKind:    nodeconfig.KindSandbox,
		nodeconfig.LabelPodUID:  spec.PodUID,
	})})
	if err != nil {
		return "", "", fmt.Errorf("list sandboxes of pod %s: %w", spec.PodUID, err)
	}
	for _, c := range existing.Items {
		if c.State == container.StateRunning && spec.HostNetwork {
			return c.ID, "", nil
		}
		if c.State == container.StateRunning {
			ip, err := e.sandboxIP(ctx, c.ID)
			if err != nil {
				return "", "", err
			}
			return c.ID, ip, nil
		}
		if err := e.removeSandbox(ctx, spec.PodUID, c.ID); err != nil {
			return "", "", fmt.Errorf("replace stopped sandbox: %w", err)
		}
	}

	dns := make([]netip.Addr, 0, len(spec.DNS))
	for _, s := range spec.DNS {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return "", "", fmt.Errorf("parse pod DNS server: %w", err)
		}
		dns = append(dns, a)
	}
	// The volume of the files the node makes for the pod lives and goes
	// with the pod's other volumes.
	files, err := e.ensureVolume(ctx, podFilesVolumeName(spec.PodUID), nodeconfig.LabelPodUID, spec.PodUID, nil)
	if err != nil {
		return "", "", fmt.Errorf("create sandbox of pod %s/%s: %w", spec.Namespace, spec.Name, err)
	}
	cfg := &container.Config{
		Image:      e.cfg.SandboxImage,
		Hostname:   spec.Hostname,
		Domainname: spec.Domainname,
		Labels:     labels,
	}
	if len(e.cfg.SandboxCommand) > 0 {
		cfg.Entrypoint = e.cfg.SandboxCommand
		cfg.Cmd = []string{}
	}
	name := fmt.Sprintf("k8s_POD_%s_%s_%s_0", spec.Name, spec.Namespace, spec.PodUID)
	opts := client.ContainerCreateOptions{
		Name:   name,
		Config: cfg,
		HostConfig: &container.HostConfig{
			NetworkMode: container.NetworkMode(e.cfg.Network),
			// App containers join the sandbox's IPC namespace, which the
			// engine only allows for a shareable one.
			IpcMode:    container.IPCModeShareable,
			Mounts:     sandboxMounts(append(spec.Volumes, files)),
			DNS:        dns,
			DNSSearch:  spec.DNSSearch,
			DNSOptions: spec.DNSOptions,
			ExtraHosts: spec.ExtraHosts,
			Sysctls:    spec.Sysctls,
		},
		NetworkingConfig: &network.NetworkingConfig{
			EndpointsConfig: map[string]*network.EndpointSettings{e.cfg.Network: {}},
		},
	}
	if spec.HostNetwork {
		// The node container is named after the node. Hostname and DNS
		// come with its namespace: the engine refuses them here.
		opts.HostConfig.NetworkMode = container.NetworkMode("container:" + e.node)
		if e.cfg.HostIsNode {
			opts.HostConfig.NetworkMode = container.NetworkMode(network.NetworkHost)
		}
		opts.HostConfig.DNS, opts.HostConfig.DNSSearch, opts.HostConfig.DNSOptions = nil, nil, nil
		opts.Config.Domainname = ""
		opts.NetworkingConfig = nil
		cfg.Hostname = ""
	}
	id, err = e.create(ctx, name, spec.PodUID, opts)
	if err != nil {
		return "", "", fmt.Errorf("create sandbox of pod %s/%s: %w", spec.Namespace, spec.Name, err)
	}
	if err := e.Start(ctx, id); err != nil {
		_ = e.Remove(ctx, id)
		return "", "", fmt.Errorf("run sandbox of pod %s/%s: %w", spec.Namespace, spec.Name, err)
	}
	if spec.HostNetwork {
		return id, "", nil
	}
	ip, err = e.sandboxIP(ctx, id)
	if err != nil {
		_ = e.Remove(ctx, id)
		return "", "", err
	}
	// The pod's /etc/hosts is the kubelet's, not the engine's: app
	// containers bind it (ContainerSpec.ManagedHosts).
	if err := e.writePodFile(ctx, id, spec.PodUID, hostsFile, HostsFile(ip, spec.Hostname, spec), 0o644); err != nil {
		_ = e.Remove(ctx, id)
		return "", "", fmt.Errorf("write the /etc/hosts of pod %s/%s: %w", spec.Namespace, spec.Name, err)
	}
	// So is its /etc/resolv.conf: on the engine's network the engine
	// writes its own resolver (127.0.0.11) there, whatever the pod's DNS
	// servers, which it only forwards to.
	if resolv := ResolvConf(spec); resolv != nil {
		if err := e.writePodFile(ctx, id, spec.PodUID, resolvFile, resolv, 0o644); err != nil {
			_ = e.Remove(ctx, id)
			return "", "", fmt.Errorf("write the /etc/resolv.conf of pod %s/%s: %w", spec.Namespace, spec.Name, err)
		}
	}
	return id, ip, nil
}

func sandboxMounts(volumes []string) []mount.Mount {
	out := make([]mount.Mount, 0, len(volumes))
	for _, v := range volumes {
		out = append(out, mount.Mount{Type: mount.TypeVolume, Source: v, Target: "/volumes/" + v, VolumeOptions: &mount.VolumeOptions{NoCopy: true}})
	}
	return out
}

// removeSandbox removes a sandbox and the app containers that joined it:
// they can never run again without its namespaces, and the engine does not
// remove a container whose namespaces others use.
func (e *Engine) removeSandbox(ctx context.Context, podUID, id string) error {
	apps, err := e.cli.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: labelFilter(map[string]string{
		nodeconfig.LabelCluster: e.cluster,
		nodeconfig.LabelKind:    nodeconfig.KindContainer,
		nodeconfig.LabelPodUID:  podUID,
	})})
	if err != nil {
		return fmt.Errorf("list containers of pod %s: %w", podUID, err)
	}
	for _, c := range apps.Items {
		// The mode holds the ID as the caller gave it, maybe shortened.
		joined, ok := strings.CutPrefix(c.HostConfig.NetworkMode, "container:")
		if ok && joined != "" && strings.HasPrefix(id, joined) {
			if err := e.Remove(ctx, c.ID); err != nil {
				return err
			}
		}
	}
	return e.Remove(ctx, id)
}

// sandboxIP is the sandbox's IPv4 address on the cluster network.
func (e *Engine) sandboxIP(ctx context.Context, id string) (string, error) {
	res, err := e.cli.ContainerInspect(ctx, id, client.ContainerInspectOptions{})
	if err != nil {
		return "", wrap(err, "inspect sandbox %s", id)
	}
	ns := res.Container.NetworkSettings
	if ns != nil {
		ep := ns.Networks[e.cfg.Network]
		if ep == nil && len(ns.Networks) == 1 {
			// cfg.Network may be the network's ID rather than its name.
			for _, only := range ns.Networks {
				ep = only
			}
		}
		if ep != nil && ep.IPAddress.Is4() {
			return ep.IPAddress.String(), nil
		}
	}
	return "", fmt.Errorf("sandbox %s has no IPv4 address on network %s", id, e.cfg.Network)
}

// Mount is a named volume mounted into a container.
type Mount struct {
	Volume   string
	Path     string
	ReadOnly bool
	// SubPath mounts this path of the volume instead of all of it; it is
	// made if missing (see SubPathType), and may not pass a symbolic link.
	SubPath     string
	SubPathType string
	// Owned volumes belong to the pod's FSGroup, when it has one.
	Owned bool
	// OpenRoot makes the volume's root writable by every user (0777, or
	// 2777 with an FSGroup), as the kubelet makes an emptyDir's.
	OpenRoot bool
	// Seed is what a file sub-path that has to be made starts with (a
	// hostPath file the node has: the volume stands for its folder).
	Seed []byte
}

// File is copied into a container before it starts.
type File struct {
	Path string
	Data []byte
	// Mode is the file's permission bits; 0 means 0644.
	Mode int64
	// GID is the group of the file and of the folders made for it (the
	// pod's fsGroup); 0 is root's.
	GID int64
}

// ContainerSpec is one app container of a pod.
type ContainerSpec struct {
	PodUID, Namespace, PodName, Name string
	// Attempt counts restarts of the container (0 for the first run).
	Attempt   int
	SandboxID string
	Image     string
	// Command overrides the image's ENTRYPOINT and Args its CMD, as in
	// Kubernetes: empty keeps the image's, and a Command without Args
	// runs with no CMD.
	Command, Args []string
	Env           []string
	WorkingDir    string
	Mounts        []Mount
	Files         []File
	// FSGroup is the pod's fsGroup: a supplementary group of the
	// container, and the group of its Owned volumes.
	FSGroup *int64
	Resources
	// OOMScoreAdj is the kernel's OOM score adjustment of the container's
	// processes, by the pod's QoS class as the kubelet sets it.
	OOMScoreAdj int
	Stdin, TTY  bool
	// StdinOnce closes stdin when the first attached client leaves.
	StdinOnce bool
	Security  Security
	// ManagedHosts binds the pod's /etc/hosts, as the kubelet writes it,
	// unless the container mounts a volume there; false leaves the
	// engine's (a pod on the node's network has the node's).
	ManagedHosts bool
	// ManagedDNS binds the pod's /etc/resolv.conf, as the kubelet has it
	// written, unless the container mounts a volume there: for a pod not
	// on the node's network whose sandbox had DNS servers, search domains
	// or options (engine.ResolvConf).
	ManagedDNS bool
	// TerminationMessagePath is where the container finds an empty file
	// to write its termination message to; empty for none.
	TerminationMessagePath string
	// PIDNamespace is the container whose process namespace this one
	// joins (the sandbox of a pod that shares one, an ephemeral
	// container's target); empty gives it one of its own.
	PIDNamespace string
}

// Resources are what a container may use: CPUMillis and MemoryBytes are
// limits (0 means none); CPUShares weighs its CPU against others', from
// its request.
type Resources struct {
	CPUMillis, MemoryBytes int64
	CPUShares              int64
}

// CFS bandwidth as the kubelet sets it: a quota of the period per CPU,
// never under the kernel's minimum (so 1m and 10m limits are the same).
const (
	cpuPeriod   = 100000
	minCPUQuota = 1000
)

// dockerResources are r as the engine takes them; without swap, as the
// kubelet runs containers. The CPU limit is a CFS quota, not the engine's
// NanoCPUs, which refuses less than 10m.
func dockerResources(r Resources) container.Resources {
	out := container.Resources{CPUShares: r.CPUShares, Memory: r.MemoryBytes}
	if r.CPUMillis > 0 {
		out.CPUPeriod, out.CPUQuota = cpuPeriod, max(r.CPUMillis*cpuPeriod/1000, minCPUQuota)
	}
	if r.MemoryBytes > 0 {
		out.MemorySwap = r.MemoryBytes
	}
	return out
}

// UpdateResources changes a running container's resources in place (an
// in-place pod resize).
func (e *Engine) UpdateResources(ctx context.Context, id string, r Resources) error {
	res := dockerResources(r)
	if r.CPUMillis == 0 {
		// No limit now: the engine takes a quota of 0 as no change.
		res.CPUPeriod, res.CPUQuota = cpuPeriod, -1
	}
	if _, err := e.cli.ContainerUpdate(ctx, id, client.ContainerUpdateOptions{Resources: &res}); err != nil {
		return fmt.Errorf("update resources of container %s: %w", id, err)
	}
	return nil
}

// Security is a container's securityContext in the engine's terms.
type Security struct {
	// User is "UID" or "UID:GID"; empty runs as the image says.
	User string
	// Groups are supplementary groups besides the FSGroup.
	Groups                                      []int64
	ReadOnlyRootfs, Privileged, NoNewPrivileges bool
	// CapAdd and CapDrop name capabilities as Kubernetes does
	// ("NET_ADMIN", "ALL").
	CapAdd, CapDrop []string
}

// CreateContainer creates (does not start) an app container in the pod's
// sandbox namespaces, copies spec.Files into it, and returns its ID.
func (e *Engine) CreateContainer(ctx context.Context, spec ContainerSpec) (string, error) {
	labels := e.podLabels(nodeconfig.KindContainer, spec.PodUID, spec.Namespace, spec.PodName)
	labels[nodeconfig.LabelContainer] = spec.Name
	labels[nodeconfig.LabelAttempt] = strconv.Itoa(spec.Attempt)
	cfg := &container.Config{
		Image:      spec.Image,
		Env:        spec.Env,
		WorkingDir: spec.WorkingDir,
		Labels:     labels,
		Tty:        spec.TTY,
		OpenStdin:  spec.Stdin,
		StdinOnce:  spec.StdinOnce,
	}
	if len(spec.Command) > 0 {
		// The engine takes no CMD from the image when the entrypoint is
		// given, which is Kubernetes' rule for a command without args.
		cfg.Entrypoint = spec.Command
	}
	if len(spec.Args) > 0 {
		cfg.Cmd = spec.Args
	}
	mounts, err := e.mounts(ctx, spec)
	if err != nil {
		return "", fmt.Errorf("create container %s of pod %s/%s: %w", spec.Name, spec.Namespace, spec.PodName, err)
	}
	if spec.ManagedHosts && !slices.ContainsFunc(spec.Mounts, func(m Mount) bool { return path.Clean(m.Path) == "/etc/hosts" }) {
		m, err := e.podFileMount(ctx, spec.PodUID, hostsFile, "/etc/hosts")
		if err != nil {
			return "", fmt.Errorf("create container %s of pod %s/%s: /etc/hosts: %w", spec.Name, spec.Namespace, spec.PodName, err)
		}
		mounts = append(mounts, m)
	}
	if spec.ManagedDNS && !slices.ContainsFunc(spec.Mounts, func(m Mount) bool { return path.Clean(m.Path) == "/etc/resolv.conf" }) {
		m, err := e.podFileMount(ctx, spec.PodUID, resolvFile, "/etc/resolv.conf")
		if err != nil {
			return "", fmt.Errorf("create container %s of pod %s/%s: /etc/resolv.conf: %w", spec.Name, spec.Namespace, spec.PodName, err)
		}
		mounts = append(mounts, m)
	}
	if spec.TerminationMessagePath != "" {
		m, err := e.terminationMount(ctx, spec)
		if err != nil {
			return "", fmt.Errorf("create container %s of pod %s/%s: %w", spec.Name, spec.Namespace, spec.PodName, err)
		}
		mounts = append(mounts, m)
	}
	var groups []string
	if spec.FSGroup != nil {
		groups = []string{strconv.FormatInt(*spec.FSGroup, 10)}
	}
	for _, g := range spec.Security.Groups {
		groups = append(groups, strconv.FormatInt(g, 10))
	}
	cfg.User = spec.Security.User
	var securityOpt []string
	if spec.Security.NoNewPrivileges {
		securityOpt = append(securityOpt, "no-new-privileges:true")
	}
	var pidMode container.PidMode
	if spec.PIDNamespace != "" {
		pidMode = container.PidMode("container:" + spec.PIDNamespace)
	}
	sandbox := "container:" + spec.SandboxID
	name := fmt.Sprintf("k8s_%s_%s_%s_%s_%d", spec.Name, spec.PodName, spec.Namespace, spec.PodUID, spec.Attempt)
	id, err := e.create(ctx, name, spec.PodUID, client.ContainerCreateOptions{
		Name:   name,
		Config: cfg,
		HostConfig: &container.HostConfig{
			NetworkMode: container.NetworkMode(sandbox),
			IpcMode:     container.IpcMode(sandbox),
			PidMode:     pidMode,
			Mounts:      mounts,
			GroupAdd:    groups,
			// The engine's default capabilities are the runtime's, as
			// with containerd; the container's own adds and drops apply.
			CapAdd:         spec.Security.CapAdd,
			CapDrop:        spec.Security.CapDrop,
			Privileged:     spec.Security.Privileged,
			ReadonlyRootfs: spec.Security.ReadOnlyRootfs,
			SecurityOpt:    securityOpt,
			Resources:      dockerResources(spec.Resources),
			OomScoreAdj:    spec.OOMScoreAdj,
		},
	})
	if err != nil {
		return "", fmt.Errorf("create container %s of pod %s/%s: %w", spec.Name, spec.Namespace, spec.PodName, err)
	}
	if len(spec.Files) > 0 {
		if err := e.copyFiles(ctx, id, spec.Files); err != nil {
			_ = e.Remove(ctx, id)
			return "", fmt.Errorf("create container %s of pod %s/%s: %w", spec.Name, spec.Namespace, spec.PodName, err)
		}
	}
	return id, nil
}

// mounts are the engine's mounts of a container: whole volumes as they
// are, sub-paths bound from where the engine keeps the volume, once
// volumeSetup has made them (and given owned volumes to the FSGroup).
func (e *Engine) mounts(ctx context.Context, spec ContainerSpec) ([]mount.Mount, error) {
	type setup struct {
		subPaths map[string]string
		seeds    map[string][]byte
		owned    bool
		open     bool
	}
	setups := map[string]*setup{}
	for _, m := range spec.Mounts {
		owned := m.Owned && spec.FSGroup != nil
		if m.SubPath == "" && !owned && !m.OpenRoot {
			continue
		}
		s := setups[m.Volume]
		if s == nil {
			s = &setup{subPaths: map[string]string{}}
			setups[m.Volume] = s
		}
		if m.SubPath != "" {
			s.subPaths[m.SubPath] = m.SubPathType
			if m.Seed != nil {
				if s.seeds == nil {
					s.seeds = map[string][]byte{}
				}
				s.seeds[m.SubPath] = m.Seed
			}
		}
		s.owned = s.owned || owned
		s.open = s.open || m.OpenRoot
	}
	sources := map[string]map[string]string{}
	for volume, s := range setups {
		var group *int64
		if s.owned {
			group = spec.FSGroup
		}
		paths, err := e.volumeSetup(ctx, spec.PodUID, volume, s.subPaths, s.seeds, group, s.open)
		if err != nil {
			return nil, err
		}
		sources[volume] = paths
	}
	out := make([]mount.Mount, 0, len(spec.Mounts))
	for _, m := range spec.Mounts {
		if m.SubPath != "" {
			out = append(out, mount.Mount{Type: mount.TypeBind, Source: sources[m.Volume][m.SubPath], Target: m.Path, ReadOnly: m.ReadOnly})
			continue
		}
		out = append(out, mount.Mount{
			Type:     mount.TypeVolume,
			Source:   m.Volume,
			Target:   m.Path,
			ReadOnly: m.ReadOnly,
			// An emptyDir starts empty, whatever the image has at the path.
			VolumeOptions: &mount.VolumeOptions{NoCopy: true},
		})
	}
	return out, nil
}

// create creates a container; a leftover container of the same pod that
// holds the name (a crash between create and record) is replaced.
func (e *Engine) create(ctx context.Context, name, podUID string, opts client.ContainerCreateOptions) (string, error) {
	res, err := e.cli.ContainerCreate(ctx, opts)
	if cerrdefs.IsConflict(err) {
		old, ierr := e.cli.ContainerInspect(ctx, name, client.ContainerInspectOptions{})
		if ierr != nil || old.Container.Config == nil ||
			old.Container.Config.Labels[nodeconfig.LabelCluster] != e.cluster ||
			old.Container.Config.Labels[nodeconfig.LabelPodUID] != podUID {
			return "", err
		}
		if rerr := e.Remove(ctx, old.Container.ID); rerr != nil {
			return "", rerr
		}
		res, err = e.cli.ContainerCreate(ctx, opts)
	}
	if err != nil {
		return "", err
	}
	return res.ID, nil
}

// copyFiles puts files into a created container with one tar. The tar has
// no directory entries: the engine creates missing parents (0755) itself,
// and an entry for an existing directory would reset its mode (think /tmp).
func (e *Engine) copyFiles(ctx context.Context, id string, files []File) error {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range files {
		p := strings.TrimPrefix(path.Clean("/"+f.Path), "/")
		if p == "" {
			return fmt.Errorf("copy file %q: not a file path", f.Path)
		}
		mode := f.Mode
		if mode == 0 {
			mode = 0o644
		}
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: p, Mode: mode, Size: int64(len(f.Data))}); err != nil {
			return fmt.Errorf("copy file %s: %w", f.Path, err)
		}
		if _, err := tw.Write(f.Data); err != nil {
			return fmt.Errorf("copy file %s: %w", f.Path, err)
		}
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("copy files: %w", err)
	}
	if _, err := e.cli.CopyToContainer(ctx, id, client.CopyToContainerOptions{DestinationPath: "/", Content: &buf}); err != nil {
		return fmt.Errorf("copy files: %w", err)
	}
	return nil
}

// RemovePod force-removes every container of the pod, app containers
// before the sandbox whose namespaces they use, then the pod's volumes.
func (e *Engine) RemovePod(ctx context.Context, podUID string) error {
	if _, err := e.removeWhere(ctx, map[string]string{nodeconfig.LabelCluster: e.cluster, nodeconfig.LabelPodUID: podUID}); err != nil {
		return fmt.Errorf("remove pod %s: %w", podUID, err)
	}
	return nil
}

// removeWhere force-removes the pod containers (app containers first)
// and then the pod volumes that carry all of labels; it returns how many it
// removed.
func (e *Engine) removeWhere(ctx context.Context, labels map[string]string) (int, error) {
	removed := 0
	list, err := e.cli.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: labelFilter(labels)})
	if err != nil {
		return 0, fmt.Errorf("list containers: %w", err)
	}
	for _, kind := range []string{nodeconfig.KindContainer, nodeconfig.KindSandbox} {
		for _, c := range list.Items {
			if c.Labels[nodeconfig.LabelKind] != kind {
				continue
			}
			if err := e.Remove(ctx, c.ID); err != nil {
				return removed, err
			}
			removed++
		}
	}
	vf := labelFilter(labels).Add("label", nodeconfig.LabelKind+"="+nodeconfig.KindVolume)
	vols, err := e.cli.VolumeList(ctx, client.VolumeListOptions{Filters: vf})
	if err != nil {
		return removed, fmt.Errorf("list volumes: %w", err)
	}
	for _, v := range vols.Items {
		if err := e.removeVolume(ctx, v.Name); err != nil {
			return removed, err
		}
		removed++
	}
	return removed, nil
}

// volumeInUseWait bounds how long a volume removal waits for the
// containers that use it to go.
const volumeInUseWait = 10 * time.Second

// removeVolume removes a pod volume; while a container that uses it is
// still being removed by another request (Remove does not wait for those:
// the driver removes a stopped node's pods too), it waits for it.
func (e *Engine) removeVolume(ctx context.Context, name string) error {
	deadline := time.Now().Add(volumeInUseWait)
	for {
		_, err := e.cli.VolumeRemove(ctx, name, client.VolumeRemoveOptions{Force: true})
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

// PodContainer is a sandbox or app container as the engine lists it.
type PodContainer struct {
	ID, PodUID, Namespace, PodName string
	// Container is the app container's name ("" for a sandbox).
	Container string
	// Kind is nodeconfig.KindSandbox or nodeconfig.KindContainer.
	Kind    string
	Attempt int
	Running bool
}

// List returns this node's sandboxes and app containers, running or not.
func (e *Engine) List(ctx context.Context) ([]PodContainer, error) {
	res, err := e.cli.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: labelFilter(map[string]string{
		nodeconfig.LabelCluster: e.cluster,
		nodeconfig.LabelNode:    e.node,
	})})
	if err != nil {
		return nil, fmt.Errorf("list pod containers: %w", err)
	}
	var out []PodContainer
	for _, c := range res.Items {
		l := c.Labels
		kind := l[nodeconfig.LabelKind]
		if kind != nodeconfig.KindSandbox && kind != nodeconfig.KindContainer {
			continue
		}
		out = append(out, PodContainer{
			ID:        c.ID,
			PodUID:    l[nodeconfig.LabelPodUID],
			Namespace: l[nodeconfig.LabelPodNamespace],
			PodName:   l[nodeconfig.LabelPodName],
			Container: l[nodeconfig.LabelContainer],
			Kind:      kind,
			Attempt:   atoi(l[nodeconfig.LabelAttempt]),
			Running:   c.State == container.StateRunning,
		})
	}
	return out, nil
}

// NodeRunning reports whether the node container of this cluster's node
// is running.
func (e *Engine) NodeRunning(ctx context.Context, node string) (bool, error) {
	res, err := e.cli.ContainerList(ctx, client.ContainerListOptions{Filters: labelFilter(map[string]string{
		nodeconfig.LabelCluster: e.cluster,
		nodeconfig.LabelKind:    nodeconfig.KindNode,
		nodeconfig.LabelNode:    node,
	}).Add("status", string(container.StateRunning))})
	if err != nil {
		return false, fmt.Errorf("look up node container %s: %w", node, err)
	}
	return len(res.Items) > 0, nil
}

// RemoveOrphans force-removes the pod containers and pod volumes of this
// cluster whose node has no running node container: a node that was
// killed or deleted leaves its pods behind, and nobody else would remove
// them. This node is alive by definition (it is asking), so its own pods
// are never orphans. It returns how many containers and volumes it
// removed.
func (e *Engine) RemoveOrphans(ctx context.Context) (int, error) {
	cluster := map[string]string{nodeconfig.LabelCluster: e.cluster}
	nodes := map[string]bool{}
	list, err := e.cli.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: labelFilter(cluster)})
	if err != nil {
		return 0, fmt.Errorf("remove orphans: list containers: %w", err)
	}
	for _, c := range list.Items {
		if k := c.Labels[nodeconfig.LabelKind]; k == nodeconfig.KindSandbox || k == nodeconfig.KindContainer {
			nodes[c.Labels[nodeconfig.LabelNode]] = true
		}
	}
	vols, err := e.cli.VolumeList(ctx, client.VolumeListOptions{Filters: labelFilter(cluster).Add("label", nodeconfig.LabelKind+"="+nodeconfig.KindVolume)})
	if err != nil {
		return 0, fmt.Errorf("remove orphans: list volumes: %w", err)
	}
	for _, v := range vols.Items {
		nodes[v.Labels[nodeconfig.LabelNode]] = true
	}
	removed := 0
	for node := range nodes {
		if node == e.node {
			continue
		}
		running, err := e.NodeRunning(ctx, node)
		if err != nil {
			return removed, fmt.Errorf("remove orphans: %w", err)
		}
		if running {
			continue
		}
		n, err := e.removeWhere(ctx, map[string]string{nodeconfig.LabelCluster: e.cluster, nodeconfig.LabelNode: node})
		removed += n
		if err != nil {
			return removed, fmt.Errorf("remove orphans of node %s: %w", node, err)
		}
	}
	return removed, nil
}

func (e *Engine) podLabels(kind, uid, namespace, name string) map[string]string {
	return map[string]string{
		nodeconfig.LabelCluster:      e.cluster,
		nodeconfig.LabelNode:         e.node,
		nodeconfig.LabelKind:         kind,
		nodeconfig.LabelPodUID:       uid,
		nodeconfig.LabelPodNamespace: namespace,
		nodeconfig.LabelPodName:      name,
	}
}
