package engine

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"io/fs"
	"path"
	"strconv"
	"strings"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/client"

	"minik.dev/minik/nodeconfig"
)

// EmptyDir says how a pod's emptyDir is kept.
type EmptyDir struct {
	// Memory keeps it in a tmpfs (medium: Memory), of SizeBytes (0: the
	// kernel's default, half the memory).
	Memory    bool
	SizeBytes int64
}

// EnsureVolume returns the named volume that backs a pod's emptyDir,
// creating it the first time.
func (e *Engine) EnsureVolume(ctx context.Context, podUID, name string, o EmptyDir) (string, error) {
	var opts map[string]string
	if o.Memory {
		// The local driver mounts a tmpfs on the volume's first use; the
		// pod's sandbox holds it mounted for the pod's life.
		opts = map[string]string{"type": "tmpfs", "device": "tmpfs"}
		if o.SizeBytes > 0 {
			opts["o"] = "size=" + strconv.FormatInt(o.SizeBytes, 10)
		}
	}
	return e.ensureVolume(ctx, fmt.Sprintf("k8s_%s_%s", name, podUID), nodeconfig.LabelPodUID, podUID, opts)
}

// EnsureNodeVolume returns a named volume that stands for a directory of
// the node (a hostPath volume): every pod of this node that names the path
// shares it, and it outlives them, until the node is deleted. Idempotent.
func (e *Engine) EnsureNodeVolume(ctx context.Context, path string) (string, error) {
	return e.ensureVolume(ctx, nodeconfig.HostPathVolumeName(e.node, path), nodeconfig.LabelHostPath, path, nil)
}

// ensureVolume creates a volume of this node labelled owner=value, or
// returns the one that exists; creating a volume that exists returns it as
// it is, so one with the name but another owner is refused.
func (e *Engine) ensureVolume(ctx context.Context, name, owner, value string, driverOpts map[string]string) (string, error) {
	res, err := e.cli.VolumeCreate(ctx, client.VolumeCreateOptions{
		Name:       name,
		DriverOpts: driverOpts,
		Labels: map[string]string{
			nodeconfig.LabelCluster: e.cluster,
			nodeconfig.LabelNode:    e.node,
			nodeconfig.LabelKind:    nodeconfig.KindVolume,
			owner:                   value,
		},
	})
	if err != nil {
		return "", fmt.Errorf("create volume %s: %w", name, err)
	}
	if l := res.Volume.Labels; l[nodeconfig.LabelCluster] != e.cluster || l[owner] != value {
		return "", fmt.Errorf("create volume %s: it exists and belongs to someone else", name)
	}
	return res.Volume.Name, nil
}

// What a Mount's SubPath must be.
const (
	// SubPathDirectory is made if it is missing (the default).
	SubPathDirectory = ""
	// SubPathFileOrCreate is made as an empty file if it is missing.
	SubPathFileOrCreate = "FileOrCreate"
	// SubPathFile and SubPathSocket must exist as such.
	SubPathFile   = "File"
	SubPathSocket = "Socket"
	// SubPathExisting must exist, as a file or a directory.
	SubPathExisting = "Existing"
)

// setupName is the container label of the short-lived containers that
// prepare volumes; it is no valid container name of a pod.
const setupName = ".volume-setup"

// volumeSetup prepares volume for the container mounts of one pod: it makes
// each sub-path that is missing, gives the volume's root to fsGroup and
// opens it to every user when open says so, through a container that mounts the volume and never runs (the engine
// writes into a created container's volumes). It returns the engine-host
// path of each sub-path, to bind.
func (e *Engine) volumeSetup(ctx context.Context, podUID, volume string, subPaths map[string]string, seeds map[string][]byte, fsGroup *int64, open bool) (map[string]string, error) {
	info, err := e.cli.VolumeInspect(ctx, volume, client.VolumeInspectOptions{})
	if err != nil {
		return nil, fmt.Errorf("inspect volume %s: %w", volume, err)
	}
	labels := e.podLabels(nodeconfig.KindContainer, podUID, "", "")
	labels[nodeconfig.LabelContainer] = setupName
	res, err := e.cli.ContainerCreate(ctx, client.ContainerCreateOptions{
		Config: &container.Config{Image: e.cfg.SandboxImage, Labels: labels, Entrypoint: []string{"/nonexistent"}},
		HostConfig: &container.HostConfig{
			NetworkMode: "none",
			Mounts:      []mount.Mount{{Type: mount.TypeVolume, Source: volume, Target: "/v", VolumeOptions: &mount.VolumeOptions{NoCopy: true}}},
		},
	})
	if err != nil {
		return nil, fmt.Errorf("prepare volume %s: %w", volume, err)
	}
	defer func() { _ = e.Remove(context.WithoutCancel(ctx), res.ID) }()

	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	wrote := false
	if fsGroup != nil {
		// As the kubelet: the group owns the volume and, by the setgid
		// bit, what is made in it.
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: "v/", Mode: 0o2777, Gid: int(*fsGroup)}); err != nil {
			return nil, err
		}
		wrote = true
	} else if open {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: "v/", Mode: 0o777}); err != nil {
			return nil, err
		}
		wrote = true
	}
	out := map[string]string{}
	for sub, want := range subPaths {
		made, err := e.checkSubPath(ctx, res.ID, sub, want)
		if err != nil {
			return nil, fmt.Errorf("volume mount sub-path %q: %w", sub, err)
		}
		gid := 0
		if fsGroup != nil {
			gid = int(*fsGroup)
		}
		for _, dir := range made.dirs {
			if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: "v/" + dir + "/", Mode: 0o755, Gid: gid}); err != nil {
				return nil, err
			}
			wrote = true
		}
		if made.file != "" {
			seed := seeds[sub]
			if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: "v/" + made.file, Mode: 0o644, Gid: gid, Size: int64(len(seed))}); err != nil {
				return nil, err
			}
			if _, err := tw.Write(seed); err != nil {
				return nil, err
			}
			wrote = true
		}
		out[sub] = path.Join(info.Volume.Mountpoint, sub)
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	if wrote {
		// Entries are under v/, from /: the volume's own root is one.
		_, err := e.cli.CopyToContainer(ctx, res.ID, client.CopyToContainerOptions{DestinationPath: "/", Content: &buf, CopyUIDGID: true})
		if err != nil {
			return nil, fmt.Errorf("prepare volume %s: %w", volume, err)
		}
	}
	return out, nil
}

// missing is what a sub-path lacks: directories to make, in order, and a file.
type missing struct {
	dirs []string
	file string
}

// checkSubPath walks sub inside the setup container's volume. No part of
// it may be a symbolic link: a bind mount follows links on the engine's
// host, and a pod could point one anywhere there.
func (e *Engine) checkSubPath(ctx context.Context, id, sub, want string) (missing, error) {
	var m missing
	parts := strings.Split(sub, "/")
	for i := range parts {
		rel := strings.Join(parts[:i+1], "/")
		last := i == len(parts)-1
		st, err := e.cli.ContainerStatPath(ctx, id, client.ContainerStatPathOptions{Path: "/v/" + rel})
		if cerrdefs.IsNotFound(err) {
			switch {
			case want == SubPathExisting:
				return m, fmt.Errorf("%s does not exist", rel)
			case !last || want == SubPathDirectory:
				m.dirs = append(m.dirs, rel)
			case want == SubPathFileOrCreate:
				m.file = rel
			default:
				return m, fmt.Errorf("%s does not exist (type %s must)", rel, want)
			}
			continue
		}
		if err != nil {
			return m, err
		}
		mode := st.Stat.Mode
		switch {
		case mode&fs.ModeSymlink != 0:
			return m, fmt.Errorf("%s is a symbolic link (to %s): refused", rel, st.Stat.LinkTarget)
		case !last && !mode.IsDir():
			return m, fmt.Errorf("%s is not a directory", rel)
		case last && want == SubPathDirectory && !mode.IsDir():
			return m, fmt.Errorf("%s is not a directory", rel)
		case last && (want == SubPathFile || want == SubPathFileOrCreate) && !mode.IsRegular():
			return m, fmt.Errorf("%s is not a file", rel)
		case last && want == SubPathSocket && mode&fs.ModeSocket == 0:
			return m, fmt.Errorf("%s is not a socket", rel)
		}
	}
	return m, nil
}

// EnsureClaimVolume creates the volume that keeps a PersistentVolume's
// data, or returns it as it is. It belongs to the cluster, not to a node
// or a pod, so it outlives both until the PersistentVolume is deleted
// (or the cluster is); every node's pods can mount it.
func (e *Engine) EnsureClaimVolume(ctx context.Context, pv string) (string, error) {
	name := e.cluster + "-" + pv
	res, err := e.cli.VolumeCreate(ctx, client.VolumeCreateOptions{
		Name: name,
		Labels: map[string]string{
			nodeconfig.LabelCluster:          e.cluster,
			nodeconfig.LabelKind:             nodeconfig.KindVolume,
			nodeconfig.LabelPersistentVolume: pv,
		},
	})
	if err != nil {
		return "", fmt.Errorf("create volume %s: %w", name, err)
	}
	if l := res.Volume.Labels; l[nodeconfig.LabelCluster] != e.cluster || l[nodeconfig.LabelPersistentVolume] != pv {
		return "", fmt.Errorf("create volume %s: it exists and belongs to someone else", name)
	}
	return res.Volume.Name, nil
}

// RemoveClaimVolume removes a PersistentVolume's volume and its data; one
// that is gone already is no error. The engine refuses while a container
// still uses it.
func (e *Engine) RemoveClaimVolume(ctx context.Context, name string) error {
	v, err := e.cli.VolumeInspect(ctx, name, client.VolumeInspectOptions{})
	if cerrdefs.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("inspect volume %s: %w", name, err)
	}
	if v.Volume.Labels[nodeconfig.LabelCluster] != e.cluster || v.Volume.Labels[nodeconfig.LabelPersistentVolume] == "" {
		return fmt.Errorf("remove volume %s: it is not a persistent volume of cluster %s", name, e.cluster)
	}
	if _, err := e.cli.VolumeRemove(ctx, name, client.VolumeRemoveOptions{}); err != nil && !cerrdefs.IsNotFound(err) {
		return fmt.Errorf("remove volume %s: %w", name, err)
	}
	return nil
}

// EnsureImageVolume returns the pod's volume that holds the file tree of
// image (an image volume), copying the tree in when the volume is made.
// The image must be in the engine's store.
func (e *Engine) EnsureImageVolume(ctx context.Context, podUID, name, image string) (string, error) {
	vol := fmt.Sprintf("k8s_%s_%s", name, podUID)
	if _, err := e.cli.VolumeInspect(ctx, vol, client.VolumeInspectOptions{}); err == nil {
		return vol, nil
	} else if !cerrdefs.IsNotFound(err) {
		return "", fmt.Errorf("inspect volume %s: %w", vol, err)
	}
	if _, err := e.ensureVolume(ctx, vol, nodeconfig.LabelPodUID, podUID, nil); err != nil {
		return "", err
	}
	if err := e.fillFromImage(ctx, podUID, vol, image); err != nil {
		// Half a tree must not pass for the image's next time.
		_, _ = e.cli.VolumeRemove(context.WithoutCancel(ctx), vol, client.VolumeRemoveOptions{Force: true})
		return "", fmt.Errorf("image volume %s from %s: %w", name, image, err)
	}
	return vol, nil
}

// fillFromImage copies the file tree of image into vol: the engine exports
// a container of the image that never runs and extracts the stream into a
// container that mounts the volume, which never runs either.
func (e *Engine) fillFromImage(ctx context.Context, podUID, vol, image string) error {
	labels := e.podLabels(nodeconfig.KindContainer, podUID, "", "")
	labels[nodeconfig.LabelContainer] = setupName
	src, err := e.cli.ContainerCreate(ctx, client.ContainerCreateOptions{
		Config:     &container.Config{Image: image, Labels: labels, Entrypoint: []string{"/nonexistent"}},
		HostConfig: &container.HostConfig{NetworkMode: "none"},
	})
	if err != nil {
		return err
	}
	defer func() { _ = e.Remove(context.WithoutCancel(ctx), src.ID) }()
	dst, err := e.cli.ContainerCreate(ctx, client.ContainerCreateOptions{
		Config: &container.Config{Image: e.cfg.SandboxImage, Labels: labels, Entrypoint: []string{"/nonexistent"}},
		HostConfig: &container.HostConfig{
			NetworkMode: "none",
			Mounts:      []mount.Mount{{Type: mount.TypeVolume, Source: vol, Target: "/v", VolumeOptions: &mount.VolumeOptions{NoCopy: true}}},
		},
	})
	if err != nil {
		return err
	}
	defer func() { _ = e.Remove(context.WithoutCancel(ctx), dst.ID) }()
	tree, err := e.cli.ContainerExport(ctx, src.ID, client.ContainerExportOptions{})
	if err != nil {
		return err
	}
	defer tree.Close()
	_, err = e.cli.CopyToContainer(ctx, dst.ID, client.CopyToContainerOptions{DestinationPath: "/v", Content: tree, CopyUIDGID: true})
	return err
}

// WriteVolumeFiles writes a generation of a configMap, secret, downward API
// or projected volume, as the kubelet's atomic writer lays it out: the
// files under gen (a folder "..N"), the link ..data to gen, and a link of
// each top-level name into ..data, so readers see one generation or the
// next, and a name gone from the source dangles. It writes through the
// pod's sandbox, which mounts the volume.
func (e *Engine) WriteVolumeFiles(ctx context.Context, sandboxID, volume, gen string, files []File) error {
	var buf bytes.Buffer
	if err := writeGeneration(&buf, gen, files); err != nil {
		return fmt.Errorf("write volume %s: %w", volume, err)
	}
	if _, err := e.cli.CopyToContainer(ctx, sandboxID, client.CopyToContainerOptions{DestinationPath: "/volumes/" + volume, Content: &buf, CopyUIDGID: true}); err != nil {
		return fmt.Errorf("write volume %s: %w", volume, err)
	}
	return nil
}

// writeGeneration is WriteVolumeFiles's tar stream.
func writeGeneration(w io.Writer, gen string, files []File) error {
	tw := tar.NewWriter(w)
	dirs := map[string]bool{}
	dir := func(p string, gid int64) error {
		if dirs[p] {
			return nil
		}
		dirs[p] = true
		mode := int64(0o755)
		if gid != 0 {
			// As the kubelet gives a volume to the fsGroup: what is made
			// in the folder takes its group.
			mode |= 0o2000
		}
		return tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: p + "/", Mode: mode, Gid: int(gid)})
	}
	var gid int64
	for _, f := range files {
		gid = max(gid, f.GID)
	}
	if err := dir(gen, gid); err != nil {
		return err
	}
	top := map[string]bool{}
	var names []string
	for _, f := range files {
		p := strings.TrimPrefix(path.Clean("/"+f.Path), "/")
		if p == "" || strings.HasPrefix(p, "..") {
			return fmt.Errorf("file %q: not a path inside the volume", f.Path)
		}
		parts := strings.Split(p, "/")
		for i := 1; i < len(parts); i++ {
			if err := dir(gen+"/"+strings.Join(parts[:i], "/"), f.GID); err != nil {
				return err
			}
		}
		mode := f.Mode
		if mode == 0 {
			mode = 0o644
		}
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: gen + "/" + p, Mode: mode, Gid: int(f.GID), Size: int64(len(f.Data))}); err != nil {
			return err
		}
		if _, err := tw.Write(f.Data); err != nil {
			return err
		}
		if !top[parts[0]] {
			top[parts[0]] = true
			names = append(names, parts[0])
		}
	}
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeSymlink, Name: "..data", Linkname: gen, Mode: 0o777}); err != nil {
		return err
	}
	for _, n := range names {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeSymlink, Name: n, Linkname: "..data/" + n, Mode: 0o777}); err != nil {
			return err
		}
	}
	return tw.Close()
}
