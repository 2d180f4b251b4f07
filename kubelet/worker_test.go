package kubelet

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

func TestActiveDeadline(t *testing.T) {
	start := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name     string
		deadline *int64
		phase    corev1.PodPhase
		now      time.Time
		left     time.Duration
		exceeded bool
	}{
		{name: "no deadline", phase: corev1.PodRunning, now: start.Add(time.Hour)},
		{name: "time left", deadline: ptr.To[int64](5), phase: corev1.PodRunning, now: start.Add(2 * time.Second), left: 3 * time.Second},
		{name: "run out", deadline: ptr.To[int64](5), phase: corev1.PodRunning, now: start.Add(5 * time.Second), exceeded: true},
		{name: "finished first", deadline: ptr.To[int64](5), phase: corev1.PodSucceeded, now: start.Add(time.Minute)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pod := &corev1.Pod{Spec: corev1.PodSpec{ActiveDeadlineSeconds: tt.deadline}}
			status := &corev1.PodStatus{Phase: tt.phase, StartTime: &metav1.Time{Time: start}}
			left, exceeded := activeDeadline(pod, status, tt.now)
			assert.Equal(t, tt.exceeded, exceeded)
			if !tt.exceeded {
				assert.Equal(t, tt.left, left)
			}
		})
	}
	status := &corev1.PodStatus{Phase: corev1.PodRunning, Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}}
	failDeadlineExceeded(status)
	assert.Equal(t, corev1.PodFailed, status.Phase)
	assert.Equal(t, "DeadlineExceeded", status.Reason)
	assert.Equal(t, corev1.ConditionFalse, status.Conditions[0].Status)
}
