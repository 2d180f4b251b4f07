package services

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/record"
	"k8s.io/utils/ptr"
)

func ingress(name string, age time.Duration, host string, paths ...networkingv1.HTTPIngressPath) *networkingv1.Ingress {
	return &networkingv1.Ingress{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default", UID: types.UID("uid-" + name),
			CreationTimestamp: metav1.NewTime(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).Add(-age))},
		Spec: networkingv1.IngressSpec{
			IngressClassName: ptr.To(IngressClass),
			Rules:            []networkingv1.IngressRule{{Host: host, IngressRuleValue: networkingv1.IngressRuleValue{HTTP: &networkingv1.HTTPIngressRuleValue{Paths: paths}}}},
		},
	}
}

func path(p string, typ networkingv1.PathType, svc string) networkingv1.HTTPIngressPath {
	return networkingv1.HTTPIngressPath{Path: p, PathType: ptr.To(typ), Backend: networkingv1.IngressBackend{
		Service: &networkingv1.IngressServiceBackend{Name: svc, Port: networkingv1.ServiceBackendPort{Number: 80}}}}
}

func TestIngressRouting(t *testing.T) {
	events := record.NewFakeRecorder(10)
	s := &ingressServer{recorder: events, reported: map[string]bool{}}
	old := ingress("old", time.Hour, "web.example",
		path("/", networkingv1.PathTypePrefix, "web"),
		path("/api", networkingv1.PathTypePrefix, "api"),
		path("/exact", networkingv1.PathTypeExact, "exact"))
	newer := ingress("newer", time.Minute, "web.example", path("/api", networkingv1.PathTypePrefix, "thief"))
	wild := ingress("wild", time.Minute, "*.apps.example", path("/", networkingv1.PathTypePrefix, "wild"))
	fallback := ingress("fallback", time.Minute, "")
	fallback.Spec.Rules = nil
	fallback.Spec.DefaultBackend = &networkingv1.IngressBackend{Service: &networkingv1.IngressServiceBackend{Name: "default-backend"}}
	table := s.build([]*networkingv1.Ingress{newer, wild, fallback, old})

	tests := []struct {
		host, path, want string
	}{
		{"web.example", "/", "web"},
		{"web.example:80", "/index.html", "web"},
		{"WEB.example", "/api", "api"},
		{"web.example", "/api/v1", "api"},
		{"web.example", "/apis", "web"}, // Prefix matches whole path elements
		{"web.example", "/exact", "exact"},
		{"web.example", "/exact/more", "web"},
		{"one.apps.example", "/x", "wild"},
		{"a.b.apps.example", "/x", "default-backend"}, // a wildcard covers one label
		{"other.example", "/", "default-backend"},
	}
	for _, tt := range tests {
		t.Run(tt.host+tt.path, func(t *testing.T) {
			r, ok := table.match(tt.host, tt.path)
			assert.True(t, ok)
			assert.Equal(t, tt.want, r.backend.Name)
		})
	}
	assert.Len(t, events.Events, 1, "the newer ingress's clash is reported once")
	assert.Contains(t, <-events.Events, `HostPathConflict host "web.example" path "/api" is served by the older ingress default/old`)
	s.build([]*networkingv1.Ingress{newer, old})
	assert.Empty(t, events.Events, "not again")

	table = s.build([]*networkingv1.Ingress{old})
	_, ok := table.match("other.example", "/")
	assert.False(t, ok, "no rule and no default backend: 404")
}
