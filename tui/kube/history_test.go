package kube

import (
	"context"
	"math"
	"testing"
	"time"

	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
)

func TestHistoryWithoutMiniksPrometheus(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	for _, tc := range []struct {
		name    string
		objects []corev1.Service
	}{
		{"no prometheus Service", nil},
		{"someone else's prometheus", []corev1.Service{{ObjectMeta: metav1.ObjectMeta{Name: "prometheus", Namespace: "kube-system"}}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			kc := fake.NewClientset()
			for i := range tc.objects {
				_, err := kc.CoreV1().Services("kube-system").Create(context.Background(), &tc.objects[i], metav1.CreateOptions{})
				require.NoError(t, err)
			}
			h := New(kc, nil, Options{}).History(context.Background(), now)
			assert.Empty(t, h.Source)
			assert.NoError(t, h.Err)
			assert.Empty(t, h.Series)
		})
	}
}

func TestHistoryUnreachablePrometheus(t *testing.T) {
	kc := fake.NewClientset(&corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "prometheus", Namespace: "kube-system",
		Annotations: map[string]string{nodeURLAnnotation: "http://127.0.0.1:1"}}})
	h := New(kc, nil, Options{}).History(context.Background(), time.Now())
	assert.Equal(t, "http://127.0.0.1:1", h.Source)
	require.Error(t, h.Err)
	assert.Contains(t, h.Err.Error(), "query prometheus at http://127.0.0.1:1")
}

func TestPointsOnSteps(t *testing.T) {
	start := time.Unix(1_800_000_000, 0)
	r := promv1.Range{Start: start, End: start.Add(9 * time.Minute), Step: time.Minute}
	at := func(i int, v float64) model.SamplePair {
		return model.SamplePair{Timestamp: model.TimeFromUnixNano(start.Add(time.Duration(i) * time.Minute).UnixNano()), Value: model.SampleValue(v)}
	}
	got := points([]model.SamplePair{at(0, 0.1), at(2, 0.2), at(9, 0.5), at(12, 9)}, r, 1000)
	require.Len(t, got, HistoryPoints)
	assert.InDelta(t, 100, got[0], 1e-9)
	assert.True(t, math.IsNaN(got[1]), "no sample at step 1")
	assert.InDelta(t, 200, got[2], 1e-9)
	assert.InDelta(t, 500, got[9], 1e-9)
}
