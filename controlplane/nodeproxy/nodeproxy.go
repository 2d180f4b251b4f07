// Package nodeproxy serves the node proxy subresource
// (/api/v1/nodes/NAME/proxy/PATH) for nodes whose address is loopback, as
// every node of the process driver is (127.0.N.1). The upstream apiserver
// refuses to proxy to any address that is not global unicast ("address not
// allowed"), which would leave `kubectl get --raw
// /api/v1/nodes/NODE/proxy/metrics` unusable on a laptop cluster. Requests
// for other nodes go on to the upstream handler untouched.
package nodeproxy

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/klog/v2"
)

const (
	prefix             = "/api/v1/nodes/"
	defaultKubeletPort = 10250
)

// Handler is the filter. It must sit inside the apiserver's authentication
// and authorization filters: by the time a request reaches it, the caller
// may use nodes/proxy of that node.
type Handler struct {
	nodes     corelisters.NodeLister
	transport http.RoundTripper
	allowed   func(net.IP) bool
	next      http.Handler
}

// New proxies loopback nodes' kubelets with transport (which authenticates
// as the apiserver's kubelet client, as the upstream node proxy does),
// dialling only addresses allowed says are on this machine. A node the
// lister does not know (yet) goes to next.
func New(nodes corelisters.NodeLister, transport http.RoundTripper, allowed func(net.IP) bool, next http.Handler) *Handler {
	return &Handler{nodes: nodes, transport: transport, allowed: allowed, next: next}
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	name, rest, ok := parse(r.URL.Path)
	if !ok {
		h.next.ServeHTTP(w, r)
		return
	}
	node, err := h.nodes.Get(name)
	if err != nil {
		h.next.ServeHTTP(w, r)
		return
	}
	ip, port := kubeletEndpoint(node)
	if ip == nil || !ip.IsLoopback() || !h.allowed(ip) {
		h.next.ServeHTTP(w, r)
		return
	}
	target := net.JoinHostPort(ip.String(), strconv.Itoa(port))
	proxy := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.Out.URL.Scheme = "https"
			pr.Out.URL.Host = target
			pr.Out.URL.Path = rest
			pr.Out.URL.RawPath = ""
			pr.Out.Host = target
			// The kubelet authenticates the apiserver's client certificate;
			// the caller's own credentials stay here.
			pr.Out.Header.Del("Authorization")
			for k := range pr.Out.Header {
				if strings.HasPrefix(k, "Impersonate-") || strings.HasPrefix(k, "X-Remote-") {
					pr.Out.Header.Del(k)
				}
			}
		},
		Transport:     h.transport,
		FlushInterval: -1, // stream followed logs and watches as they come
		ErrorHandler: func(w http.ResponseWriter, _ *http.Request, err error) {
			klog.V(2).InfoS("proxy to node", "node", name, "err", err)
			http.Error(w, fmt.Sprintf("proxy to node %s: %v", name, err), http.StatusBadGateway)
		},
	}
	proxy.ServeHTTP(w, r)
}

// parse splits /api/v1/nodes/NAME/proxy[/PATH]; a NAME with a scheme or
// port (NAME:PORT) is left to the upstream proxy.
func parse(path string) (name, rest string, ok bool) {
	tail, ok := strings.CutPrefix(path, prefix)
	if !ok {
		return "", "", false
	}
	name, sub, _ := strings.Cut(tail, "/")
	if name == "" || strings.Contains(name, ":") {
		return "", "", false
	}
	rest, ok = strings.CutPrefix(sub, "proxy")
	if !ok || (rest != "" && !strings.HasPrefix(rest, "/")) {
		return "", "", false
	}
	if rest == "" {
		rest = "/"
	}
	return name, rest, true
}

// kubeletEndpoint is the node's InternalIP and kubelet port, the address
// the apiserver is configured to prefer.
func kubeletEndpoint(node *corev1.Node) (net.IP, int) {
	port := int(node.Status.DaemonEndpoints.KubeletEndpoint.Port)
	if port <= 0 {
		port = defaultKubeletPort
	}
	for _, a := range node.Status.Addresses {
		if a.Type == corev1.NodeInternalIP {
			return net.ParseIP(a.Address), port
		}
	}
	return nil, port
}
