package kubelet

import (
	"testing"

	"github.com/stretchr/testify/assert"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"minik.dev/minik/nodeconfig"
)

func TestSetStatusCapacity(t *testing.T) {
	tests := []struct {
		name     string
		have     corev1.ResourceList
		wantKeep map[corev1.ResourceName]string
		wantGone []corev1.ResourceName
	}{
		{
			name:     "fresh node",
			wantGone: []corev1.ResourceName{"example.com/foo"},
		},
		{
			name: "an extended resource patched in stays",
			have: corev1.ResourceList{
				"scheduling.k8s.io/foo": resource.MustParse("5"),
				corev1.ResourceCPU:      resource.MustParse("64"),
			},
			wantKeep: map[corev1.ResourceName]string{"scheduling.k8s.io/foo": "5"},
		},
		{
			name: "a resource the node measures is its own",
			have: corev1.ResourceList{
				corev1.ResourceMemory: resource.MustParse("1Ti"),
				"hugepages-2Mi":       resource.MustParse("1Gi"),
			},
			wantGone: []corev1.ResourceName{"hugepages-2Mi"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := &Agent{cfg: &nodeconfig.Config{Name: "n", CPUMillis: 2000, MemoryBytes: 4 << 30}}
			st := corev1.NodeStatus{Capacity: tt.have}
			a.setStatus(&st, metav1.Now())

			assert.Equal(t, "2", st.Capacity.Cpu().String())
			assert.Equal(t, "4Gi", st.Capacity.Memory().String())
			for name, q := range tt.wantKeep {
				c, ok := st.Capacity[name]
				if assert.True(t, ok, "capacity %s", name) {
					assert.Equal(t, q, c.String())
				}
				al, ok := st.Allocatable[name]
				if assert.True(t, ok, "allocatable %s", name) {
					assert.Equal(t, q, al.String())
				}
			}
			for _, name := range tt.wantGone {
				assert.NotContains(t, st.Capacity, name)
				assert.NotContains(t, st.Allocatable, name)
			}
		})
	}
}
