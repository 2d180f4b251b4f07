package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"minik.dev/minik/nodeconfig"
)

// Manifests is the state of a profile's manifests folder.
type Manifests struct {
	// Dir is the folder on this machine.
	Dir string `json:"dir"`
	// Files is how each file was last applied; nil when Unknown is set.
	Files []nodeconfig.ManifestFile `json:"files"`
	// Unknown says why the files' state could not be read (the cluster
	// is stopped, say).
	Unknown string `json:"unknown,omitempty"`
}

// Manifests returns the folder a profile's control plane applies and how
// each of its files was last applied.
func (m *Manager) Manifests(ctx context.Context, profile string) (*Manifests, error) {
	if err := ValidateName(profile); err != nil {
		return nil, err
	}
	p, err := m.store.Load(profile)
	if err != nil {
		return nil, err
	}
	out := &Manifests{Dir: m.store.ManifestsDir(p), Files: []nodeconfig.ManifestFile{}}
	client, err := newAdminClient(m.store.AdminKubeconfig(p.Name))
	if err != nil {
		out.Unknown = err.Error()
		return out, nil
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	cm, err := client.CoreV1().ConfigMaps(metav1.NamespaceSystem).Get(ctx, nodeconfig.ManifestsConfigMap, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		return out, nil // nothing applied yet
	case err != nil:
		out.Unknown = fmt.Sprintf("the cluster does not answer (%v); is it running?", err)
		return out, nil
	}
	if err := json.Unmarshal([]byte(cm.Data[nodeconfig.ManifestsStatusKey]), &out.Files); err != nil && cm.Data[nodeconfig.ManifestsStatusKey] != "" {
		return nil, fmt.Errorf("read the manifests record: %w", err)
	}
	return out, nil
}
