package docker

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"

	"minik.dev/minik/kubelet/engine"
)

// fileVolumeResync is how often the files of a running pod's configMap,
// secret, downward API and projected volumes are made again from their
// sources, so that updates reach the pod as they do through a kubelet.
const fileVolumeResync = 10 * time.Second

// fileVolume is one configMap, secret, downward API or projected volume of
// a pod: a volume of the engine that the node writes in generations (as
// the kubelet's atomic writer), mounted read-only in the containers.
type fileVolume struct {
	// volume is the engine's volume.
	volume string
	// gen is the folder of the generation written last, "" before the
	// first; n counts generations.
	gen string
	n   int
	// sum is the written generation's content.
	sum [sha256.Size]byte
}

func isFileVolume(v *corev1.Volume) bool {
	return v.ConfigMap != nil || v.Secret != nil || v.DownwardAPI != nil || v.Projected != nil
}

// ensureFileVolumes makes the engine's volumes of the pod's file volumes,
// for the sandbox to mount, and returns them.
func (m *Runtime) ensureFileVolumes(ctx context.Context, pod *corev1.Pod, rec *dockerPod) ([]string, error) {
	var out []string
	for i := range pod.Spec.Volumes {
		v := &pod.Spec.Volumes[i]
		if !isFileVolume(v) {
			continue
		}
		name, err := m.engine.EnsureVolume(ctx, string(pod.UID), v.Name, engine.EmptyDir{})
		if err != nil {
			return nil, err
		}
		m.mu.Lock()
		if rec.fileVolumes[v.Name] == nil {
			rec.fileVolumes[v.Name] = &fileVolume{volume: name}
		}
		m.mu.Unlock()
		out = append(out, name)
	}
	return out, nil
}

// syncFileVolumes writes a new generation of each file volume whose
// content changed since the last, every fileVolumeResync. A volume whose
// source cannot be read keeps its last generation; the error is the
// first such, and the containers that mount a volume never written
// report it.
func (m *Runtime) syncFileVolumes(ctx context.Context, pod *corev1.Pod, rec *dockerPod) error {
	now := m.now()
	m.mu.Lock()
	due := !now.Before(rec.fileSyncAt)
	sandbox := rec.sandboxID
	m.mu.Unlock()
	if !due || sandbox == "" {
		return nil
	}
	var first error
	for i := range pod.Spec.Volumes {
		v := &pod.Spec.Volumes[i]
		m.mu.Lock()
		fv := rec.fileVolumes[v.Name]
		m.mu.Unlock()
		if fv == nil {
			continue
		}
		files, err := m.volumeFiles(ctx, pod, rec, v)
		if err == nil {
			withFSGroup(pod, files)
			sum := filesSum(files)
			if fv.gen != "" && sum == fv.sum {
				continue
			}
			gen := fmt.Sprintf("..%d", fv.n+1)
			if err = m.engine.WriteVolumeFiles(ctx, sandbox, fv.volume, gen, files); err == nil {
				m.mu.Lock()
				fv.n, fv.gen, fv.sum = fv.n+1, gen, sum
				m.mu.Unlock()
				continue
			}
		}
		if first == nil {
			first = fmt.Errorf("volume %q: %w", v.Name, err)
		}
	}
	m.mu.Lock()
	rec.fileVolumeErr = first
	if first == nil {
		rec.fileSyncAt = now.Add(fileVolumeResync)
	}
	m.mu.Unlock()
	return first
}

// withFSGroup gives a pod's file volume to its fsGroup as the kubelet
// does to a read-only volume: each file belongs to the group, which may
// read it (mode | 0440).
func withFSGroup(pod *corev1.Pod, files []engine.File) {
	sc := pod.Spec.SecurityContext
	if sc == nil || sc.FSGroup == nil {
		return
	}
	for i := range files {
		if files[i].Mode == 0 {
			files[i].Mode = 0o644
		}
		files[i].Mode |= 0o440
		files[i].GID = *sc.FSGroup
	}
}

// filesSum is a digest of a generation's content.
func filesSum(files []engine.File) [sha256.Size]byte {
	h := sha256.New()
	var n [8]byte
	for _, f := range files {
		for _, b := range [][]byte{[]byte(f.Path), f.Data} {
			binary.BigEndian.PutUint64(n[:], uint64(len(b)))
			h.Write(n[:])
			h.Write(b)
		}
		binary.BigEndian.PutUint64(n[:], uint64(f.Mode))
		h.Write(n[:])
		binary.BigEndian.PutUint64(n[:], uint64(f.GID))
		h.Write(n[:])
	}
	var out [sha256.Size]byte
	copy(out[:], h.Sum(nil))
	return out
}

// fileVolumeMount is a container's mount of a file volume: read-only, as
// the kubelet mounts these; a sub-path is taken from the generation
// written last and, as with the kubelet, is not updated after.
func (m *Runtime) fileVolumeMount(rec *dockerPod, v *corev1.Volume, vm corev1.VolumeMount, sub string) (engine.Mount, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	fv := rec.fileVolumes[v.Name]
	if fv == nil || fv.gen == "" {
		if rec.fileVolumeErr != nil {
			return engine.Mount{}, rec.fileVolumeErr
		}
		return engine.Mount{}, fmt.Errorf("volume %q is not written yet", v.Name)
	}
	mnt := engine.Mount{Volume: fv.volume, Path: vm.MountPath, ReadOnly: true}
	if sub != "" {
		mnt.SubPath, mnt.SubPathType = fv.gen+"/"+sub, engine.SubPathExisting
	}
	return mnt, nil
}
