package kubelet

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/klog/v2"

	"minik.dev/minik/nodeconfig"
	"minik.dev/minik/pki"
)

// server is the kubelet API on the node's IP and kubelet port: TLS with a
// serving cert from the cluster CA; authentication and authorization are
// delegated to the apiserver (TokenReview, SubjectAccessReview) like the
// real kubelet's webhook mode.
type server struct {
	cfg    *nodeconfig.Config
	client kubernetes.Interface
	pods   *podManager
	now    func() time.Time
	// started is when the agent started: the node's counters begin there.
	started time.Time
	usage   nodeUsage
	metrics *agentMetrics

	mu    sync.Mutex
	authz map[string]authzEntry
}

type authzEntry struct {
	allowed bool
	expires time.Time
}

type caller struct {
	name   string
	groups []string
	uid    string
	extra  map[string]authorizationv1.ExtraValue
}

func newServer(cfg *nodeconfig.Config, client kubernetes.Interface, pods *podManager) *server {
	return &server{
		cfg: cfg, client: client, pods: pods, now: time.Now, started: time.Now(), authz: map[string]authzEntry{},
		metrics: newAgentMetrics(cfg.Name, pods.snapshot),
	}
}

// Serve listens until ctx is done.
func (s *server) Serve(ctx context.Context) error {
	p := pki.Layout(s.cfg.PKIDir)
	cert, err := tls.LoadX509KeyPair(p.KubeletServingCert(s.cfg.Name), p.KubeletServingKey(s.cfg.Name))
	if err != nil {
		return fmt.Errorf("load kubelet serving cert: %w", err)
	}
	caPEM, err := os.ReadFile(p.CACert)
	if err != nil {
		return fmt.Errorf("read cluster CA: %w", err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)

	mux := http.NewServeMux()
	handle := func(route string, h http.Handler) { mux.Handle(route, s.metrics.observe(route, h)) }
	handle("/healthz", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) }))
	handle("/containerLogs/", s.guard("proxy", http.HandlerFunc(s.containerLogs)))
	handle("/pods", s.guard("proxy", http.HandlerFunc(s.listPods)))
	handle("/metrics", s.guard("metrics", s.metrics.handler()))
	handle("/metrics/resource", s.guard("metrics", http.HandlerFunc(s.resourceMetrics)))
	handle("/stats/summary", s.guard("stats", http.HandlerFunc(s.statsSummary)))
	for _, prefix := range []string{"/exec/", "/run/", "/attach/", "/portForward/"} {
		handle(prefix, s.guard("proxy", http.HandlerFunc(s.unsupported)))
	}

	addr := net.JoinHostPort(s.cfg.IP, strconv.Itoa(s.cfg.KubeletPort))
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen for the kubelet API on %s: %w", addr, err)
	}
	srv := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		TLSConfig: &tls.Config{
			Certificates: []tls.Certificate{cert},
			ClientCAs:    pool,
			ClientAuth:   tls.VerifyClientCertIfGiven,
			MinVersion:   tls.VersionTLS12,
		},
		ErrorLog: nil,
	}
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdown)
	}()
	klog.InfoS("serving the kubelet API", "address", addr)
	if err := srv.ServeTLS(l, "", ""); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve the kubelet API: %w", err)
	}
	return nil
}

// guard authenticates the caller and asks the apiserver whether it may use
// the nodes/<subresource> of this node, as the kubelet does.
func (s *server) guard(subresource string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		who, err := s.authenticate(r)
		if err != nil {
			http.Error(w, "Unauthorized: "+err.Error(), http.StatusUnauthorized)
			return
		}
		verb := "get"
		switch r.Method {
		case http.MethodPost, http.MethodPut:
			verb = "create"
		}
		ok, err := s.authorize(r.Context(), who, verb, subresource)
		if err != nil {
			http.Error(w, "authorize: "+err.Error(), http.StatusInternalServerError)
			return
		}
		if !ok {
			http.Error(w, fmt.Sprintf("Forbidden (user=%s, verb=%s, resource=nodes, subresource=%s)", who.name, verb, subresource), http.StatusForbidden)
			return
		}
		next.ServeHTTP(w, r)
	})
}

func (s *server) authenticate(r *http.Request) (caller, error) {
	if r.TLS != nil && len(r.TLS.VerifiedChains) > 0 {
		c := r.TLS.VerifiedChains[0][0]
		return caller{name: c.Subject.CommonName, groups: append([]string{"system:authenticated"}, c.Subject.Organization...)}, nil
	}
	token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || token == "" {
		return caller{}, errors.New("no client certificate or bearer token")
	}
	review, err := s.client.AuthenticationV1().TokenReviews().Create(r.Context(), &authenticationv1.TokenReview{
		Spec: authenticationv1.TokenReviewSpec{Token: token},
	}, metav1.CreateOptions{})
	if err != nil {
		return caller{}, fmt.Errorf("review token: %w", err)
	}
	if !review.Status.Authenticated {
		return caller{}, errors.New("invalid bearer token")
	}
	u := review.Status.User
	extra := map[string]authorizationv1.ExtraValue{}
	for k, v := range u.Extra {
		extra[k] = authorizationv1.ExtraValue(v)
	}
	return caller{name: u.Username, groups: u.Groups, uid: u.UID, extra: extra}, nil
}

func (s *server) authorize(ctx context.Context, who caller, verb, subresource string) (bool, error) {
	key := who.name + "|" + strings.Join(who.groups, ",") + "|" + verb + "|" + subresource
	s.mu.Lock()
	if e, ok := s.authz[key]; ok && s.now().Before(e.expires) {
		s.mu.Unlock()
		return e.allowed, nil
	}
	s.mu.Unlock()
	sar, err := s.client.AuthorizationV1().SubjectAccessReviews().Create(ctx, &authorizationv1.SubjectAccessReview{
		Spec: authorizationv1.SubjectAccessReviewSpec{
			User: who.name, Groups: who.groups, UID: who.uid, Extra: who.extra,
			ResourceAttributes: &authorizationv1.ResourceAttributes{
				Verb: verb, Resource: "nodes", Subresource: subresource, Name: s.cfg.Name,
			},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		return false, fmt.Errorf("review access: %w", err)
	}
	ttl := time.Minute
	if !sar.Status.Allowed {
		ttl = 10 * time.Second
	}
	s.mu.Lock()
	s.authz[key] = authzEntry{allowed: sar.Status.Allowed, expires: s.now().Add(ttl)}
	s.mu.Unlock()
	return sar.Status.Allowed, nil
}

// unsupported answers exec, attach, run and port-forward at once: the sim
// runtime runs no process to connect to.
func (s *server) unsupported(w http.ResponseWriter, r *http.Request) {
	what := strings.Split(strings.TrimPrefix(r.URL.Path, "/"), "/")[0]
	http.Error(w, fmt.Sprintf("%s is not supported by the sim runtime: node %s simulates its pods and runs no process (use the docker driver for real containers)", what, s.cfg.Name), http.StatusBadRequest)
}
