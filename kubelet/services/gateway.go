package services

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/klog/v2"
	gwclient "sigs.k8s.io/gateway-api/pkg/client/clientset/versioned"

	"minik.dev/minik/gateway"
)

// gatewayServer serves the Gateways of minik's classes: an HTTP or HTTPS
// server per port of each Gateway's address (which the proxy put on the
// interface, as for any LoadBalancer address), routing by the model of
// package gateway.
type gatewayServer struct {
	p  *Proxy
	in *gateway.Informers

	mu      sync.Mutex
	servers map[string]*gatewayPort // by "ip:port"
}

// gatewayPort is one listening port; its table is swapped on every change.
type gatewayPort struct {
	srv   *http.Server
	https bool
	port  atomic.Pointer[gateway.Port]
}

func newGatewayServer(ctx context.Context, p *Proxy, gw gwclient.Interface) (*gatewayServer, error) {
	changed := make(chan struct{}, 1)
	in, err := gateway.NewInformers(p.o.Client, gw, changed)
	if err != nil {
		return nil, err
	}
	s := &gatewayServer{p: p, in: in, servers: map[string]*gatewayPort{}}
	go func() {
		// The control plane installs the CRDs only once the cluster has
		// settled. Informers started before would back off exponentially
		// (up to 30 s) on the missing resources and serve the first Gateway
		// that much later.
		if !waitGatewayAPI(ctx, gw) {
			return
		}
		in.Start(ctx)
		defer in.Shutdown()
		if !in.WaitForCacheSync(ctx) {
			return
		}
		t := time.NewTicker(30 * time.Second)
		defer t.Stop()
		for {
			retry := time.Duration(1<<63 - 1)
			if !s.reconcile() {
				retry = 200 * time.Millisecond
			}
			select {
			case <-ctx.Done():
				return
			case <-changed:
			case <-t.C:
			case <-time.After(retry):
			}
		}
	}()
	return s, nil
}

// waitGatewayAPI waits until the Gateway API kinds minik serves can be
// listed; false when ctx is done first.
func waitGatewayAPI(ctx context.Context, gw gwclient.Interface) bool {
	one := metav1.ListOptions{Limit: 1}
	for {
		_, err := gw.GatewayV1().GatewayClasses().List(ctx, one)
		if err == nil {
			_, err = gw.GatewayV1().Gateways("").List(ctx, one)
		}
		if err == nil {
			_, err = gw.GatewayV1().HTTPRoutes("").List(ctx, one)
		}
		if err == nil {
			_, err = gw.GatewayV1().ReferenceGrants("").List(ctx, one)
		}
		if err == nil {
			return true
		}
		select {
		case <-ctx.Done():
			return false
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// reconcile serves what the model says; false when a port could not be
// listened on yet.
func (s *gatewayServer) reconcile() bool {
	model := gateway.Compute(s.in.Input())
	want := map[string]*gateway.Port{}
	for _, g := range model.Gateways {
		if g.Address == "" {
			continue
		}
		for _, port := range g.Ports() {
			want[net.JoinHostPort(g.Address, strconv.Itoa(int(port.Number)))] = port
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	ok := true
	for addr, gp := range s.servers {
		if w, ok := want[addr]; ok && w.HTTPS == gp.https {
			continue
		}
		_ = gp.srv.Close()
		delete(s.servers, addr)
	}
	for addr, port := range want {
		if gp, ok := s.servers[addr]; ok {
			gp.port.Store(port)
			continue
		}
		gp, err := s.listen(addr, port)
		if err != nil {
			// The address may not be on the interface yet: the next
			// change (the proxy adds it within a reconcile) retries.
			klog.V(2).InfoS("listen for gateway", "address", addr, "err", err)
			ok = false
			continue
		}
		s.servers[addr] = gp
	}
	return ok
}

func (s *gatewayServer) listen(addr string, port *gateway.Port) (*gatewayPort, error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", addr, err)
	}
	gp := &gatewayPort{https: port.HTTPS}
	gp.port.Store(port)
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gp.port.Load().Handler(s.endpoint).ServeHTTP(w, r)
	})
	gp.srv = &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second}
	if port.HTTPS {
		gp.srv.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: func(h *tls.ClientHelloInfo) (*tls.Certificate, error) {
			return gp.port.Load().Certificate(h)
		}}
		l = tls.NewListener(l, gp.srv.TLSConfig)
	}
	go func() { _ = gp.srv.Serve(l) }()
	klog.InfoS("serving gateway port", "address", addr, "https", port.HTTPS)
	return gp, nil
}

// endpoint picks a ready endpoint of a Service port, by number.
func (s *gatewayServer) endpoint(namespace, service string, port int32) (string, error) {
	svc, err := s.p.services.Services(namespace).Get(service)
	if err != nil {
		return "", fmt.Errorf("service %s/%s: %w", namespace, service, err)
	}
	for _, sp := range svc.Spec.Ports {
		if sp.Port != port {
			continue
		}
		eps := s.p.endpoints(namespace, service, sp.Name)
		if len(eps) == 0 {
			return "", fmt.Errorf("service %s/%s has no ready endpoint", namespace, service)
		}
		return eps[int(s.p.next.Add(1))%len(eps)], nil
	}
	return "", fmt.Errorf("service %s/%s has no port %d", namespace, service, port)
}

func (s *gatewayServer) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for addr, gp := range s.servers {
		_ = gp.srv.Close()
		delete(s.servers, addr)
	}
}
