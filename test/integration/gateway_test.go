package integration

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/utils/ptr"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
	gwclient "sigs.k8s.io/gateway-api/pkg/client/clientset/versioned"
)

func gatewayClientFor(t *testing.T, kubeconfig, context string) gwclient.Interface {
	t.Helper()
	rc, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(
		&clientcmd.ClientConfigLoadingRules{ExplicitPath: kubeconfig},
		&clientcmd.ConfigOverrides{CurrentContext: context},
	).ClientConfig()
	require.NoError(t, err)
	c, err := gwclient.NewForConfig(rc)
	require.NoError(t, err)
	return c
}

func simpleGateway(name string) *gwv1.Gateway {
	return &gwv1.Gateway{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
		Spec: gwv1.GatewaySpec{GatewayClassName: "minik", Listeners: []gwv1.Listener{
			{Name: "http", Port: 80, Protocol: gwv1.HTTPProtocolType},
		}},
	}
}

func backend(name string, weight int32) gwv1.HTTPBackendRef {
	return gwv1.HTTPBackendRef{BackendRef: gwv1.BackendRef{
		BackendObjectReference: gwv1.BackendObjectReference{Name: gwv1.ObjectName(name), Port: ptr.To(gwv1.PortNumber(80))},
		Weight:                 ptr.To(weight)}}
}

func pathMatch(t gwv1.PathMatchType, v string) []gwv1.HTTPRouteMatch {
	return []gwv1.HTTPRouteMatch{{Path: &gwv1.HTTPPathMatch{Type: ptr.To(t), Value: ptr.To(v)}}}
}

// gatewayAddress waits for a Gateway to be Accepted and Programmed and
// returns its address.
func gatewayAddress(t *testing.T, ctx context.Context, gc gwclient.Interface, name string) string {
	t.Helper()
	var addr string
	eventually(t, time.Minute, "gateway "+name+" programmed", func() (bool, string) {
		g, err := gc.GatewayV1().Gateways("default").Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		if len(g.Status.Addresses) > 0 {
			addr = g.Status.Addresses[0].Value
		}
		return meta.IsStatusConditionTrue(g.Status.Conditions, "Accepted") && meta.IsStatusConditionTrue(g.Status.Conditions, "Programmed") && addr != "",
			fmt.Sprintf("%+v", g.Status)
	})
	return addr
}

// routeAccepted waits for minik's parent status of a route.
func routeAccepted(t *testing.T, ctx context.Context, gc gwclient.Interface, name string) gwv1.RouteParentStatus {
	t.Helper()
	var got gwv1.RouteParentStatus
	eventually(t, time.Minute, "httproute "+name+" accepted", func() (bool, string) {
		r, err := gc.GatewayV1().HTTPRoutes("default").Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		for _, p := range r.Status.Parents {
			if p.ControllerName == "minik.dev/gateway" {
				got = p
				return meta.IsStatusConditionTrue(p.Conditions, "Accepted") && meta.IsStatusConditionTrue(p.Conditions, "ResolvedRefs"), fmt.Sprintf("%+v", p)
			}
		}
		return false, fmt.Sprintf("%+v", r.Status)
	})
	return got
}

// TestGatewayProcess: on the process driver the CRDs, the class and the
// statuses are there as on docker, with an address nothing serves.
func TestGatewayProcess(t *testing.T) {
	h := newHarness(t)
	const profile = "gwsim"
	h.ok(3*time.Minute, "start", "-p", profile, "--driver", "process")
	gc := gatewayClientFor(t, h.kubeconfig, profile)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	eventually(t, time.Minute, "GatewayClass minik accepted", func() (bool, string) {
		c, err := gc.GatewayV1().GatewayClasses().Get(ctx, "minik", metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		return c.Spec.ControllerName == "minik.dev/gateway" && meta.IsStatusConditionTrue(c.Status.Conditions, "Accepted"), fmt.Sprintf("%+v", c.Status)
	})
	_, err := gc.GatewayV1().Gateways("default").Create(ctx, simpleGateway("site"), metav1.CreateOptions{})
	require.NoError(t, err)
	addr := gatewayAddress(t, ctx, gc, "site")
	require.True(t, strings.HasPrefix(addr, "127.255."), "a loopback address of the sim pool: %s", addr)

	c := clientFor(t, h.kubeconfig, profile)
	_, err = c.CoreV1().Services("default").Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec:       corev1.ServiceSpec{Selector: map[string]string{"app": "web"}, Ports: []corev1.ServicePort{{Port: 80}}},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	_, err = gc.GatewayV1().HTTPRoutes("default").Create(ctx, &gwv1.HTTPRoute{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: gwv1.HTTPRouteSpec{
			CommonRouteSpec: gwv1.CommonRouteSpec{ParentRefs: []gwv1.ParentReference{{Name: "site"}}},
			Rules:           []gwv1.HTTPRouteRule{{BackendRefs: []gwv1.HTTPBackendRef{backend("web", 1), backend("missing", 1)}}},
		},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	eventually(t, time.Minute, "route accepted, the missing backend reported", func() (bool, string) {
		r, err := gc.GatewayV1().HTTPRoutes("default").Get(ctx, "web", metav1.GetOptions{})
		if err != nil || len(r.Status.Parents) != 1 {
			return false, fmt.Sprint(err, r.Status)
		}
		p := r.Status.Parents[0]
		rr := meta.FindStatusCondition(p.Conditions, "ResolvedRefs")
		return meta.IsStatusConditionTrue(p.Conditions, "Accepted") && rr != nil && rr.Reason == "BackendNotFound" && string(p.ParentRef.Name) == "site",
			fmt.Sprintf("%+v", p)
	})
	eventually(t, time.Minute, "listener counts the route", func() (bool, string) {
		g, err := gc.GatewayV1().Gateways("default").Get(ctx, "site", metav1.GetOptions{})
		if err != nil || len(g.Status.Listeners) != 1 {
			return false, fmt.Sprint(err, g.Status)
		}
		return g.Status.Listeners[0].AttachedRoutes == 1, fmt.Sprintf("%+v", g.Status.Listeners)
	})
}

// TestGatewayDocker serves HTTPRoutes on a Gateway's address and checks
// them with curl and Go's client from this machine.
func TestGatewayDocker(t *testing.T) {
	requireEngine(t)
	keepNodeImages(t)
	h := newHarness(t)
	h.env = slices.DeleteFunc(h.env, func(e string) bool { return strings.HasPrefix(e, "MINIK_DRIVER=") })
	const profile = "gw"
	removeCluster(t, h, profile)
	image := buildApp(t)
	h.ok(3*time.Minute, "start", "-p", profile, "--driver", "docker")
	c := clientFor(t, h.kubeconfig, profile)
	gc := gatewayClientFor(t, h.kubeconfig, profile)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	for _, app := range []string{"web", "canary"} {
		d := appDeployment(app, image, 1)
		d.Spec.Template.Spec.Containers[0].Env[0].Value = "hello " + app
		_, err := c.AppsV1().Deployments("default").Create(ctx, d, metav1.CreateOptions{})
		require.NoError(t, err)
		_, err = c.CoreV1().Services("default").Create(ctx, &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Name: app},
			Spec: corev1.ServiceSpec{Selector: map[string]string{"app": app},
				Ports: []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromString("http")}}},
		}, metav1.CreateOptions{})
		require.NoError(t, err)
	}
	for _, app := range []string{"web", "canary"} {
		h.ok(3*time.Minute, "kubectl", "-p", profile, "--", "rollout", "status", "deployment/"+app, "--timeout=2m")
	}

	_, err := gc.GatewayV1().Gateways("default").Create(ctx, simpleGateway("site"), metav1.CreateOptions{})
	require.NoError(t, err)
	addr := gatewayAddress(t, ctx, gc, "site")
	// kubectl shows the address too.
	require.Equal(t, addr, h.ok(time.Minute, "kubectl", "-p", profile, "--", "get", "gateway", "site", "-o", "jsonpath={.status.addresses[0].value}"))

	route := &gwv1.HTTPRoute{
		ObjectMeta: metav1.ObjectMeta{Name: "site"},
		Spec: gwv1.HTTPRouteSpec{
			CommonRouteSpec: gwv1.CommonRouteSpec{ParentRefs: []gwv1.ParentReference{{Name: "site"}}},
			Hostnames:       []gwv1.Hostname{"site.example"},
			Rules: []gwv1.HTTPRouteRule{
				{Matches: pathMatch(gwv1.PathMatchPathPrefix, "/"), BackendRefs: []gwv1.HTTPBackendRef{backend("web", 1)}},
				{Matches: pathMatch(gwv1.PathMatchExact, "/exact"), BackendRefs: []gwv1.HTTPBackendRef{backend("canary", 1)}},
				{Matches: []gwv1.HTTPRouteMatch{{Headers: []gwv1.HTTPHeaderMatch{{Name: "X-Canary", Value: "yes"}}}},
					BackendRefs: []gwv1.HTTPBackendRef{backend("canary", 1)}},
				{Matches: []gwv1.HTTPRouteMatch{{QueryParams: []gwv1.HTTPQueryParamMatch{{Name: "v", Value: "2"}}}},
					BackendRefs: []gwv1.HTTPBackendRef{backend("canary", 1)}},
				{Matches: []gwv1.HTTPRouteMatch{{Method: ptr.To(gwv1.HTTPMethodPost)}}, BackendRefs: []gwv1.HTTPBackendRef{backend("canary", 1)}},
				{Matches: pathMatch(gwv1.PathMatchPathPrefix, "/split"), BackendRefs: []gwv1.HTTPBackendRef{backend("web", 80), backend("canary", 20)}},
				{Matches: pathMatch(gwv1.PathMatchPathPrefix, "/headers"),
					Filters: []gwv1.HTTPRouteFilter{
						{Type: gwv1.HTTPRouteFilterRequestHeaderModifier, RequestHeaderModifier: &gwv1.HTTPHeaderFilter{
							Set: []gwv1.HTTPHeader{{Name: "X-Test-Added", Value: "by-gateway"}}, Remove: []string{"X-Test-Gone"}}},
						{Type: gwv1.HTTPRouteFilterResponseHeaderModifier, ResponseHeaderModifier: &gwv1.HTTPHeaderFilter{
							Add: []gwv1.HTTPHeader{{Name: "X-Served-By", Value: "minik"}}}},
					},
					BackendRefs: []gwv1.HTTPBackendRef{backend("web", 1)}},
				{Matches: pathMatch(gwv1.PathMatchPathPrefix, "/old"),
					Filters: []gwv1.HTTPRouteFilter{{Type: gwv1.HTTPRouteFilterRequestRedirect, RequestRedirect: &gwv1.HTTPRequestRedirectFilter{
						Hostname: ptr.To(gwv1.PreciseHostname("new.example")), StatusCode: ptr.To(301)}}}},
			},
		},
	}
	_, err = gc.GatewayV1().HTTPRoutes("default").Create(ctx, route, metav1.CreateOptions{})
	require.NoError(t, err)
	parent := routeAccepted(t, ctx, gc, "site")
	require.Equal(t, gwv1.ObjectName("site"), parent.ParentRef.Name)
	// minik service lists the route's URLs that send to the Service.
	urls := h.ok(time.Minute, "service", "-p", profile, "canary")
	require.Contains(t, urls, "http://"+addr+"/exact (httproute site, exact path, Host: site.example)")
	require.Contains(t, urls, "http://"+addr+"/split (httproute site, Host: site.example)")
	require.NotContains(t, urls, "/old", "a rule that sends to no backend")

	client := &http.Client{Timeout: 3 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	get := func(method, path string, hdr map[string]string) (*http.Response, string, error) {
		req, err := http.NewRequestWithContext(ctx, method, "http://"+addr+path, nil)
		if err != nil {
			return nil, "", err
		}
		req.Host = "site.example"
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := client.Do(req)
		if err != nil {
			return nil, "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return resp, string(b), err
	}

	t.Run("curl reaches the route", func(t *testing.T) {
		eventually(t, time.Minute, "curl through the gateway", func() (bool, string) {
			out, err := exec.CommandContext(ctx, "curl", "-sS", "--max-time", "3", "-H", "Host: site.example", "http://"+addr+"/").CombinedOutput()
			return err == nil && strings.HasPrefix(string(out), "hello web from web-"), fmt.Sprint(string(out), err)
		})
	})

	t.Run("matches", func(t *testing.T) {
		tests := []struct {
			name, method, path string
			hdr                map[string]string
			want               string
		}{
			{"prefix", "GET", "/anything", nil, "hello web"},
			{"exact", "GET", "/exact", nil, "hello canary"},
			{"exact is not a prefix", "GET", "/exact/more", nil, "hello web"},
			{"header", "GET", "/", map[string]string{"X-Canary": "yes"}, "hello canary"},
			{"query", "GET", "/?v=2", nil, "hello canary"},
			{"method", "POST", "/", nil, "hello canary"},
		}
		for _, tt := range tests {
			resp, body, err := get(tt.method, tt.path, tt.hdr)
			require.NoError(t, err, tt.name)
			require.Equal(t, http.StatusOK, resp.StatusCode, tt.name)
			require.True(t, strings.HasPrefix(body, tt.want+" from "), "%s: %q", tt.name, body)
		}
	})

	t.Run("filters", func(t *testing.T) {
		resp, _, err := get("GET", "/headers", map[string]string{"X-Test-Gone": "1"})
		require.NoError(t, err)
		require.Equal(t, "by-gateway", resp.Header.Get("X-Echo-Added"), "the request header the gateway set reached the pod")
		require.Empty(t, resp.Header.Get("X-Echo-Gone"), "the removed request header did not")
		require.Equal(t, "minik", resp.Header.Get("X-Served-By"))

		resp, _, err = get("GET", "/old/page?x=1", nil)
		require.NoError(t, err)
		require.Equal(t, http.StatusMovedPermanently, resp.StatusCode)
		require.Equal(t, "http://new.example/old/page?x=1", resp.Header.Get("Location"))
	})

	t.Run("weights split traffic", func(t *testing.T) {
		counts := map[string]int{}
		for range 100 {
			_, body, err := get("GET", "/split", nil)
			require.NoError(t, err)
			counts[strings.SplitN(body, " from ", 2)[0]]++
		}
		require.InDelta(t, 80, counts["hello web"], 15, "%v", counts)
		require.InDelta(t, 20, counts["hello canary"], 15, "%v", counts)
	})

	t.Run("an unknown host is not routed", func(t *testing.T) {
		req, err := http.NewRequestWithContext(ctx, "GET", "http://"+addr+"/", nil)
		require.NoError(t, err)
		req.Host = "nobody.example"
		resp, err := client.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusNotFound, resp.StatusCode)
	})

	t.Run("deleting the gateway stops serving and removes its service", func(t *testing.T) {
		require.NoError(t, gc.GatewayV1().Gateways("default").Delete(ctx, "site", metav1.DeleteOptions{}))
		eventually(t, time.Minute, "the gateway's service is gone", func() (bool, string) {
			list, err := c.CoreV1().Services("default").List(ctx, metav1.ListOptions{LabelSelector: "gateway.networking.k8s.io/gateway-name=site"})
			return err == nil && len(list.Items) == 0, fmt.Sprint(err, list)
		})
		eventually(t, time.Minute, "nothing answers on the old address", func() (bool, string) {
			_, err := httpGet("http://" + addr + "/")
			return err != nil, fmt.Sprint(err)
		})
	})
}
