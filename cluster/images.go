package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"k8s.io/client-go/kubernetes"

	"minik.dev/minik/imageserver"
	"minik.dev/minik/nodeconfig"
)

// ErrNoImageStore is returned (wrapped) by LoadImages for clusters whose
// nodes keep no images of their own.
var ErrNoImageStore = errors.New("nodes keep no images of their own")

// ImageSource is what LoadImages sends: a docker-save archive, or images
// of this machine's Docker Engine, which it exports.
type ImageSource struct {
	// Archive is a docker-save archive's path.
	Archive string
	// Images are references of the engine's images.
	Images []string
}

// LoadedImages is what one node took.
type LoadedImages struct {
	Node   string   `json:"node"`
	Images []string `json:"images"`
}

// LoadImages puts images into every node of the cluster: the nodes of VM
// drivers keep their own image store, which pods use with no pull. An
// archive is read as it is; images named are exported from this machine's
// engine first.
func (m *Manager) LoadImages(ctx context.Context, profile string, src ImageSource) ([]LoadedImages, error) {
	if (src.Archive == "") == (len(src.Images) == 0) {
		return nil, errors.New("load images: give an archive or image names, not both")
	}
	if err := ValidateName(profile); err != nil {
		return nil, err
	}
	p, err := m.store.Load(profile)
	if err != nil {
		return nil, err
	}
	d, err := m.drivers.Get(p.Driver)
	if err != nil {
		return nil, err
	}
	switch rt := d.Info().Runtime; rt {
	case nodeconfig.RuntimeRunc:
	case nodeconfig.RuntimeDocker:
		return nil, fmt.Errorf("load images: %w: the %s driver's pods run on this machine's Docker Engine, so an image built with docker build needs no load (docker load FILE.tar puts an archive there)", ErrNoImageStore, p.Driver)
	default:
		return nil, fmt.Errorf("load images: %w: the %s driver's pods are simulated (the %s runtime) and run no image", ErrNoImageStore, p.Driver, rt)
	}
	if err := m.requireRunning(ctx, d, p); err != nil {
		return nil, err
	}
	archive := src.Archive
	if archive == "" {
		tmp, err := exportImages(ctx, src.Images)
		if err != nil {
			return nil, err
		}
		defer os.Remove(tmp)
		archive = tmp
	} else if fi, err := os.Stat(archive); err != nil || !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("load images: %s is not a file (an archive written by docker save)", archive)
	}
	rc, err := adminRESTConfig(m.store.AdminKubeconfig(p.Name))
	if err != nil {
		return nil, err
	}
	// An archive of hundreds of megabytes takes longer than a request.
	rc.Timeout = 10 * time.Minute
	cs, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return nil, fmt.Errorf("create admin client: %w", err)
	}
	var out []LoadedImages
	for _, n := range p.Nodes {
		names, err := loadOnNode(ctx, cs, n.Name, archive)
		if err != nil {
			return out, err
		}
		out = append(out, LoadedImages{Node: n.Name, Images: names})
	}
	return out, nil
}

// loadOnNode posts the archive to the node agent's /images/load through
// the apiserver's node proxy.
func loadOnNode(ctx context.Context, cs kubernetes.Interface, node, archive string) ([]string, error) {
	f, err := os.Open(archive)
	if err != nil {
		return nil, fmt.Errorf("load images: %w", err)
	}
	defer f.Close()
	res := cs.CoreV1().RESTClient().Post().AbsPath("/api/v1/nodes", node, "proxy", "images", "load").
		SetHeader("Content-Type", "application/x-tar").Body(f).Do(ctx)
	raw, err := res.Raw()
	if err != nil {
		msg := string(raw)
		if msg == "" {
			msg = err.Error()
		}
		return nil, fmt.Errorf("load images on node %s: %s", node, msg)
	}
	var body struct {
		Images []string `json:"images"`
	}
	if err := json.Unmarshal(raw, &body); err != nil {
		return nil, fmt.Errorf("load images on node %s: %w", node, err)
	}
	return body.Images, nil
}

// exportImages writes the engine's images to a temporary docker-save
// archive and returns its path.
func exportImages(ctx context.Context, images []string) (string, error) {
	eng, err := imageserver.NewDockerEngine()
	if err != nil {
		return "", fmt.Errorf("export images: %w", err)
	}
	defer eng.Close()
	for _, img := range images {
		if _, ok, err := eng.ImageID(ctx, img); err != nil || !ok {
			return "", fmt.Errorf("export image %s from this machine's Docker Engine: not found (build it, or give a docker save archive)", img)
		}
	}
	rc, err := eng.SaveAll(ctx, images)
	if err != nil {
		return "", fmt.Errorf("export images: %w", err)
	}
	defer rc.Close()
	tmp, err := os.CreateTemp("", "minik-images-*.tar")
	if err != nil {
		return "", fmt.Errorf("export images: %w", err)
	}
	_, err = io.Copy(tmp, rc)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = os.Remove(tmp.Name())
		return "", fmt.Errorf("export images: %w", err)
	}
	return tmp.Name(), nil
}
