package tui

import (
	"testing"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestNodeRolesOfAJoinedNode(t *testing.T) {
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"node-role.kubernetes.io/control-plane": ""}}}
	require.Equal(t, "control-plane", nodeRoles(n))
	n.Labels = map[string]string{"minik.dev/joined": "true", "minik.dev/joined-host": "gpu-box"}
	require.Equal(t, "<none> (joined, on gpu-box)", nodeRoles(n))
	n.Labels = map[string]string{"minik.dev/autoscaled": "true"}
	require.Equal(t, "<none> (autoscaled)", nodeRoles(n), "a worker the autoscaler made")
}
