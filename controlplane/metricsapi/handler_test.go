package metricsapi

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	metricsv1beta1 "k8s.io/metrics/pkg/apis/metrics/v1beta1"
)

type fakeObjects struct {
	nodes map[string]map[string]string
	pods  map[PodKey]map[string]string
}

func (f fakeObjects) NodeLabels(name string) (map[string]string, bool) {
	l, ok := f.nodes[name]
	return l, ok
}

func (f fakeObjects) PodLabels(namespace, name string) (map[string]string, bool) {
	l, ok := f.pods[PodKey{namespace, name}]
	return l, ok
}

// testHandler serves two nodes, measured over 10 s: n1 with two web pods
// (one of two containers) and a pod that no longer exists, n2 with a DNS pod.
func testHandler(t *testing.T) *Handler {
	t.Helper()
	store := NewStore()
	t1 := t0.Add(10 * time.Second)
	started := t0.Add(-time.Minute)
	c := func(ns, pod, name string, cpu float64, mem uint64) container {
		return container{ns, pod, name, cpu, mem, started}
	}
	store.record("n1", mustParse(t, exposition(t0, 100, 2<<30,
		c("default", "web-1", "main", 10, 0), c("default", "web-1", "sidecar", 1, 0),
		c("default", "web-2", "main", 10, 0), c("default", "gone", "main", 1, 0)), t0))
	store.record("n1", mustParse(t, exposition(t1, 105, 2<<30,
		c("default", "web-1", "main", 12, 64<<20), c("default", "web-1", "sidecar", 1.1, 8<<20),
		c("default", "web-2", "main", 18, 64<<20), c("default", "gone", "main", 1, 1<<20)), t1))
	store.record("n2", mustParse(t, exposition(t0, 50, 1<<30, c("kube-system", "dns", "dns", 1, 0)), t0))
	store.record("n2", mustParse(t, exposition(t1, 51, 1<<30, c("kube-system", "dns", "dns", 1.5, 16<<20)), t1))
	h := NewHandler(store, fakeObjects{
		nodes: map[string]map[string]string{"n1": {"role": "cp"}, "n2": {"role": "worker"}},
		pods: map[PodKey]map[string]string{
			{"default", "web-1"}:   {"app": "web"},
			{"default", "web-2"}:   {"app": "web"},
			{"default", "idle"}:    {"app": "idle"}, // no metrics yet
			{"kube-system", "dns"}: {"app": "dns"},
		},
	})
	h.now = func() time.Time { return t1.Add(time.Second) }
	return h
}

func get(t *testing.T, h http.Handler, path string, query url.Values) *httptest.ResponseRecorder {
	t.Helper()
	u := path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	r := httptest.NewRequest(http.MethodGet, u, nil)
	r.Header.Set("Accept", "application/json")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func decode[T any](t *testing.T, w *httptest.ResponseRecorder) T {
	t.Helper()
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	var v T
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &v), w.Body.String())
	return v
}

func names(items any) []string {
	var out []string
	switch l := items.(type) {
	case []metricsv1beta1.NodeMetrics:
		for _, m := range l {
			out = append(out, m.Name)
		}
	case []metricsv1beta1.PodMetrics:
		for _, m := range l {
			out = append(out, m.Namespace+"/"+m.Name)
		}
	}
	return out
}

func TestHandlerDiscovery(t *testing.T) {
	h := testHandler(t)
	rl := decode[metav1.APIResourceList](t, get(t, h, "/apis/metrics.k8s.io/v1beta1", nil))
	assert.Equal(t, "metrics.k8s.io/v1beta1", rl.GroupVersion)
	require.Len(t, rl.APIResources, 2)
	assert.Equal(t, metav1.APIResource{Name: "nodes", Kind: "NodeMetrics", Verbs: verbs}, rl.APIResources[0])
	assert.Equal(t, metav1.APIResource{Name: "pods", Namespaced: true, Kind: "PodMetrics", Verbs: verbs}, rl.APIResources[1])

	g := decode[metav1.APIGroup](t, get(t, h, "/apis/metrics.k8s.io", nil))
	assert.Equal(t, "metrics.k8s.io", g.Name)
	assert.Equal(t, "v1beta1", g.PreferredVersion.Version)

	d := AggregatedDiscovery()
	assert.Equal(t, "v1beta1", d.Version)
	assert.Equal(t, "NodeMetrics", d.Resources[0].ResponseKind.Kind)
	assert.Equal(t, "pods", d.Resources[1].Resource)
}

func TestHandlerNodes(t *testing.T) {
	h := testHandler(t)
	list := decode[metricsv1beta1.NodeMetricsList](t, get(t, h, "/apis/metrics.k8s.io/v1beta1/nodes", nil))
	assert.Equal(t, "NodeMetricsList", list.Kind)
	assert.Equal(t, "metrics.k8s.io/v1beta1", list.APIVersion)
	assert.Equal(t, []string{"n1", "n2"}, names(list.Items))
	n1 := list.Items[0]
	assert.Equal(t, "500m", milli(n1.Usage.Cpu()), "5 core-seconds in 10 s")
	assert.Equal(t, int64(2<<30), n1.Usage.Memory().Value())
	assert.Equal(t, 10*time.Second, n1.Window.Duration)
	assert.True(t, n1.Timestamp.Time.Equal(t0.Add(10*time.Second)))
	assert.Equal(t, map[string]string{"role": "cp"}, n1.Labels)

	list = decode[metricsv1beta1.NodeMetricsList](t, get(t, h, "/apis/metrics.k8s.io/v1beta1/nodes", url.Values{"labelSelector": {"role=worker"}}))
	assert.Equal(t, []string{"n2"}, names(list.Items))
	list = decode[metricsv1beta1.NodeMetricsList](t, get(t, h, "/apis/metrics.k8s.io/v1beta1/nodes", url.Values{"fieldSelector": {"metadata.name=n1"}}))
	assert.Equal(t, []string{"n1"}, names(list.Items))

	m := decode[metricsv1beta1.NodeMetrics](t, get(t, h, "/apis/metrics.k8s.io/v1beta1/nodes/n2", nil))
	assert.Equal(t, "NodeMetrics", m.Kind)
	assert.Equal(t, "100m", milli(m.Usage.Cpu()))

	w := get(t, h, "/apis/metrics.k8s.io/v1beta1/nodes/n3", nil)
	require.Equal(t, http.StatusNotFound, w.Code)
	var st metav1.Status
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &st))
	assert.Equal(t, metav1.StatusReasonNotFound, st.Reason)
	assert.Equal(t, `nodemetrics.metrics.k8s.io "n3" not found`, st.Message)
}

func TestHandlerPods(t *testing.T) {
	h := testHandler(t)
	list := decode[metricsv1beta1.PodMetricsList](t, get(t, h, "/apis/metrics.k8s.io/v1beta1/pods", nil))
	assert.Equal(t, []string{"default/web-1", "default/web-2", "kube-system/dns"}, names(list.Items),
		"pods without metrics or that no longer exist are left out")

	// The HPA's request: one namespace, a label selector.
	list = decode[metricsv1beta1.PodMetricsList](t, get(t, h, "/apis/metrics.k8s.io/v1beta1/namespaces/default/pods", url.Values{"labelSelector": {"app=web"}}))
	require.Equal(t, []string{"default/web-1", "default/web-2"}, names(list.Items))
	web1 := list.Items[0]
	require.Len(t, web1.Containers, 2)
	assert.Equal(t, "main", web1.Containers[0].Name)
	assert.Equal(t, "200m", milli(web1.Containers[0].Usage.Cpu()))
	assert.Equal(t, "10m", milli(web1.Containers[1].Usage.Cpu()))
	assert.Equal(t, int64(8<<20), web1.Containers[1].Usage.Memory().Value())
	assert.Equal(t, "800m", milli(list.Items[1].Containers[0].Usage.Cpu()))
	assert.Equal(t, map[string]string{"app": "web"}, web1.Labels)

	list = decode[metricsv1beta1.PodMetricsList](t, get(t, h, "/apis/metrics.k8s.io/v1beta1/namespaces/kube-system/pods", nil))
	assert.Equal(t, []string{"kube-system/dns"}, names(list.Items))
	list = decode[metricsv1beta1.PodMetricsList](t, get(t, h, "/apis/metrics.k8s.io/v1beta1/pods", url.Values{"fieldSelector": {"metadata.namespace=default,metadata.name=web-2"}}))
	assert.Equal(t, []string{"default/web-2"}, names(list.Items))
	list = decode[metricsv1beta1.PodMetricsList](t, get(t, h, "/apis/metrics.k8s.io/v1beta1/namespaces/empty/pods", nil))
	assert.NotNil(t, list.Items, "an empty list has items: []")
	assert.Empty(t, list.Items)

	m := decode[metricsv1beta1.PodMetrics](t, get(t, h, "/apis/metrics.k8s.io/v1beta1/namespaces/kube-system/pods/dns", nil))
	assert.Equal(t, "PodMetrics", m.Kind)
	assert.Equal(t, "kube-system", m.Namespace)
	assert.Equal(t, "50m", milli(m.Containers[0].Usage.Cpu()))

	for _, path := range []string{
		"/apis/metrics.k8s.io/v1beta1/namespaces/default/pods/gone",
		"/apis/metrics.k8s.io/v1beta1/namespaces/default/pods/idle",
		"/apis/metrics.k8s.io/v1beta1/namespaces/other/pods/web-1",
	} {
		assert.Equal(t, http.StatusNotFound, get(t, h, path, nil).Code, path)
	}
}

func TestHandlerBadRequests(t *testing.T) {
	h := testHandler(t)
	cases := []struct {
		name   string
		method string
		path   string
		query  url.Values
		code   int
	}{
		{"bad label selector", http.MethodGet, "/apis/metrics.k8s.io/v1beta1/pods", url.Values{"labelSelector": {"app in (("}}, http.StatusBadRequest},
		{"unsupported field", http.MethodGet, "/apis/metrics.k8s.io/v1beta1/nodes", url.Values{"fieldSelector": {"spec.unschedulable=true"}}, http.StatusBadRequest},
		{"watch", http.MethodGet, "/apis/metrics.k8s.io/v1beta1/pods", url.Values{"watch": {"true"}}, http.StatusMethodNotAllowed},
		{"create", http.MethodPost, "/apis/metrics.k8s.io/v1beta1/namespaces/default/pods", nil, http.StatusMethodNotAllowed},
		{"other version", http.MethodGet, "/apis/metrics.k8s.io/v1", nil, http.StatusNotFound},
		{"other resource", http.MethodGet, "/apis/metrics.k8s.io/v1beta1/services", nil, http.StatusNotFound},
		{"too deep", http.MethodGet, "/apis/metrics.k8s.io/v1beta1/nodes/n1/status", nil, http.StatusNotFound},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			u := tc.path
			if len(tc.query) > 0 {
				u += "?" + tc.query.Encode()
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, httptest.NewRequest(tc.method, u, nil))
			assert.Equal(t, tc.code, w.Code, w.Body.String())
			var st metav1.Status
			require.NoError(t, json.Unmarshal(w.Body.Bytes(), &st), "errors are Status objects")
			assert.Equal(t, "Status", st.Kind)
		})
	}
}

// The controller-manager asks for protobuf first.
func TestHandlerProtobuf(t *testing.T) {
	h := testHandler(t)
	r := httptest.NewRequest(http.MethodGet, "/apis/metrics.k8s.io/v1beta1/namespaces/default/pods?labelSelector=app%3Dweb", nil)
	r.Header.Set("Accept", "application/vnd.kubernetes.protobuf, application/json")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	require.Equal(t, http.StatusOK, w.Code)
	assert.Equal(t, "application/vnd.kubernetes.protobuf", w.Header().Get("Content-Type"))
	obj, _, err := codecs.UniversalDeserializer().Decode(w.Body.Bytes(), nil, nil)
	require.NoError(t, err)
	list, ok := obj.(*metricsv1beta1.PodMetricsList)
	require.True(t, ok, "%T", obj)
	assert.Equal(t, []string{"default/web-1", "default/web-2"}, names(list.Items))
}

func milli(q *resource.Quantity) string {
	return resource.NewMilliQuantity(q.MilliValue(), resource.DecimalSI).String()
}
