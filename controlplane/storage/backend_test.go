package storage

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
)

func TestNodeBackendDelete(t *testing.T) {
	pinned := func(node string) *corev1.PersistentVolume {
		return &corev1.PersistentVolume{Spec: corev1.PersistentVolumeSpec{NodeAffinity: &corev1.VolumeNodeAffinity{
			Required: &corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{{MatchExpressions: []corev1.NodeSelectorRequirement{
				{Key: corev1.LabelHostname, Operator: corev1.NodeSelectorOpIn, Values: []string{node}},
			}}}},
		}}}
	}
	assert.Equal(t, "vms-m02", volumeNode(pinned("vms-m02")))
	assert.Equal(t, "", volumeNode(&corev1.PersistentVolume{}), "a shared volume")

	var asked []string
	b := NodeBackend{RemoveOnNode: func(_ context.Context, node, handle string) error {
		asked = append(asked, node+"/"+handle)
		return nil
	}}
	require.NoError(t, b.Delete(context.Background(), "pvc-1", volumeNode(pinned("vms-m02"))))
	assert.Equal(t, []string{"vms-m02/pvc-1"}, asked, "the volume's own node removes its folder")
	require.NoError(t, NodeBackend{}.Delete(context.Background(), "pvc-1", "n"), "sim nodes keep no bytes")
}
