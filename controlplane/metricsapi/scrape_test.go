package metricsapi

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
)

func node(name, ip string, port int32) *corev1.Node {
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"kubernetes.io/hostname": name}}}
	if ip != "" {
		n.Status.Addresses = []corev1.NodeAddress{{Type: corev1.NodeHostName, Address: name}, {Type: corev1.NodeInternalIP, Address: ip}}
	}
	n.Status.DaemonEndpoints.KubeletEndpoint.Port = port
	return n
}

func nodeLister(t *testing.T, nodes ...*corev1.Node) (corelisters.NodeLister, cache.Indexer) {
	t.Helper()
	idx := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{})
	for _, n := range nodes {
		require.NoError(t, idx.Add(n))
	}
	return corelisters.NewNodeLister(idx), idx
}

// fakeKubelets answers scrapes from a per-node exposition, or fails.
type fakeKubelets struct {
	mu    sync.Mutex
	text  map[string]string
	calls map[string]int
}

func (f *fakeKubelets) fetch(_ context.Context, n *corev1.Node) ([]byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls[n.Name]++
	text, ok := f.text[n.Name]
	if !ok {
		return nil, errors.New("connection refused")
	}
	return []byte(text), nil
}

func TestScraperScrapesEveryNode(t *testing.T) {
	lister, idx := nodeLister(t, node("a", "127.0.1.1", 10250), node("b", "127.0.2.1", 10250))
	started := t0.Add(-10 * time.Second)
	kubelets := &fakeKubelets{calls: map[string]int{}, text: map[string]string{
		"a": exposition(t0, 10, 1<<30, container{"default", "web", "main", 1, 1 << 20, started}),
		"b": exposition(t0, 20, 1<<30),
	}}
	store := NewStore()
	s := NewScraper(store, lister, kubelets.fetch, 0)
	assert.Equal(t, DefaultResolution, s.resolution)
	ctx := context.Background()
	assert.True(t, s.scrapeAll(ctx), "soon again: node rates need a second scrape")
	assert.Equal(t, map[string]int{"a": 1, "b": 1}, kubelets.calls)
	assert.True(t, store.warming(), "node rates need a second scrape")
	_, ok := store.Pod(PodKey{"default", "web"})
	assert.True(t, ok, "pods are rated from their start at once")

	t1 := t0.Add(2 * time.Second)
	kubelets.mu.Lock()
	kubelets.text["a"] = exposition(t1, 11, 1<<30, container{"default", "web", "main", 1.2, 1 << 20, started})
	delete(kubelets.text, "b") // b's kubelet stops
	kubelets.mu.Unlock()
	assert.False(t, s.scrapeAll(ctx), "a node that stopped answering does not hurry the scrapes")
	nodes := store.Nodes()
	assert.Equal(t, []string{"a"}, keys(nodes))
	assert.Equal(t, uint64(500_000_000), nodes["a"].CPUNanoCores)
	assert.False(t, store.warming())

	// A deleted Node is forgotten even if its kubelet still answers.
	require.NoError(t, idx.Delete(node("a", "", 0)))
	s.scrapeAll(ctx)
	assert.Empty(t, store.Nodes())
}

func TestScraperHurriesForNewNodes(t *testing.T) {
	now := t0
	lister, idx := nodeLister(t)
	kubelets := &fakeKubelets{calls: map[string]int{}, text: map[string]string{}}
	s := NewScraper(NewStore(), lister, kubelets.fetch, 0)
	s.now = func() time.Time { return now }
	ctx := context.Background()
	assert.True(t, s.scrapeAll(ctx), "no node registered yet")

	// A node registers before its kubelet serves.
	require.NoError(t, idx.Add(node("a", "127.0.1.1", 10250)))
	assert.True(t, s.scrapeAll(ctx))
	now = now.Add(newNodeWarmup)
	assert.False(t, s.scrapeAll(ctx), "a node that never answers stops hurrying the scrapes after a while")
}

func TestScraperRunUsesWarmupThenResolution(t *testing.T) {
	lister, _ := nodeLister(t, node("a", "127.0.1.1", 10250))
	var mu sync.Mutex
	var at []time.Time
	n := 0.0
	fetch := func(context.Context, *corev1.Node) ([]byte, error) {
		mu.Lock()
		defer mu.Unlock()
		now := time.Now()
		at = append(at, now)
		n++
		return []byte(exposition(now, n, 1<<20)), nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 700*time.Millisecond)
	defer cancel()
	s := NewScraper(NewStore(), lister, fetch, time.Hour)
	s.warmup = 200 * time.Millisecond
	s.Run(ctx)
	mu.Lock()
	defer mu.Unlock()
	require.Len(t, at, 2, "one scrape, a second after the warm-up interval, then none for the resolution")
	assert.InDelta(t, 0.2, at[1].Sub(at[0]).Seconds(), 0.15)
}

func TestKubeletFetcher(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/metrics/resource" {
			http.Error(w, "no", http.StatusNotFound)
			return
		}
		_, _ = w.Write([]byte("node_cpu_usage_seconds_total 1\n"))
	}))
	defer srv.Close()
	host, portStr, err := net.SplitHostPort(srv.Listener.Addr().String())
	require.NoError(t, err)
	port, _ := strconv.Atoi(portStr)
	tlsConfig := &tls.Config{RootCAs: srv.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs, MinVersion: tls.VersionTLS12}
	loopbackOnly := func(ip net.IP) bool { return ip.IsLoopback() }
	f := newKubeletFetcher(tlsConfig, loopbackOnly)
	ctx := context.Background()

	data, err := f.Fetch(ctx, node("a", host, int32(port)))
	require.NoError(t, err)
	assert.Equal(t, "node_cpu_usage_seconds_total 1\n", string(data))

	_, err = f.Fetch(ctx, node("far", "10.1.2.3", 10250))
	require.ErrorContains(t, err, "refusing 10.1.2.3: not an address on this machine")
	_, err = f.Fetch(ctx, node("nameless", "", 10250))
	require.ErrorContains(t, err, "no InternalIP")

	// An untrusted kubelet certificate is an error, not data.
	_, err = NewKubeletFetcher(&tls.Config{MinVersion: tls.VersionTLS12}, loopbackOnly).Fetch(ctx, node("a", host, int32(port)))
	require.Error(t, err)
}
