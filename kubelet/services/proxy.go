// Package services makes Service ClusterIPs, LoadBalancer addresses,
// NodePorts and cluster DNS work on the docker runtime without kube-proxy,
// iptables or a privileged container: the control-plane node (which has
// NET_ADMIN only) puts every ClusterIP and LoadBalancer address on its own
// interface, so that it answers for them on the cluster network, proxies
// each Service port, TCP and UDP (and NodePort, on its own IP), to a ready
// endpoint in user space, and answers DNS for *.svc.<domain> on the
// cluster DNS IP.
package services

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	discoverylisters "k8s.io/client-go/listers/discovery/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"
	gwclient "sigs.k8s.io/gateway-api/pkg/client/clientset/versioned"

	"minik.dev/minik/kubelet/relay"
)

// Options configure the proxy.
type Options struct {
	Client kubernetes.Interface
	// NodeIP names the interface ClusterIPs are added to.
	NodeIP string
	// DNSIP is the cluster DNS Service's ClusterIP; Domain its zone.
	DNSIP  string
	Domain string
	// Upstream answers names outside the cluster (the engine's DNS).
	Upstream string
	// NodeName is this node's name: NodePorts of Services with
	// externalTrafficPolicy Local reach only its endpoints.
	NodeName string
	// NodePortsOnly is a worker's mode: it answers only on its own
	// NodePorts (the control-plane node does the rest).
	NodePortsOnly bool
	// Gateway, when set, serves the Gateway API's Gateways of a minik
	// class (the CRDs may appear later than the proxy starts).
	Gateway gwclient.Interface
}

// dialTimeout bounds a connection to one endpoint.
const dialTimeout = 5 * time.Second

// Proxy serves ClusterIPs and cluster DNS.
type Proxy struct {
	o         Options
	link      int
	services  corelisters.ServiceLister
	slices    discoverylisters.EndpointSliceLister
	informers informers.SharedInformerFactory

	mu        sync.Mutex
	listeners map[string]*listener // by "tcp|udp ip:port"
	addrs     map[string]bool      // ClusterIPs on the interface
	next      atomic.Uint64        // round-robin over endpoints
	// affinity remembers the endpoint of each client of a Service with
	// sessionAffinity ClientIP.
	affinity map[string]affinityEntry
}

type affinityEntry struct {
	endpoint string
	expires  time.Time
}

// listener proxies one Service port of one protocol.
type listener struct {
	closer    io.Closer
	udp       bool
	namespace string
	service   string
	portName  string
	// local: only this node's endpoints (a NodePort of a Service with
	// externalTrafficPolicy Local).
	local bool
	// health: the Service's healthCheckNodePort, which says whether this
	// node has local endpoints.
	health bool
}

// same says whether two listeners proxy the same Service port.
func (l *listener) same(o *listener) bool {
	return l.udp == o.udp && l.namespace == o.namespace && l.service == o.service && l.portName == o.portName &&
		l.local == o.local && l.health == o.health
}

// Run serves until ctx is done.
func Run(ctx context.Context, o Options) error {
	link, err := linkOf(o.NodeIP)
	if err != nil {
		return err
	}
	f := informers.NewSharedInformerFactory(o.Client, 0)
	p := &Proxy{
		o: o, link: link, informers: f,
		services:  f.Core().V1().Services().Lister(),
		slices:    f.Discovery().V1().EndpointSlices().Lister(),
		listeners: map[string]*listener{},
		addrs:     map[string]bool{},
		affinity:  map[string]affinityEntry{},
	}
	changed := make(chan struct{}, 1)
	poke := func(any) {
		select {
		case changed <- struct{}{}:
		default:
		}
	}
	handler := cache.ResourceEventHandlerFuncs{AddFunc: poke, UpdateFunc: func(_, o any) { poke(o) }, DeleteFunc: poke}
	if _, err := f.Core().V1().Services().Informer().AddEventHandler(handler); err != nil {
		return fmt.Errorf("watch services: %w", err)
	}
	f.Discovery().V1().EndpointSlices().Informer()
	if o.NodePortsOnly {
		f.Start(ctx.Done())
		defer f.Shutdown()
		for _, synced := range f.WaitForCacheSync(ctx.Done()) {
			if !synced {
				return ctx.Err()
			}
		}
		defer p.closeAll()
		return p.loop(ctx, changed, func() {})
	}
	if err := watchIngresses(f, handler); err != nil {
		return err
	}
	ingress := newIngressServer(p, f)
	f.Start(ctx.Done())
	defer f.Shutdown()
	if err := p.ensureDNSService(ctx); err != nil {
		klog.ErrorS(err, "create the cluster DNS service")
	}
	defer ingress.close()
	for _, synced := range f.WaitForCacheSync(ctx.Done()) {
		if !synced {
			return ctx.Err()
		}
	}
	defer p.closeAll()
	if o.Gateway != nil {
		gws, err := newGatewayServer(ctx, p, o.Gateway)
		if err != nil {
			return err
		}
		defer gws.close()
	}
	dns := &dnsServer{proxy: p}
	go dns.serve(ctx)
	return p.loop(ctx, changed, ingress.reconcile)
}

// loop reconciles on every change, and every 30 seconds, until ctx is done.
func (p *Proxy) loop(ctx context.Context, changed <-chan struct{}, also func()) error {
	t := time.NewTicker(30 * time.Second)
	defer t.Stop()
	for {
		p.reconcile()
		also()
		select {
		case <-ctx.Done():
			return nil
		case <-changed:
		case <-t.C:
		}
	}
}

// ensureDNSService creates kube-system/kube-dns on the cluster DNS IP: the
// proxy itself answers there.
func (p *Proxy) ensureDNSService(ctx context.Context) error {
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "kube-dns", Namespace: metav1.NamespaceSystem,
			Labels: map[string]string{"k8s-app": "kube-dns", "kubernetes.io/name": "minik-dns"}},
		Spec: corev1.ServiceSpec{
			ClusterIP: p.o.DNSIP,
			Ports: []corev1.ServicePort{
				{Name: "dns", Port: 53, Protocol: corev1.ProtocolUDP},
				{Name: "dns-tcp", Port: 53, Protocol: corev1.ProtocolTCP},
			},
		},
	}
	services := p.o.Client.CoreV1().Services(metav1.NamespaceSystem)
	for {
		// Look first: on a restart, a create would be refused for its
		// address ("already allocated") before its name, and never succeed.
		_, err := services.Get(ctx, svc.Name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			_, err = services.Create(ctx, svc, metav1.CreateOptions{})
		}
		if err == nil || apierrors.IsAlreadyExists(err) {
			return nil
		}
		// Right after start the namespace may not exist yet.
		select {
		case <-ctx.Done():
			return err
		case <-time.After(time.Second):
		}
	}
}

// reconcile makes the interface's addresses and the listeners match the
// Services that exist.
func (p *Proxy) reconcile() {
	svcs, err := p.services.List(labels.Everything())
	if err != nil {
		return
	}
	want := map[string]*listener{}
	ips := map[string]bool{}
	if !p.o.NodePortsOnly {
		ips[p.o.DNSIP] = true
	}
	for _, s := range svcs {
		ip := s.Spec.ClusterIP
		if ip == "" || ip == corev1.ClusterIPNone || net.ParseIP(ip) == nil {
			continue
		}
		if !p.o.NodePortsOnly {
			ips[ip] = true
		}
		if ip == p.o.DNSIP {
			continue // answered by the DNS server
		}
		// A LoadBalancer's addresses are on the cluster network too.
		var lbIPs []string
		if s.Spec.Type == corev1.ServiceTypeLoadBalancer && !p.o.NodePortsOnly {
			for _, in := range s.Status.LoadBalancer.Ingress {
				if ip := net.ParseIP(in.IP); ip != nil && !ip.IsLoopback() {
					ips[in.IP] = true
					lbIPs = append(lbIPs, in.IP)
				}
			}
		}
		// The Ingress and Gateway controllers answer on their own
		// Services' ports.
		if s.Annotations[annotationServeBy] != "" {
			continue
		}
		local := s.Spec.ExternalTrafficPolicy == corev1.ServiceExternalTrafficPolicyLocal
		if local && s.Spec.HealthCheckNodePort != 0 {
			want["tcp "+net.JoinHostPort(p.o.NodeIP, strconv.Itoa(int(s.Spec.HealthCheckNodePort)))] = &listener{
				namespace: s.Namespace, service: s.Name, health: true}
		}
		for _, sp := range s.Spec.Ports {
			var proto string
			switch sp.Protocol {
			case "", corev1.ProtocolTCP:
				proto = "tcp"
			case corev1.ProtocolUDP:
				proto = "udp"
			default:
				continue
			}
			add := func(ip string, port int32, local bool) {
				want[proto+" "+net.JoinHostPort(ip, strconv.Itoa(int(port)))] = &listener{
					udp: proto == "udp", namespace: s.Namespace, service: s.Name, portName: sp.Name, local: local}
			}
			if !p.o.NodePortsOnly {
				add(ip, sp.Port, false)
				for _, lb := range lbIPs {
					add(lb, sp.Port, false)
				}
			}
			// A NodePort answers on every node's IP, which the host and
			// every pod reach on the cluster network; with
			// externalTrafficPolicy Local, only to this node's endpoints.
			if sp.NodePort != 0 {
				add(p.o.NodeIP, sp.NodePort, local)
			}
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for ip := range ips {
		if p.addrs[ip] {
			continue
		}
		if err := addAddress(p.link, ip); err != nil {
			klog.ErrorS(err, "add service IP", "ip", ip)
			continue
		}
		p.addrs[ip] = true
	}
	for key, l := range p.listeners {
		if w, ok := want[key]; ok && w.same(l) {
			continue
		}
		l.closer.Close()
		delete(p.listeners, key)
	}
	for key, w := range want {
		if _, ok := p.listeners[key]; ok {
			continue
		}
		proto, addr, _ := strings.Cut(key, " ")
		if err := p.listen(proto, addr, w); err != nil {
			klog.ErrorS(err, "listen for service", "service", w.namespace+"/"+w.service, "address", key)
			continue
		}
		p.listeners[key] = w
	}
	for ip := range p.addrs {
		if ips[ip] {
			continue
		}
		if err := deleteAddress(p.link, ip); err != nil {
			klog.ErrorS(err, "remove service IP", "ip", ip)
			continue
		}
		delete(p.addrs, ip)
	}
}

func (p *Proxy) closeAll() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for key, l := range p.listeners {
		l.closer.Close()
		delete(p.listeners, key)
	}
	for ip := range p.addrs {
		_ = deleteAddress(p.link, ip)
		delete(p.addrs, ip)
	}
}

// listen starts proxying a Service port on addr.
func (p *Proxy) listen(proto, addr string, w *listener) error {
	if proto == "udp" {
		pc, err := net.ListenPacket("udp", addr)
		if err != nil {
			return err
		}
		w.closer = pc
		go relay.UDP(pc, func(client net.Addr) (net.Conn, error) { return p.dialUDP(w, client) })
		return nil
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	if w.health {
		srv := &http.Server{Handler: p.healthHandler(w), ReadHeaderTimeout: 5 * time.Second}
		w.closer = srv
		go func() { _ = srv.Serve(l) }()
		return nil
	}
	w.closer = l
	go relay.TCP(l, func(client net.Addr) (net.Conn, error) { return p.dialTCP(w, client) })
	return nil
}

// healthHandler answers a Service's healthCheckNodePort as kube-proxy
// does: 200 when this node has a ready endpoint of the Service, else 503,
// so a load balancer sends traffic only to nodes that keep it local.
func (p *Proxy) healthHandler(l *listener) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		n := len(p.endpointsOn(l.namespace, l.service, "", p.o.NodeName, true))
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		if n == 0 {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		fmt.Fprintf(w, `{"service":{"namespace":%q,"name":%q},"localEndpoints":%d,"serviceProxyHealthy":true}`+"\n", l.namespace, l.service, n)
	})
}

// dialTCP opens a connection to a ready endpoint of the Service port;
// with none, the client's connection is closed at once, as with a REJECT.
func (p *Proxy) dialTCP(l *listener, client net.Addr) (net.Conn, error) {
	node := ""
	if l.local {
		node = p.o.NodeName
	}
	eps := p.endpointsOn(l.namespace, l.service, l.portName, node, false)
	err := errNoEndpoint
	for _, ep := range p.order(l, client, eps) {
		var upstream net.Conn
		if upstream, err = net.DialTimeout("tcp", ep, dialTimeout); err == nil {
			p.remember(l, client, ep)
			return upstream, nil
		}
	}
	return nil, err
}

// order is the endpoints to try for a client: round-robin, but with
// sessionAffinity ClientIP the client's endpoint first while it lasts.
func (p *Proxy) order(l *listener, client net.Addr, eps []string) []string {
	start := int(p.next.Add(1))
	out := make([]string, 0, len(eps))
	if k, _, ok := p.affinityKey(l, client); ok {
		p.mu.Lock()
		e, found := p.affinity[k]
		p.mu.Unlock()
		if found && time.Now().Before(e.expires) && slices.Contains(eps, e.endpoint) {
			out = append(out, e.endpoint)
		}
	}
	for i := range eps {
		if ep := eps[(start+i)%len(eps)]; len(out) == 0 || ep != out[0] {
			out = append(out, ep)
		}
	}
	return out
}

// remember records the endpoint a client of a Service with affinity got.
func (p *Proxy) remember(l *listener, client net.Addr, endpoint string) {
	if k, timeout, ok := p.affinityKey(l, client); ok {
		now := time.Now()
		p.mu.Lock()
		defer p.mu.Unlock()
		if len(p.affinity) > 10000 {
			for k, e := range p.affinity {
				if now.After(e.expires) {
					delete(p.affinity, k)
				}
			}
		}
		p.affinity[k] = affinityEntry{endpoint: endpoint, expires: now.Add(timeout)}
	}
}

// affinityKey is the client's key and the timeout, when the listener's
// Service has sessionAffinity ClientIP.
func (p *Proxy) affinityKey(l *listener, client net.Addr) (string, time.Duration, bool) {
	svc, err := p.services.Services(l.namespace).Get(l.service)
	if err != nil || svc.Spec.SessionAffinity != corev1.ServiceAffinityClientIP || client == nil {
		return "", 0, false
	}
	timeout := 10800 * time.Second
	if c := svc.Spec.SessionAffinityConfig; c != nil && c.ClientIP != nil && c.ClientIP.TimeoutSeconds != nil {
		timeout = time.Duration(*c.ClientIP.TimeoutSeconds) * time.Second
	}
	host, _, err := net.SplitHostPort(client.String())
	if err != nil {
		return "", 0, false
	}
	return l.namespace + "/" + l.service + "/" + l.portName + "/" + host, timeout, true
}

// endpoints are the ready addresses of a Service port, "ip:port".
func (p *Proxy) endpoints(namespace, service, portName string) []string {
	return p.endpointsOn(namespace, service, portName, "", false)
}

// endpointsOn are the ready addresses of a Service port on node (any node
// when ""); anyPort counts endpoints whatever their ports.
func (p *Proxy) endpointsOn(namespace, service, portName, node string, anyPort bool) []string {
	sel := labels.SelectorFromSet(labels.Set{discoveryv1.LabelServiceName: service})
	slices, err := p.slices.EndpointSlices(namespace).List(sel)
	if err != nil {
		return nil
	}
	var out []string
	for _, s := range slices {
		if s.AddressType != discoveryv1.AddressTypeIPv4 {
			continue
		}
		port := int32(-1)
		for _, sp := range s.Ports {
			if sp.Port != nil && ptrString(sp.Name) == portName {
				port = *sp.Port
			}
		}
		if port < 0 && !anyPort {
			continue
		}
		for _, ep := range s.Endpoints {
			if ep.Conditions.Ready != nil && !*ep.Conditions.Ready {
				continue
			}
			if node != "" && (ep.NodeName == nil || *ep.NodeName != node) {
				continue
			}
			for _, a := range ep.Addresses {
				out = append(out, net.JoinHostPort(a, strconv.Itoa(int(port))))
			}
		}
	}
	return out
}

// serviceIPs answers a cluster name: the ClusterIP, or for a headless
// Service its ready endpoints' addresses.
func (p *Proxy) serviceIPs(namespace, name string) ([]net.IP, bool) {
	s, err := p.services.Services(namespace).Get(name)
	if err != nil {
		return nil, false
	}
	if s.Spec.ClusterIP != corev1.ClusterIPNone {
		ip := net.ParseIP(s.Spec.ClusterIP)
		if ip == nil {
			return nil, true
		}
		return []net.IP{ip}, true
	}
	sel := labels.SelectorFromSet(labels.Set{discoveryv1.LabelServiceName: name})
	slices, _ := p.slices.EndpointSlices(namespace).List(sel)
	var out []net.IP
	for _, sl := range slices {
		for _, ep := range sl.Endpoints {
			if ep.Conditions.Ready != nil && !*ep.Conditions.Ready {
				continue
			}
			for _, a := range ep.Addresses {
				if ip := net.ParseIP(a); ip != nil {
					out = append(out, ip)
				}
			}
		}
	}
	return out, true
}

func ptrString(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// linkOf is the index of the interface that holds ip.
func linkOf(ip string) (int, error) {
	want := net.ParseIP(ip)
	ifs, err := net.Interfaces()
	if err != nil {
		return 0, fmt.Errorf("list interfaces: %w", err)
	}
	for _, ifc := range ifs {
		addrs, _ := ifc.Addrs()
		for _, a := range addrs {
			if n, ok := a.(*net.IPNet); ok && n.IP.Equal(want) {
				return ifc.Index, nil
			}
		}
	}
	return 0, errors.New("find the interface of node IP " + ip)
}
