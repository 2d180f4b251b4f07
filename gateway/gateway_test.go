package gateway

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
)

func TestCRDs(t *testing.T) {
	crds, err := CRDs()
	require.NoError(t, err)
	names := map[string]bool{}
	for _, c := range crds {
		names[c.Name] = true
		assert.Equal(t, BundleVersion, c.Annotations[bundleVersion], c.Name)
		assert.Equal(t, "standard", c.Annotations["gateway.networking.k8s.io/channel"], c.Name)
	}
	for _, n := range []string{"gatewayclasses", "gateways", "httproutes", "referencegrants", "grpcroutes"} {
		assert.True(t, names[n+"."+Group], n)
	}
}

const bundleVersion = "gateway.networking.k8s.io/bundle-version"

func gw(name string, listeners ...gwv1.Listener) *gwv1.Gateway {
	return &gwv1.Gateway{ObjectMeta: metav1.ObjectMeta{Namespace: "infra", Name: name, Generation: 2},
		Spec: gwv1.GatewaySpec{GatewayClassName: ClassName, Listeners: listeners}}
}

func listener(name string, port int32, host string, from gwv1.FromNamespaces) gwv1.Listener {
	l := gwv1.Listener{Name: gwv1.SectionName(name), Port: gwv1.PortNumber(port), Protocol: gwv1.HTTPProtocolType,
		AllowedRoutes: &gwv1.AllowedRoutes{Namespaces: &gwv1.RouteNamespaces{From: &from}}}
	if host != "" {
		l.Hostname = ptrTo(gwv1.Hostname(host))
	}
	return l
}

type ruleSpec struct {
	path, pathType string
	header         [2]string
	method         string
	backends       map[string]int32 // service -> weight
	filters        []gwv1.HTTPRouteFilter
}

func route(ns, name string, hosts []string, parent string, rules ...ruleSpec) *gwv1.HTTPRoute {
	r := &gwv1.HTTPRoute{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Generation: 1}}
	r.Spec.ParentRefs = []gwv1.ParentReference{{Name: gwv1.ObjectName(parent), Namespace: ptrTo(gwv1.Namespace("infra"))}}
	for _, h := range hosts {
		r.Spec.Hostnames = append(r.Spec.Hostnames, gwv1.Hostname(h))
	}
	for _, rs := range rules {
		rule := gwv1.HTTPRouteRule{Filters: rs.filters}
		m := gwv1.HTTPRouteMatch{}
		if rs.path != "" {
			m.Path = &gwv1.HTTPPathMatch{Type: ptrTo(gwv1.PathMatchType(rs.pathType)), Value: ptrTo(rs.path)}
		}
		if rs.header[0] != "" {
			m.Headers = []gwv1.HTTPHeaderMatch{{Name: gwv1.HTTPHeaderName(rs.header[0]), Value: rs.header[1]}}
		}
		if rs.method != "" {
			m.Method = ptrTo(gwv1.HTTPMethod(rs.method))
		}
		rule.Matches = []gwv1.HTTPRouteMatch{m}
		for svc, w := range rs.backends {
			rule.BackendRefs = append(rule.BackendRefs, gwv1.HTTPBackendRef{BackendRef: gwv1.BackendRef{
				BackendObjectReference: gwv1.BackendObjectReference{Name: gwv1.ObjectName(svc), Port: ptrTo(gwv1.PortNumber(80))},
				Weight:                 ptrTo(w)}})
		}
		r.Spec.Rules = append(r.Spec.Rules, rule)
	}
	return r
}

func input(gws []*gwv1.Gateway, routes []*gwv1.HTTPRoute, services ...string) Input {
	in := Input{Classes: map[string]bool{ClassName: true}, Gateways: gws, Routes: routes,
		Namespaces: map[string]map[string]string{"infra": nil, "apps": {"team": "a"}},
		Services:   map[string]*corev1.Service{}, Addresses: map[string]string{}}
	for _, g := range gws {
		in.Addresses[key(g.Namespace, g.Name)] = "127.0.0.1"
	}
	for _, s := range services {
		in.Services[s] = &corev1.Service{}
	}
	return in
}

func condition(t *testing.T, conds []metav1.Condition, typ string) metav1.Condition {
	t.Helper()
	c := meta.FindStatusCondition(conds, typ)
	require.NotNil(t, c, typ)
	return *c
}

func TestStatus(t *testing.T) {
	g := gw("gw", listener("http", 80, "", gwv1.NamespacesFromSame), listener("apps", 8080, "*.example.com", gwv1.NamespacesFromAll),
		gwv1.Listener{Name: "tcp", Port: 9000, Protocol: gwv1.TCPProtocolType})
	routes := []*gwv1.HTTPRoute{
		route("infra", "same", nil, "gw", ruleSpec{backends: map[string]int32{"web": 1}}),
		route("apps", "other-ns", []string{"a.example.com"}, "gw", ruleSpec{backends: map[string]int32{"missing": 1}}),
		route("apps", "wrong-host", []string{"nope.test"}, "gw", ruleSpec{}),
	}
	m := Compute(input([]*gwv1.Gateway{g}, routes, "infra/web"))
	gm := m.Gateways["infra/gw"]
	require.NotNil(t, gm)
	assert.Equal(t, "ListenersNotValid", condition(t, gm.Status.Conditions, "Accepted").Reason)
	assert.Equal(t, metav1.ConditionTrue, condition(t, gm.Status.Conditions, "Programmed").Status)
	assert.Equal(t, int64(2), condition(t, gm.Status.Conditions, "Programmed").ObservedGeneration)
	assert.Equal(t, "127.0.0.1", gm.Status.Addresses[0].Value)
	require.Len(t, gm.Status.Listeners, 3)
	assert.Equal(t, int32(1), gm.Status.Listeners[0].AttachedRoutes, "the same-namespace route only")
	assert.Equal(t, int32(2), gm.Status.Listeners[1].AttachedRoutes, "the route whose hostname fits, and the one with none")
	assert.Equal(t, "UnsupportedProtocol", condition(t, gm.Status.Listeners[2].Conditions, "Accepted").Reason)

	same := m.RouteParents["infra/same"]
	require.Len(t, same, 1)
	assert.Equal(t, metav1.ConditionTrue, condition(t, same[0].Conditions, "Accepted").Status)
	assert.Equal(t, metav1.ConditionTrue, condition(t, same[0].Conditions, "ResolvedRefs").Status)
	assert.Equal(t, ControllerName, same[0].ControllerName)

	other := m.RouteParents["apps/other-ns"]
	assert.Equal(t, metav1.ConditionTrue, condition(t, other[0].Conditions, "Accepted").Status)
	assert.Equal(t, "BackendNotFound", condition(t, other[0].Conditions, "ResolvedRefs").Reason)
	assert.Equal(t, "NoMatchingListenerHostname", condition(t, m.RouteParents["apps/wrong-host"][0].Conditions, "Accepted").Reason)

	// A parentRef's sectionName that names no listener.
	r := route("infra", "bad-section", nil, "gw", ruleSpec{})
	r.Spec.ParentRefs[0].SectionName = ptrTo(gwv1.SectionName("nope"))
	m = Compute(input([]*gwv1.Gateway{g}, []*gwv1.HTTPRoute{r}))
	assert.Equal(t, "NoMatchingParent", condition(t, m.RouteParents["infra/bad-section"][0].Conditions, "Accepted").Reason)
}

func TestIntersect(t *testing.T) {
	tests := []struct {
		listener string
		route    []gwv1.Hostname
		want     []string
		ok       bool
	}{
		{"", nil, nil, true},
		{"a.example.com", nil, []string{"a.example.com"}, true},
		{"*.example.com", []gwv1.Hostname{"a.example.com", "b.a.example.com", "example.com", "x.test"}, []string{"a.example.com", "b.a.example.com"}, true},
		{"a.example.com", []gwv1.Hostname{"*.example.com"}, []string{"a.example.com"}, true},
		{"*.example.com", []gwv1.Hostname{"*.a.example.com"}, []string{"*.a.example.com"}, true},
		{"a.example.com", []gwv1.Hostname{"b.example.com"}, nil, false},
	}
	for _, tt := range tests {
		got, ok := intersect(tt.listener, tt.route)
		assert.Equal(t, tt.ok, ok, tt.listener)
		assert.Equal(t, tt.want, got, tt.listener)
	}
}

// TestServe routes real requests through a Port's handler to backends
// that are httptest servers.
func TestServe(t *testing.T) {
	backends := map[string]*httptest.Server{}
	for _, name := range []string{"web", "api", "canary", "exact"} {
		backends[name] = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("X-Backend", name)
			w.Header().Set("X-Drop", "yes")
			_, _ = io.WriteString(w, name+" "+r.Host+r.URL.Path+" "+r.Header.Get("X-Added"))
		}))
		t.Cleanup(backends[name].Close)
	}
	eps := func(ns, svc string, port int32) (string, error) {
		u, _ := url.Parse(backends[svc].URL)
		return u.Host, nil
	}
	g := gw("gw", listener("http", 80, "", gwv1.NamespacesFromAll), listener("special", 80, "special.test", gwv1.NamespacesFromAll))
	routes := []*gwv1.HTTPRoute{
		route("infra", "main", nil, "gw",
			ruleSpec{path: "/", pathType: "PathPrefix", backends: map[string]int32{"web": 1}},
			ruleSpec{path: "/api", pathType: "PathPrefix", backends: map[string]int32{"api": 1},
				filters: []gwv1.HTTPRouteFilter{
					{Type: gwv1.HTTPRouteFilterRequestHeaderModifier, RequestHeaderModifier: &gwv1.HTTPHeaderFilter{Add: []gwv1.HTTPHeader{{Name: "X-Added", Value: "1"}}}},
					{Type: gwv1.HTTPRouteFilterResponseHeaderModifier, ResponseHeaderModifier: &gwv1.HTTPHeaderFilter{Remove: []string{"X-Drop"}}},
				}},
			ruleSpec{path: "/api/v1", pathType: "Exact", backends: map[string]int32{"exact": 1}},
			ruleSpec{path: "/", pathType: "PathPrefix", header: [2]string{"X-Canary", "always"}, backends: map[string]int32{"canary": 1}},
			ruleSpec{path: "/split", pathType: "PathPrefix", backends: map[string]int32{"web": 1, "canary": 1}},
			ruleSpec{path: "/none", pathType: "PathPrefix", backends: map[string]int32{"web": 0}},
			ruleSpec{path: "/post", pathType: "PathPrefix", method: "POST", backends: map[string]int32{"api": 1}},
			ruleSpec{path: "/old", pathType: "PathPrefix", filters: []gwv1.HTTPRouteFilter{{Type: gwv1.HTTPRouteFilterRequestRedirect,
				RequestRedirect: &gwv1.HTTPRequestRedirectFilter{Hostname: ptrTo(gwv1.PreciseHostname("new.test")), StatusCode: ptrTo(301),
					Path: &gwv1.HTTPPathModifier{Type: gwv1.PrefixMatchHTTPPathModifier, ReplacePrefixMatch: ptrTo("/new")}}}}},
		),
		route("infra", "special", nil, "gw", ruleSpec{backends: map[string]int32{"exact": 1}}),
	}
	routes[0].Spec.ParentRefs[0].SectionName = ptrTo(gwv1.SectionName("http"))
	routes[1].Spec.ParentRefs[0].SectionName = ptrTo(gwv1.SectionName("special"))
	m := Compute(input([]*gwv1.Gateway{g}, routes, "infra/web", "infra/api", "infra/canary", "infra/exact"))
	ports := m.Gateways["infra/gw"].Ports()
	require.Len(t, ports, 1)
	srv := httptest.NewServer(ports[0].Handler(eps))
	t.Cleanup(srv.Close)
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

	do := func(method, host, path string, hdr map[string]string) (*http.Response, string) {
		req, err := http.NewRequest(method, srv.URL+path, nil)
		require.NoError(t, err)
		req.Host = host
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := client.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp, string(body)
	}
	tests := []struct {
		name, method, host, path string
		hdr                      map[string]string
		code                     int
		backend                  string
	}{
		{"prefix root", "GET", "x.test", "/", nil, 200, "web"},
		{"longest prefix", "GET", "x.test", "/api/users", nil, 200, "api"},
		{"prefix by elements", "GET", "x.test", "/apis", nil, 200, "web"},
		{"exact before prefix", "GET", "x.test", "/api/v1", nil, 200, "exact"},
		{"header match", "GET", "x.test", "/anything", map[string]string{"X-Canary": "always"}, 200, "canary"},
		{"method match", "POST", "x.test", "/post", nil, 200, "api"},
		{"method mismatch", "GET", "x.test", "/post", nil, 200, "web"},
		{"the listener with the hostname", "GET", "special.test", "/api", nil, 200, "exact"},
		{"weight 0 only", "GET", "x.test", "/none", nil, 500, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := do(tt.method, tt.host, tt.path, tt.hdr)
			assert.Equal(t, tt.code, resp.StatusCode, body)
			if tt.backend != "" {
				assert.Equal(t, tt.backend, resp.Header.Get("X-Backend"), body)
			}
		})
	}

	resp, body := do("GET", "x.test", "/api/x", nil)
	assert.True(t, strings.HasSuffix(body, " 1"), "request header added: %q", body)
	assert.Empty(t, resp.Header.Get("X-Drop"), "response header removed")

	resp, _ = do("GET", "x.test", "/old/page?q=1", nil)
	assert.Equal(t, 301, resp.StatusCode)
	assert.Equal(t, "http://new.test/new/page?q=1", resp.Header.Get("Location"))

	seen := map[string]int{}
	for range 200 {
		resp, _ := do("GET", "x.test", "/split", nil)
		seen[resp.Header.Get("X-Backend")]++
	}
	assert.InDelta(t, 100, seen["web"], 40, "an even split: %v", seen)
	assert.InDelta(t, 100, seen["canary"], 40, "an even split: %v", seen)
}
