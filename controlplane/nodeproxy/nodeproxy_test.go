package nodeproxy

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
)

func node(name, ip string, port int) *corev1.Node {
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}}
	n.Status.Addresses = []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: ip}}
	n.Status.DaemonEndpoints.KubeletEndpoint.Port = int32(port)
	return n
}

func TestParse(t *testing.T) {
	cases := []struct {
		path, name, rest string
		ok               bool
	}{
		{"/api/v1/nodes/n1/proxy/metrics", "n1", "/metrics", true},
		{"/api/v1/nodes/n1/proxy/metrics/resource", "n1", "/metrics/resource", true},
		{"/api/v1/nodes/n1/proxy", "n1", "/", true},
		{"/api/v1/nodes/n1/proxy/", "n1", "/", true},
		{"/api/v1/nodes/n1", "", "", false},
		{"/api/v1/nodes/n1/status", "", "", false},
		{"/api/v1/nodes/n1/proxyx", "", "", false},
		{"/api/v1/nodes/n1:10255/proxy/metrics", "", "", false},
		{"/api/v1/namespaces/default/pods/p/proxy/x", "", "", false},
	}
	for _, tc := range cases {
		name, rest, ok := parse(tc.path)
		assert.Equal(t, tc.ok, ok, tc.path)
		assert.Equal(t, tc.name, name, tc.path)
		assert.Equal(t, tc.rest, rest, tc.path)
	}
}

func TestHandler(t *testing.T) {
	var got *http.Request
	kubelet := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r
		_, _ = io.WriteString(w, "kubelet_running_pods 3\n")
	}))
	defer kubelet.Close()
	_, portStr, _ := net.SplitHostPort(kubelet.Listener.Addr().String())
	port, _ := strconv.Atoi(portStr)

	idx := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{})
	lister := corelisters.NewNodeLister(idx)
	upstream := 0
	next := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		upstream++
		http.Error(w, "address not allowed", http.StatusBadRequest)
	})
	allowed := func(ip net.IP) bool { return ip.Equal(net.ParseIP("127.0.0.1")) || !ip.IsLoopback() }
	h := New(lister, kubelet.Client().Transport, allowed, next)

	do := func(path string) *httptest.ResponseRecorder {
		r := httptest.NewRequest(http.MethodGet, path, nil)
		r.Header.Set("Authorization", "Bearer secret")
		r.Header.Set("Impersonate-User", "someone")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w
	}

	do("/api/v1/nodes/local/proxy/metrics")
	assert.Equal(t, 1, upstream, "before the informer has the node, it goes upstream")

	require.NoError(t, idx.Add(node("local", "127.0.0.1", port)))
	require.NoError(t, idx.Add(node("remote", "192.168.1.10", 10250)))
	require.NoError(t, idx.Add(node("refused", "127.0.0.2", port)))
	w := do("/api/v1/nodes/local/proxy/metrics?x=1")
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	assert.Equal(t, "kubelet_running_pods 3\n", w.Body.String())
	require.NotNil(t, got)
	assert.Equal(t, "/metrics", got.URL.Path)
	assert.Equal(t, "x=1", got.URL.RawQuery)
	assert.Empty(t, got.Header.Get("Authorization"), "the caller's token is not passed on")
	assert.Empty(t, got.Header.Get("Impersonate-User"))

	for _, path := range []string{
		"/api/v1/nodes/remote/proxy/metrics",  // global unicast: upstream proxies it
		"/api/v1/nodes/refused/proxy/metrics", // not allowed by the egress rule
		"/api/v1/nodes/missing/proxy/metrics",
		"/api/v1/nodes/local",
	} {
		before := upstream
		do(path)
		assert.Equal(t, before+1, upstream, path)
	}

	kubelet.Close()
	w = do("/api/v1/nodes/local/proxy/metrics")
	assert.Equal(t, http.StatusBadGateway, w.Code)
	assert.Contains(t, w.Body.String(), "proxy to node local")
}
