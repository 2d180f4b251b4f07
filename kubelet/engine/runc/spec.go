//go:build linux

package runc

import (
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
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

// cpuPeriod is the CFS period a CPU limit is a quota of, as the kubelet's.
const cpuPeriod = 100000

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
	uid, gid, err := imageUser(img.Rootfs, img.Config.User)
	if err != nil {
		return nil, err
	}
	var groups []uint32
	if spec.FSGroup != nil {
		groups = append(groups, uint32(*spec.FSGroup))
	}
	cwd := spec.WorkingDir
	if cwd == "" {
		cwd = img.Config.WorkingDir
	}
	if cwd == "" {
		cwd = "/"
	}
	s := &specs.Spec{
		Version: specs.Version,
		Root:    &specs.Root{Path: rootfs},
		Process: &specs.Process{
			Terminal: spec.TTY,
			Args:     args,
			Env:      mergeEnv(img.Config.Env, spec.Env),
			Cwd:      cwd,
			User:     specs.User{UID: uid, GID: gid, AdditionalGids: groups},
			Capabilities: &specs.LinuxCapabilities{
				Bounding: defaultCapabilities, Effective: defaultCapabilities, Permitted: defaultCapabilities,
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
	if spec.CPUMillis > 0 {
		quota := spec.CPUMillis * cpuPeriod / 1000
		period := uint64(cpuPeriod)
		s.Linux.Resources.CPU = &specs.LinuxCPU{Quota: &quota, Period: &period}
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
	return s, nil
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
	if clean == "/" || strings.Contains(sub, "..") {
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
	case engine.SubPathFile, engine.SubPathSocket:
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
