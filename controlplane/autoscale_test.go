package controlplane

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"minik.dev/minik/nodeconfig"
)

func TestWaitForSettings(t *testing.T) {
	settings := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: nodeconfig.AutoscalerSettings, Namespace: metav1.NamespaceSystem}}

	t.Run("already there", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		require.NoError(t, waitForSettings(ctx, fake.NewClientset(settings.DeepCopy())))
	})

	t.Run("made later", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		client := fake.NewClientset()
		done := make(chan error, 1)
		go func() { done <- waitForSettings(ctx, client) }()
		select {
		case err := <-done:
			t.Fatalf("returned before the settings exist: %v", err)
		case <-time.After(200 * time.Millisecond):
		}
		_, err := client.CoreV1().ConfigMaps(metav1.NamespaceSystem).Create(ctx, settings.DeepCopy(), metav1.CreateOptions{})
		require.NoError(t, err)
		select {
		case err := <-done:
			require.NoError(t, err)
		case <-ctx.Done():
			t.Fatal("did not see the settings made")
		}
	})

	t.Run("context ends", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		assert.Error(t, waitForSettings(ctx, fake.NewClientset()))
	})
}
