package cluster

import (
	"testing"

	"github.com/stretchr/testify/assert"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
)

func TestRouteURLs(t *testing.T) {
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "shop"}}
	gateway := &gwv1.Gateway{
		ObjectMeta: metav1.ObjectMeta{Name: "gw", Namespace: "shop"},
		Spec: gwv1.GatewaySpec{Listeners: []gwv1.Listener{
			{Name: "http", Port: 80, Protocol: gwv1.HTTPProtocolType},
			{Name: "alt", Port: 8080, Protocol: gwv1.HTTPProtocolType, Hostname: ptr.To(gwv1.Hostname("*.example.com"))},
			{Name: "tls", Port: 443, Protocol: gwv1.HTTPSProtocolType, Hostname: ptr.To(gwv1.Hostname("secure.test"))},
		}},
		Status: gwv1.GatewayStatus{Addresses: []gwv1.GatewayStatusAddress{{Type: ptr.To(gwv1.IPAddressType), Value: "172.19.48.2"}}},
	}
	backend := func(name string) []gwv1.HTTPBackendRef {
		return []gwv1.HTTPBackendRef{{BackendRef: gwv1.BackendRef{BackendObjectReference: gwv1.BackendObjectReference{Name: gwv1.ObjectName(name)}}}}
	}
	accepted := func(ref gwv1.ParentReference, ok bool) gwv1.RouteStatus {
		status := metav1.ConditionTrue
		if !ok {
			status = metav1.ConditionFalse
		}
		return gwv1.RouteStatus{Parents: []gwv1.RouteParentStatus{{ParentRef: ref, ControllerName: gatewayControllerName,
			Conditions: []metav1.Condition{{Type: "Accepted", Status: status}}}}}
	}
	cases := []struct {
		name  string
		ref   gwv1.ParentReference
		route gwv1.HTTPRouteSpec
		// refused: the Gateway did not accept the route.
		refused bool
		want    []string
	}{
		{
			name: "every listener, rule without matches",
			ref:  gwv1.ParentReference{Name: "gw"},
			route: gwv1.HTTPRouteSpec{Rules: []gwv1.HTTPRouteRule{
				{BackendRefs: backend("web")},
				{BackendRefs: backend("other"), Matches: []gwv1.HTTPRouteMatch{{Path: &gwv1.HTTPPathMatch{Value: ptr.To("/other")}}}},
			}},
			want: []string{
				"http://172.19.48.2/ (httproute r)",
				"http://172.19.48.2:8080/ (httproute r, Host: *.example.com)",
				"https://172.19.48.2/ (httproute r, Host: secure.test)",
			},
		},
		{
			name: "section, hostnames and paths",
			ref:  gwv1.ParentReference{Name: "gw", SectionName: ptr.To(gwv1.SectionName("alt"))},
			route: gwv1.HTTPRouteSpec{Hostnames: []gwv1.Hostname{"shop.example.com", "other.test"}, Rules: []gwv1.HTTPRouteRule{{
				BackendRefs: backend("web"),
				Matches: []gwv1.HTTPRouteMatch{
					{Path: &gwv1.HTTPPathMatch{Type: ptr.To(gwv1.PathMatchPathPrefix), Value: ptr.To("/api")}},
					{Path: &gwv1.HTTPPathMatch{Type: ptr.To(gwv1.PathMatchExact), Value: ptr.To("/health")}},
					{Path: &gwv1.HTTPPathMatch{Type: ptr.To(gwv1.PathMatchRegularExpression), Value: ptr.To("/v[0-9]+")}},
				},
			}}},
			want: []string{
				"http://172.19.48.2:8080/api (httproute r, Host: shop.example.com)",
				"http://172.19.48.2:8080/health (httproute r, exact path, Host: shop.example.com)",
				"http://172.19.48.2:8080/ (httproute r, path matching /v[0-9]+, Host: shop.example.com)",
			},
		},
		{
			name:    "not accepted",
			ref:     gwv1.ParentReference{Name: "gw"},
			route:   gwv1.HTTPRouteSpec{Rules: []gwv1.HTTPRouteRule{{BackendRefs: backend("web")}}},
			refused: true,
		},
		{
			name:  "another service",
			ref:   gwv1.ParentReference{Name: "gw", Port: ptr.To(gwv1.PortNumber(80))},
			route: gwv1.HTTPRouteSpec{Rules: []gwv1.HTTPRouteRule{{BackendRefs: backend("other")}}},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.route.ParentRefs = []gwv1.ParentReference{tc.ref}
			r := &gwv1.HTTPRoute{ObjectMeta: metav1.ObjectMeta{Name: "r", Namespace: "shop"}, Spec: tc.route, Status: gwv1.HTTPRouteStatus{RouteStatus: accepted(tc.ref, !tc.refused)}}
			var got []string
			if routeSendsTo(r, svc) {
				got = routeURLs(r, tc.ref, gateway, svc)
			}
			assert.Equal(t, tc.want, got)
		})
	}
}

func TestRouteHosts(t *testing.T) {
	cases := []struct {
		route    []gwv1.Hostname
		listener string
		want     []string
		ok       bool
	}{
		{nil, "", []string{""}, true},
		{nil, "a.test", []string{"a.test"}, true},
		{[]gwv1.Hostname{"a.test"}, "", []string{"a.test"}, true},
		{[]gwv1.Hostname{"*.example.com"}, "shop.example.com", []string{"shop.example.com"}, true},
		{[]gwv1.Hostname{"a.b.example.com"}, "*.example.com", []string{"a.b.example.com"}, true},
		{[]gwv1.Hostname{"a.test"}, "b.test", nil, false},
	}
	for _, tc := range cases {
		var listener *gwv1.Hostname
		if tc.listener != "" {
			listener = ptr.To(gwv1.Hostname(tc.listener))
		}
		got, ok := routeHosts(tc.route, listener)
		assert.Equal(t, tc.want, got, "route %v, listener %q", tc.route, tc.listener)
		assert.Equal(t, tc.ok, ok)
	}
}
