package services

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	networkinglisters "k8s.io/client-go/listers/networking/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/klog/v2"
	"k8s.io/utils/ptr"

	"minik.dev/minik/nodeconfig"
)

// The Ingress controller's names (nodeconfig's, shorter).
const (
	IngressClass      = nodeconfig.IngressClass
	ingressService    = nodeconfig.IngressService
	annotationServeBy = nodeconfig.AnnotationServedBy
)

// route is one path of one host, to one Service port.
type route struct {
	host    string // "" for any, "*.example.com" for a wildcard
	path    string
	exact   bool
	backend networkingv1.IngressServiceBackend
	ingress string // namespace/name
}

// ingressTable is what the controller serves: routes, most specific
// first, default backends, and certificates by host.
type ingressTable struct {
	routes   []route
	defaults []route
	certs    map[string]*tls.Certificate
}

// ingressServer is the Ingress controller: an HTTP and HTTPS reverse proxy
// on the address of Service kube-system/ingress-minik.
type ingressServer struct {
	p         *Proxy
	client    kubernetes.Interface
	ingresses networkinglisters.IngressLister
	recorder  record.EventRecorder

	mu      sync.RWMutex
	table   ingressTable
	ip      string
	servers []*http.Server
	// reported remembers the warnings already given, so each is an event once.
	reported map[string]bool
}

func newIngressServer(p *Proxy, f informers.SharedInformerFactory) *ingressServer {
	broadcaster := record.NewBroadcaster()
	broadcaster.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: p.o.Client.CoreV1().Events("")})
	return &ingressServer{
		p: p, client: p.o.Client,
		ingresses: f.Networking().V1().Ingresses().Lister(),
		recorder:  broadcaster.NewRecorder(scheme.Scheme, corev1.EventSource{Component: "minik-ingress"}),
		reported:  map[string]bool{},
	}
}

// address is the Ingress controller's LoadBalancer address, once it has one.
func (s *ingressServer) address() string {
	svc, err := s.p.services.Services(metav1.NamespaceSystem).Get(ingressService)
	if err != nil {
		return ""
	}
	for _, in := range svc.Status.LoadBalancer.Ingress {
		if in.IP != "" {
			return in.IP
		}
	}
	return ""
}

// reconcile rebuilds the routing table and (re)starts the listeners when
// the address changed. The address is already on the interface (the proxy
// put it there); the control plane writes it into the Ingresses.
func (s *ingressServer) reconcile() {
	all, err := s.ingresses.List(labels.Everything())
	if err != nil {
		return
	}
	var served []*networkingv1.Ingress
	for _, ing := range all {
		if ptr.Deref(ing.Spec.IngressClassName, "") == IngressClass {
			served = append(served, ing)
		}
	}
	table := s.build(served)
	ip := s.address()
	s.mu.Lock()
	s.table = table
	restart := ip != s.ip
	old := s.servers
	if restart {
		s.ip, s.servers = ip, nil
	}
	s.mu.Unlock()
	if restart {
		for _, srv := range old {
			_ = srv.Close()
		}
		if ip != "" {
			s.listen(ip)
		}
	}
}

func (s *ingressServer) listen(ip string) {
	handler := http.HandlerFunc(s.serveHTTP)
	for _, port := range []string{"80", "443"} {
		l, err := net.Listen("tcp", net.JoinHostPort(ip, port))
		if err != nil {
			klog.ErrorS(err, "listen for ingress", "address", ip, "port", port)
			continue
		}
		srv := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second, ErrorLog: nil}
		if port == "443" {
			srv.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: s.certificate}
			l = tls.NewListener(l, srv.TLSConfig)
		}
		s.mu.Lock()
		s.servers = append(s.servers, srv)
		s.mu.Unlock()
		go func() { _ = srv.Serve(l) }()
	}
	klog.InfoS("serving ingresses", "address", ip)
}

func (s *ingressServer) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, srv := range s.servers {
		_ = srv.Close()
	}
	s.servers = nil
}

// certificate picks the certificate of the host the client asks for.
func (s *ingressServer) certificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	host := strings.ToLower(hello.ServerName)
	if c, ok := s.table.certs[host]; ok {
		return c, nil
	}
	if i := strings.IndexByte(host, '.'); i > 0 {
		if c, ok := s.table.certs["*"+host[i:]]; ok {
			return c, nil
		}
	}
	return nil, fmt.Errorf("no TLS certificate for host %q", hello.ServerName)
}

// build turns the served Ingresses into a routing table. When two claim
// the same host and path, the older wins and the newer gets an event.
func (s *ingressServer) build(ingresses []*networkingv1.Ingress) ingressTable {
	sort.Slice(ingresses, func(i, j int) bool {
		a, b := ingresses[i], ingresses[j]
		if !a.CreationTimestamp.Equal(&b.CreationTimestamp) {
			return a.CreationTimestamp.Before(&b.CreationTimestamp)
		}
		return a.Namespace+"/"+a.Name < b.Namespace+"/"+b.Name
	})
	t := ingressTable{certs: map[string]*tls.Certificate{}}
	owner := map[string]string{}
	for _, ing := range ingresses {
		key := ing.Namespace + "/" + ing.Name
		for _, tl := range ing.Spec.TLS {
			cert, err := s.loadCert(ing.Namespace, tl.SecretName)
			if err != nil {
				s.warn(ing, "TLSSecretInvalid", fmt.Sprintf("TLS secret %s/%s: %v; its hosts are served on HTTP only", ing.Namespace, tl.SecretName, err))
				continue
			}
			for _, h := range tl.Hosts {
				if _, ok := t.certs[strings.ToLower(h)]; !ok {
					t.certs[strings.ToLower(h)] = cert
				}
			}
		}
		if b := ing.Spec.DefaultBackend; b != nil && b.Service != nil {
			t.defaults = append(t.defaults, route{backend: *b.Service, ingress: key})
		}
		for _, rule := range ing.Spec.Rules {
			if rule.HTTP == nil {
				continue
			}
			for _, p := range rule.HTTP.Paths {
				if p.Backend.Service == nil {
					continue
				}
				path := p.Path
				if path == "" {
					path = "/"
				}
				exact := p.PathType != nil && *p.PathType == networkingv1.PathTypeExact
				id := strings.ToLower(rule.Host) + "|" + path + "|" + strconv.FormatBool(exact)
				if other, ok := owner[id]; ok && other != key {
					s.warn(ing, "HostPathConflict", fmt.Sprintf("host %q path %q is served by the older ingress %s; this rule is ignored", rule.Host, path, other))
					continue
				}
				owner[id] = key
				t.routes = append(t.routes, route{host: strings.ToLower(rule.Host), path: path, exact: exact, backend: *p.Backend.Service, ingress: key})
			}
		}
	}
	// Most specific first: exact hosts before wildcards before any host,
	// Exact before Prefix, longer paths before shorter.
	rank := func(r route) int {
		switch {
		case r.host == "":
			return 2
		case strings.HasPrefix(r.host, "*."):
			return 1
		}
		return 0
	}
	sort.SliceStable(t.routes, func(i, j int) bool {
		a, b := t.routes[i], t.routes[j]
		if rank(a) != rank(b) {
			return rank(a) < rank(b)
		}
		if a.exact != b.exact {
			return a.exact
		}
		return len(a.path) > len(b.path)
	})
	return t
}

// warn records a Warning event on an Ingress, once for each message.
func (s *ingressServer) warn(ing *networkingv1.Ingress, reason, msg string) {
	key := string(ing.UID) + "|" + reason + "|" + msg
	s.mu.Lock()
	seen := s.reported[key]
	s.reported[key] = true
	s.mu.Unlock()
	if !seen {
		s.recorder.Event(ing, corev1.EventTypeWarning, reason, msg)
	}
}

func (s *ingressServer) loadCert(namespace, name string) (*tls.Certificate, error) {
	if name == "" {
		return nil, errors.New("no secretName")
	}
	secret, err := s.client.CoreV1().Secrets(namespace).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		return nil, err
	}
	cert, err := tls.X509KeyPair(secret.Data[corev1.TLSCertKey], secret.Data[corev1.TLSPrivateKeyKey])
	if err != nil {
		return nil, fmt.Errorf("not a certificate and key: %w", err)
	}
	return &cert, nil
}

// match finds the route of a request's host and path.
func (t *ingressTable) match(host, path string) (route, bool) {
	host = strings.ToLower(host)
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	for _, r := range t.routes {
		if !hostMatches(r.host, host) {
			continue
		}
		if r.exact && path == r.path {
			return r, true
		}
		if !r.exact && prefixMatches(r.path, path) {
			return r, true
		}
	}
	if len(t.defaults) > 0 {
		return t.defaults[0], true
	}
	return route{}, false
}

func hostMatches(rule, host string) bool {
	switch {
	case rule == "":
		return true
	case strings.HasPrefix(rule, "*."):
		// A wildcard covers exactly one label.
		i := strings.IndexByte(host, '.')
		return i > 0 && host[i:] == rule[1:]
	}
	return rule == host
}

// prefixMatches is Kubernetes' Prefix: by whole path elements.
func prefixMatches(prefix, path string) bool {
	prefix = strings.TrimSuffix(prefix, "/")
	if prefix == "" {
		return true
	}
	return path == prefix || strings.HasPrefix(path, prefix+"/")
}

func (s *ingressServer) serveHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.RLock()
	rt, ok := s.table.match(r.Host, r.URL.Path)
	s.mu.RUnlock()
	if !ok {
		http.Error(w, "404 page not found: no ingress rule matches "+r.Host+r.URL.Path, http.StatusNotFound)
		return
	}
	ns, _, _ := strings.Cut(rt.ingress, "/")
	upstream, err := s.upstream(ns, rt.backend)
	if err != nil {
		http.Error(w, "503 service unavailable: "+err.Error(), http.StatusServiceUnavailable)
		return
	}
	proxy := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(&url.URL{Scheme: "http", Host: upstream})
			pr.Out.Host = pr.In.Host
			pr.SetXForwarded()
		},
		ErrorHandler: func(w http.ResponseWriter, _ *http.Request, err error) {
			http.Error(w, "502 bad gateway: "+err.Error(), http.StatusBadGateway)
		},
	}
	proxy.ServeHTTP(w, r)
}

// upstream picks a ready endpoint of the backend Service port.
func (s *ingressServer) upstream(namespace string, b networkingv1.IngressServiceBackend) (string, error) {
	svc, err := s.p.services.Services(namespace).Get(b.Name)
	if err != nil {
		return "", fmt.Errorf("service %s/%s: %w", namespace, b.Name, err)
	}
	portName, found := "", false
	for _, sp := range svc.Spec.Ports {
		if (b.Port.Name != "" && sp.Name == b.Port.Name) || (b.Port.Number != 0 && sp.Port == b.Port.Number) {
			portName, found = sp.Name, true
		}
	}
	if !found {
		return "", fmt.Errorf("service %s/%s has no port %s", namespace, b.Name, portString(b.Port))
	}
	eps := s.p.endpoints(namespace, b.Name, portName)
	if len(eps) == 0 {
		return "", fmt.Errorf("service %s/%s has no ready endpoint", namespace, b.Name)
	}
	return eps[int(s.p.next.Add(1))%len(eps)], nil
}

func portString(p networkingv1.ServiceBackendPort) string {
	if p.Name != "" {
		return p.Name
	}
	return strconv.Itoa(int(p.Number))
}

// watchIngresses registers the informers the controller reads.
func watchIngresses(f informers.SharedInformerFactory, handler cache.ResourceEventHandler) error {
	if _, err := f.Networking().V1().Ingresses().Informer().AddEventHandler(handler); err != nil {
		return fmt.Errorf("watch ingresses: %w", err)
	}
	return nil
}
