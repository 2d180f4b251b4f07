//go:build linux

package runc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	securejoin "github.com/cyphar/filepath-securejoin"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"minik.dev/minik/kubelet/engine"
)

// defaultCapabilities are the Docker Engine's: what a pod's container has
// unless its securityContext says otherwise.
var defaultCapabilities = []string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
	"CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
	"CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
}

// allCapabilities are the kernel's, as of Linux 5.9.
var allCapabilities = []string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL",
	"CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE",
	"CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER",
	"CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE", "CAP_SYS_PACCT",
	"CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE", "CAP_SYS_RESOURCE", "CAP_SYS_TIME",
	"CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE", "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL",
	"CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM",
	"CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE",
}

// cpuPeriod is the CFS period a CPU limit is a quota of, as the kubelet's,
// and minCPUQuota the kernel's least quota.
const (
	cpuPeriod   = 100000
	minCPUQuota = 1000
)

// capabilities are the container's: the default set with its securityContext's
// additions and drops ("ALL" in either means every capability), or every one
// for a privileged container.
func capabilities(sec engine.Security) []string {
	if sec.Privileged {
		return slices.Clone(allCapabilities)
	}
	set := map[string]bool{}
	for _, c := range defaultCapabilities {
		set[c] = true
	}
	name := func(c string) string {
		c = strings.ToUpper(c)
		if !strings.HasPrefix(c, "CAP_") {
			c = "CAP_" + c
		}
		return c
	}
	for _, c := range sec.CapDrop {
		if strings.EqualFold(c, "ALL") {
			clear(set)
			continue
		}
		delete(set, name(c))
	}
	for _, c := range sec.CapAdd {
		if strings.EqualFold(c, "ALL") {
			for _, a := range allCapabilities {
				set[a] = true
			}
			continue
		}
		set[name(c)] = true
	}
	out := make([]string, 0, len(set))
	for c := range set {
		out = append(out, c)
	}
	slices.Sort(out)
	return out
}

// processArgs is what a container runs: Kubernetes' rule over the image's
// ENTRYPOINT and CMD.
func processArgs(spec engine.ContainerSpec, img image) ([]string, error) {
	var args []string
	switch {
	case len(spec.Command) > 0:
		args = append(append(args, spec.Command...), spec.Args...)
	case len(spec.Args) > 0:
		args = append(append(args, img.Config.Entrypoint...), spec.Args...)
	default:
		args = append(append(args, img.Config.Entrypoint...), img.Config.Cmd...)
	}
	if len(args) == 0 {
		return nil, fmt.Errorf("image %s has no command and the container gives none", spec.Image)
	}
	return args, nil
}

// mergeEnv is the image's environment overridden by the container's.
func mergeEnv(image, pod []string) []string {
	index := map[string]int{}
	var out []string
	for _, list := range [][]string{image, pod} {
		for _, kv := range list {
			k, _, _ := strings.Cut(kv, "=")
			if i, ok := index[k]; ok {
				out[i] = kv
				continue
			}
			index[k] = len(out)
			out = append(out, kv)
		}
	}
	if _, ok := index["PATH"]; !ok {
		out = append(out, "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
	}
	return out
}

// ociSpec is the runc configuration of one app container of a pod.
func (e *Engine) ociSpec(id string, spec engine.ContainerSpec, img image, sb *sandbox, rootfs string) (*specs.Spec, error) {
	args, err := processArgs(spec, img)
	if err != nil {
		return nil, err
	}
	if spec.PIDNamespace != "" {
		return nil, errors.New("the runc engine cannot share a process namespace between containers yet")
	}
	user := img.Config.User
	if spec.Security.User != "" {
		user = spec.Security.User
	}
	uid, gid, err := imageUser(img.Rootfs, user)
	if err != nil {
		return nil, err
	}
	var groups []uint32
	if spec.FSGroup != nil {
		groups = append(groups, uint32(*spec.FSGroup))
	}
	for _, g := range spec.Security.Groups {
		groups = append(groups, uint32(g))
	}
	caps := capabilities(spec.Security)
	cwd := spec.WorkingDir
	if cwd == "" {
		cwd = img.Config.WorkingDir
	}
	if cwd == "" {
		cwd = "/"
	}
	s := &specs.Spec{
		Version: specs.Version,
		Root:    &specs.Root{Path: rootfs, Readonly: spec.Security.ReadOnlyRootfs},
		Process: &specs.Process{
			Terminal:        spec.TTY,
			Args:            args,
			Env:             mergeEnv(img.Config.Env, spec.Env),
			Cwd:             cwd,
			User:            specs.User{UID: uid, GID: gid, AdditionalGids: groups},
			NoNewPrivileges: spec.Security.NoNewPrivileges,
			Capabilities: &specs.LinuxCapabilities{
				Bounding: caps, Effective: caps, Permitted: caps,
			},
		},
		Mounts: []specs.Mount{
			{Destination: "/proc", Type: "proc", Source: "proc", Options: []string{"nosuid", "noexec", "nodev"}},
			{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
			{Destination: "/dev/pts", Type: "devpts", Source: "devpts", Options: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}},
			{Destination: "/dev/shm", Type: "bind", Source: sb.shm, Options: []string{"rbind", "nosuid", "noexec", "nodev"}},
			{Destination: "/dev/mqueue", Type: "mqueue", Source: "mqueue", Options: []string{"nosuid", "noexec", "nodev"}},
		},
		Linux: &specs.Linux{
			CgroupsPath: "/minik/" + id,
			Namespaces: []specs.LinuxNamespace{
				{Type: specs.PIDNamespace}, {Type: specs.MountNamespace}, {Type: specs.CgroupNamespace},
				{Type: specs.IPCNamespace, Path: sb.ipcNS},
			},
			Resources: &specs.LinuxResources{Devices: []specs.LinuxDeviceCgroup{{Allow: false, Access: "rwm"}}},
			MaskedPaths: []string{
				"/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
				"/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi", "/sys/firmware",
			},
			ReadonlyPaths: []string{"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"},
		},
	}
	if len(sb.sysctls) > 0 {
		s.Linux.Sysctl = sb.sysctls
	}
	if spec.Security.Privileged {
		// What the Docker Engine gives a privileged container: every
		// capability and device, nothing masked or read-only.
		s.Linux.MaskedPaths, s.Linux.ReadonlyPaths = nil, nil
		s.Linux.Resources.Devices = []specs.LinuxDeviceCgroup{{Allow: true, Access: "rwm"}}
	}
	if sb.hostNetwork {
		// A container in the node's network namespace sees the node's
		// sysfs, as the Docker Engine gives it.
		s.Mounts = append(s.Mounts, specs.Mount{Destination: "/sys", Type: "bind", Source: "/sys", Options: []string{"rbind", "ro", "nosuid", "noexec", "nodev"}})
	} else {
		s.Hostname = sb.hostname
		s.Linux.Namespaces = append(s.Linux.Namespaces,
			specs.LinuxNamespace{Type: specs.NetworkNamespace, Path: sb.netNS},
			specs.LinuxNamespace{Type: specs.UTSNamespace})
		s.Mounts = append(s.Mounts,
			specs.Mount{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: []string{"nosuid", "noexec", "nodev", "ro"}},
			specs.Mount{Destination: "/sys/fs/cgroup", Type: "cgroup", Source: "cgroup", Options: []string{"nosuid", "noexec", "nodev", "relatime", "ro"}})
	}
	for _, f := range []string{"hosts", "resolv.conf", "hostname"} {
		s.Mounts = append(s.Mounts, specs.Mount{Destination: "/etc/" + f, Type: "bind", Source: filepath.Join(sb.dir, f), Options: []string{"rbind", "rprivate"}})
	}
	if spec.CPUMillis > 0 || spec.CPUShares > 0 {
		s.Linux.Resources.CPU = &specs.LinuxCPU{}
	}
	if spec.CPUMillis > 0 {
		quota := max(spec.CPUMillis*cpuPeriod/1000, minCPUQuota)
		period := uint64(cpuPeriod)
		s.Linux.Resources.CPU.Quota, s.Linux.Resources.CPU.Period = &quota, &period
	}
	if spec.CPUShares > 0 {
		shares := uint64(spec.CPUShares)
		s.Linux.Resources.CPU.Shares = &shares
	}
	if spec.OOMScoreAdj != 0 {
		s.Process.OOMScoreAdj = &spec.OOMScoreAdj
	}
	if spec.MemoryBytes > 0 {
		limit := spec.MemoryBytes
		s.Linux.Resources.Memory = &specs.LinuxMemory{Limit: &limit}
	}
	mounts, err := e.volumeMounts(spec)
	if err != nil {
		return nil, err
	}
	s.Mounts = append(s.Mounts, mounts...)
	if spec.TerminationMessagePath != "" {
		f, err := terminationFile(sb, spec.Name)
		if err != nil {
			return nil, err
		}
		s.Mounts = append(s.Mounts, specs.Mount{Destination: spec.TerminationMessagePath, Type: "bind", Source: f, Options: []string{"rbind", "rprivate"}})
	}
	return s, nil
}

// terminationFile makes a container's termination-message file empty and
// writable by any user, as the kubelet makes it, and returns its path.
func terminationFile(sb *sandbox, container string) (string, error) {
	dir := filepath.Join(sb.dir, "termination")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("termination message file: %w", err)
	}
	f := filepath.Join(dir, container)
	if err := os.WriteFile(f, nil, 0o666); err != nil {
		return "", fmt.Errorf("termination message file: %w", err)
	}
	// The umask took bits off the mode.
	if err := os.Chmod(f, 0o666); err != nil {
		return "", fmt.Errorf("termination message file: %w", err)
	}
	return f, nil
}

// TerminationMessage reads what a container of the pod wrote to its
// termination-message file (at most engine.MaxTerminationMessage bytes).
func (e *Engine) TerminationMessage(_ context.Context, sandboxID, _, container string) (string, error) {
	e.mu.Lock()
	sb := e.sandboxes[sandboxID]
	e.mu.Unlock()
	if sb == nil {
		return "", nil
	}
	f, err := os.Open(filepath.Join(sb.dir, "termination", container))
	if errors.Is(err, os.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("read termination message of %s: %w", container, err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, engine.MaxTerminationMessage))
	if err != nil {
		return "", fmt.Errorf("read termination message of %s: %w", container, err)
	}
	return string(b), nil
}

// volumePath is where a volume the docker runtime named keeps its files:
// emptyDirs and node folders are paths already, a claim's volume is a
// folder of the engine's.
func (e *Engine) volumePath(volume string) (string, error) {
	if filepath.IsAbs(volume) {
		return volume, nil
	}
	if volume == "" || strings.ContainsAny(volume, `/\`) || volume == "." || volume == ".." {
		return "", fmt.Errorf("volume name %q", volume)
	}
	dir := filepath.Join(e.o.StateDir, "volumes", volume)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	return dir, nil
}

// volumeMounts binds the container's volumes, making sub-paths that are
// missing and giving owned volumes to the pod's fsGroup (setgid, as the
// kubelet does).
func (e *Engine) volumeMounts(spec engine.ContainerSpec) ([]specs.Mount, error) {
	var out []specs.Mount
	for _, m := range spec.Mounts {
		src, err := e.volumePath(m.Volume)
		if err != nil {
			return nil, fmt.Errorf("mount %s: %w", m.Path, err)
		}
		gid := -1
		if m.Owned && spec.FSGroup != nil {
			gid = int(*spec.FSGroup)
			if err := os.Chown(src, -1, gid); err != nil {
				return nil, fmt.Errorf("mount %s: %w", m.Path, err)
			}
			if err := os.Chmod(src, 0o777|os.ModeSetgid); err != nil {
				return nil, fmt.Errorf("mount %s: %w", m.Path, err)
			}
		}
		if m.SubPath != "" {
			src, err = subPath(src, m.SubPath, m.SubPathType, gid)
			if err != nil {
				return nil, fmt.Errorf("volume mount sub-path %q: %w", m.SubPath, err)
			}
		}
		opts := []string{"rbind", "rprivate"}
		if m.ReadOnly {
			opts = append(opts, "ro")
		}
		out = append(out, specs.Mount{Destination: m.Path, Type: "bind", Source: src, Options: opts})
	}
	return out, nil
}

// subPath resolves sub inside the volume at root, refusing a path through a
// symbolic link, and makes it when missing as want says.
func subPath(root, sub, want string, gid int) (string, error) {
	clean := path.Clean("/" + sub)
	if clean == "/" || slices.Contains(strings.Split(sub, "/"), "..") {
		return "", errors.New("must be a relative path inside the volume")
	}
	p, err := securejoin.SecureJoin(root, clean)
	if err != nil {
		return "", err
	}
	if p != filepath.Join(root, clean) {
		return "", errors.New("passes a symbolic link")
	}
	fi, err := os.Lstat(p)
	switch {
	case err == nil:
		switch want {
		case engine.SubPathFile, engine.SubPathFileOrCreate:
			if !fi.Mode().IsRegular() {
				return "", errors.New("is not a file")
			}
		case engine.SubPathSocket:
			if fi.Mode()&os.ModeSocket == 0 {
				return "", errors.New("is not a socket")
			}
		}
		return p, nil
	case !errors.Is(err, os.ErrNotExist):
		return "", err
	}
	switch want {
	case engine.SubPathFile, engine.SubPathSocket, engine.SubPathExisting:
		return "", errors.New("does not exist")
	case engine.SubPathFileOrCreate:
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return "", err
		}
		f, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY, 0o644)
		if err != nil {
			return "", err
		}
		_ = f.Close()
	default:
		if err := os.MkdirAll(p, 0o755); err != nil {
			return "", err
		}
	}
	if gid >= 0 {
		_ = os.Chown(p, -1, gid)
	}
	return p, nil
}
