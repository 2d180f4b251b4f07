package metricsapi

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/klog/v2"
)

// Scrape timing.
const (
	// DefaultResolution is how often every kubelet is scraped.
	DefaultResolution = 10 * time.Second
	// warmupInterval is the next scrape's delay while some node has been
	// scraped only once: a node's CPU is a rate, so it needs a second
	// reading, and `kubectl top node` should answer seconds after start.
	warmupInterval = 2 * time.Second
	// newNodeWarmup is how long a Node whose kubelet has never answered
	// keeps the warm-up interval: a node registers before it serves.
	newNodeWarmup = time.Minute
	// maxScrapeTimeout bounds one kubelet's answer.
	maxScrapeTimeout = 5 * time.Second
	// maxResponseBytes bounds what one kubelet may send.
	maxResponseBytes   = 64 << 20
	defaultKubeletPort = 10250
)

// FetchFunc reads one node's /metrics/resource.
type FetchFunc func(ctx context.Context, node *corev1.Node) ([]byte, error)

// Scraper scrapes every node's kubelet into a Store.
type Scraper struct {
	store      *Store
	nodes      corelisters.NodeLister
	fetch      FetchFunc
	resolution time.Duration
	warmup     time.Duration
	now        func() time.Time
	// firstSeen and answered track nodes that have not answered yet.
	firstSeen map[string]time.Time
	answered  map[string]bool
}

// NewScraper scrapes the nodes nodes lists with fetch every resolution
// (DefaultResolution when zero).
func NewScraper(store *Store, nodes corelisters.NodeLister, fetch FetchFunc, resolution time.Duration) *Scraper {
	if resolution <= 0 {
		resolution = DefaultResolution
	}
	return &Scraper{store: store, nodes: nodes, fetch: fetch, resolution: resolution, warmup: warmupInterval, now: time.Now,
		firstSeen: map[string]time.Time{}, answered: map[string]bool{}}
}

// Run scrapes until ctx is done; the node lister's informer must be running.
func (s *Scraper) Run(ctx context.Context) {
	for {
		next := s.resolution
		if s.scrapeAll(ctx) {
			next = min(next, s.warmup)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(next):
		}
	}
}

// scrapeAll scrapes every node at once and records what each one said. It
// reports whether the next scrape should come soon: while the cluster has
// no node yet, a new node has not answered yet, or a node has answered only
// once, so that `kubectl top` has numbers seconds after a start.
func (s *Scraper) scrapeAll(ctx context.Context) bool {
	nodes, err := s.nodes.List(labels.Everything())
	if err != nil {
		klog.ErrorS(err, "list nodes to scrape")
		return false
	}
	keep := make(map[string]bool, len(nodes))
	answered := make([]bool, len(nodes))
	var wg sync.WaitGroup
	for i, n := range nodes {
		keep[n.Name] = true
		wg.Add(1)
		go func() {
			defer wg.Done()
			answered[i] = s.scrapeNode(ctx, n)
		}()
	}
	wg.Wait()
	s.store.retain(keep)

	now := s.now()
	soon := len(nodes) == 0 || s.store.warming()
	for i, n := range nodes {
		if _, ok := s.firstSeen[n.Name]; !ok {
			s.firstSeen[n.Name] = now
		}
		if answered[i] {
			s.answered[n.Name] = true
		}
		if !s.answered[n.Name] && now.Sub(s.firstSeen[n.Name]) < newNodeWarmup {
			soon = true
		}
	}
	for n := range s.firstSeen {
		if !keep[n] {
			delete(s.firstSeen, n)
			delete(s.answered, n)
		}
	}
	return soon
}

// scrapeNode scrapes one node and reports whether it answered.
func (s *Scraper) scrapeNode(ctx context.Context, node *corev1.Node) bool {
	ctx, cancel := context.WithTimeout(ctx, min(s.resolution, maxScrapeTimeout))
	defer cancel()
	data, err := s.fetch(ctx, node)
	scrapedAt := s.now()
	if err == nil {
		var b batch
		if b, err = parseResourceMetrics(data, scrapedAt); err == nil {
			s.store.record(node.Name, b)
			return true
		}
	}
	// Without an answer the node's numbers would only grow stale: drop them.
	s.store.fail(node.Name)
	if !errors.Is(ctx.Err(), context.Canceled) {
		klog.V(2).InfoS("scrape kubelet", "node", node.Name, "err", err)
	}
	return false
}

// KubeletFetcher reads /metrics/resource from kubelets over TLS with a
// client certificate, dialling only addresses allowed says are on this
// machine (see package egress): a node address outside it is never dialled.
type KubeletFetcher struct {
	client  *http.Client
	allowed func(net.IP) bool
}

// KubeletTLSConfig authenticates with certFile/keyFile (a client the
// kubelets authorize for nodes/metrics and nodes/proxy) and trusts kubelets
// signed by caFile.
func KubeletTLSConfig(caFile, certFile, keyFile string) (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("load kubelet client cert: %w", err)
	}
	caPEM, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("read cluster CA: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, fmt.Errorf("read cluster CA %s: no certificate", caFile)
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, RootCAs: pool, MinVersion: tls.VersionTLS12}, nil
}

// KubeletTransport talks to kubelets with tlsConfig, never through a proxy
// from the environment: kubelets are local.
func KubeletTransport(tlsConfig *tls.Config) *http.Transport {
	return &http.Transport{
		TLSClientConfig:     tlsConfig,
		DialContext:         (&net.Dialer{Timeout: maxScrapeTimeout}).DialContext,
		MaxIdleConnsPerHost: 1,
		IdleConnTimeout:     time.Minute,
		Proxy:               nil,
	}
}

// NewKubeletFetcher reads kubelets with tlsConfig (see KubeletTLSConfig).
func NewKubeletFetcher(tlsConfig *tls.Config, allowed func(net.IP) bool) *KubeletFetcher {
	return newKubeletFetcher(tlsConfig, allowed)
}

func newKubeletFetcher(tlsConfig *tls.Config, allowed func(net.IP) bool) *KubeletFetcher {
	return &KubeletFetcher{client: &http.Client{Transport: KubeletTransport(tlsConfig)}, allowed: allowed}
}

// Fetch implements FetchFunc.
func (f *KubeletFetcher) Fetch(ctx context.Context, node *corev1.Node) ([]byte, error) {
	addr, err := kubeletAddress(node)
	if err != nil {
		return nil, err
	}
	if ip := net.ParseIP(addr); ip == nil || !f.allowed(ip) {
		return nil, fmt.Errorf("scrape node %s: refusing %s: not an address on this machine", node.Name, addr)
	}
	port := int(node.Status.DaemonEndpoints.KubeletEndpoint.Port)
	if port <= 0 {
		port = defaultKubeletPort
	}
	url := "https://" + net.JoinHostPort(addr, strconv.Itoa(port)) + "/metrics/resource"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, fmt.Errorf("scrape node %s: %w", node.Name, err)
	}
	resp, err := f.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("scrape node %s: %w", node.Name, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes))
	if err != nil {
		return nil, fmt.Errorf("scrape node %s: %w", node.Name, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("scrape node %s: %s: %.200s", node.Name, resp.Status, data)
	}
	return data, nil
}

// kubeletAddress is the node's InternalIP, as the apiserver is configured
// to prefer (--kubelet-preferred-address-types=InternalIP,Hostname).
func kubeletAddress(node *corev1.Node) (string, error) {
	for _, a := range node.Status.Addresses {
		if a.Type == corev1.NodeInternalIP && a.Address != "" {
			return a.Address, nil
		}
	}
	return "", fmt.Errorf("scrape node %s: no InternalIP address", node.Name)
}
