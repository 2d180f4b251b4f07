package controlplane

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"minik.dev/minik/nodeconfig"
)

func TestPublishPrometheus(t *testing.T) {
	ctx := context.Background()
	t.Run("a node on a network: Service, URL and EndpointSlice", func(t *testing.T) {
		client := fake.NewClientset()
		require.NoError(t, publishPrometheus(ctx, client, "172.30.0.2", 9090))
		svc, err := client.CoreV1().Services("kube-system").Get(ctx, "prometheus", metav1.GetOptions{})
		require.NoError(t, err)
		assert.Equal(t, "http://172.30.0.2:9090", svc.Annotations[nodeconfig.NodeURLAnnotation])
		assert.Empty(t, svc.Spec.Selector)
		slice, err := client.DiscoveryV1().EndpointSlices("kube-system").Get(ctx, "prometheus", metav1.GetOptions{})
		require.NoError(t, err)
		assert.Equal(t, []string{"172.30.0.2"}, slice.Endpoints[0].Addresses)
		assert.Equal(t, svc.UID, slice.OwnerReferences[0].UID)

		// A new port (9090 taken) moves both.
		require.NoError(t, publishPrometheus(ctx, client, "172.30.0.2", 41000))
		slice, err = client.DiscoveryV1().EndpointSlices("kube-system").Get(ctx, "prometheus", metav1.GetOptions{})
		require.NoError(t, err)
		assert.Equal(t, int32(41000), *slice.Ports[0].Port)

		require.NoError(t, unpublishPrometheus(ctx, client))
		_, err = client.CoreV1().Services("kube-system").Get(ctx, "prometheus", metav1.GetOptions{})
		assert.True(t, apierrors.IsNotFound(err))
	})
	t.Run("a process-driver node: loopback is no endpoint", func(t *testing.T) {
		client := fake.NewClientset()
		require.NoError(t, publishPrometheus(ctx, client, "127.0.3.4", 9090))
		svc, err := client.CoreV1().Services("kube-system").Get(ctx, "prometheus", metav1.GetOptions{})
		require.NoError(t, err)
		assert.Equal(t, "http://127.0.3.4:9090", svc.Annotations[nodeconfig.NodeURLAnnotation])
		_, err = client.DiscoveryV1().EndpointSlices("kube-system").Get(ctx, "prometheus", metav1.GetOptions{})
		assert.True(t, apierrors.IsNotFound(err))
	})
	t.Run("a user's own Service of that name is left alone", func(t *testing.T) {
		own := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "prometheus", Namespace: "kube-system"}}
		client := fake.NewClientset(own)
		require.ErrorContains(t, publishPrometheus(ctx, client, "172.30.0.2", 9090), "is not minik's")
		require.NoError(t, unpublishPrometheus(ctx, client))
		_, err := client.CoreV1().Services("kube-system").Get(ctx, "prometheus", metav1.GetOptions{})
		require.NoError(t, err)
	})
}
