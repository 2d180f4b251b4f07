package kubelet

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
)

func TestWaitPodCIDR(t *testing.T) {
	node := func(cidr string) *corev1.Node {
		return &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1"}, Spec: corev1.NodeSpec{PodCIDR: cidr}}
	}
	t.Run("already assigned", func(t *testing.T) {
		client := fake.NewClientset(node("10.244.1.0/24"))
		cidr, err := waitPodCIDR(t.Context(), client, "n1")
		require.NoError(t, err)
		assert.Equal(t, "10.244.1.0/24", cidr)
	})
	t.Run("assigned after the node registers", func(t *testing.T) {
		client := fake.NewClientset()
		got := make(chan string, 1)
		go func() {
			cidr, err := waitPodCIDR(t.Context(), client, "n1")
			assert.NoError(t, err)
			got <- cidr
		}()
		_, err := client.CoreV1().Nodes().Create(t.Context(), node(""), metav1.CreateOptions{})
		require.NoError(t, err)
		select {
		case cidr := <-got:
			t.Fatalf("returned %q before a podCIDR was assigned", cidr)
		case <-time.After(200 * time.Millisecond):
		}
		_, err = client.CoreV1().Nodes().Update(t.Context(), node("10.244.2.0/24"), metav1.UpdateOptions{})
		require.NoError(t, err)
		select {
		case cidr := <-got:
			assert.Equal(t, "10.244.2.0/24", cidr)
		case <-time.After(10 * time.Second):
			t.Fatal("the assignment was not seen")
		}
	})
	t.Run("gives up with its context", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
		defer cancel()
		_, err := waitPodCIDR(ctx, fake.NewClientset(node("")), "n1")
		assert.ErrorContains(t, err, "wait for pod CIDR")
	})
}
