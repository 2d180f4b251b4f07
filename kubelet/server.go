package kubelet

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
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
	"k8s.io/cri-streaming/pkg/streaming/portforward"
	remotecommandserver "k8s.io/cri-streaming/pkg/streaming/remotecommand"
	"k8s.io/klog/v2"

	"minik.dev/minik/kubelet/runtime"
	"minik.dev/minik/nodeconfig"
	"minik.dev/minik/pki"
)

// server is the kubelet API on the node's IP and kubelet port: TLS with a
// serving cert from the cluster CA; authentication and authorization are
// delegated to the apiserver (TokenReview, SubjectAccessReview) like the
// real kubelet's webhook mode.
type server struct {
	cfg     *nodeconfig.Config
	client  kubernetes.Interface
	pods    podSource
	runtime runtime.Runtime
	// streams is the runtime's exec, attach and port-forward; nil when
	// the runtime cannot (its pods run no process).
	streams runtime.Streaming
	now     func() time.Time
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

// podSource is what the kubelet API reads of the pods a node runs.
type podSource interface {
	snapshot() []podView
	lookup(namespace, name string) (podView, bool)
}

func newServer(cfg *nodeconfig.Config, client kubernetes.Interface, pods podSource, rt runtime.Runtime) *server {
	streams, _ := rt.(runtime.Streaming)
	return &server{
		cfg: cfg, client: client, pods: pods, runtime: rt, streams: streams, now: time.Now, started: time.Now(), authz: map[string]authzEntry{},
		metrics: newAgentMetrics(cfg.Name, pods.snapshot),
	}
}

// Serve listens until ctx is done.
func (s *server) Serve(ctx context.Context, l net.Listener) error {
	defer l.Close()
	p := pki.Layout(s.cfg.PKIDir)
	tlsConfig := &tls.Config{ClientAuth: tls.VerifyClientCertIfGiven, MinVersion: tls.VersionTLS12}
	if s.cfg.Joined {
		// A node from another machine has no certificate from minik: it
		// asks the cluster for one, as the kubelet does with
		// serverTLSBootstrap, and renews it the same way.
		current, err := startServingCertificates(ctx, s.cfg, s.client)
		if err != nil {
			return err
		}
		tlsConfig.GetCertificate = func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return current() }
	} else {
		cert, err := tls.LoadX509KeyPair(p.KubeletServingCert(s.cfg.Name), p.KubeletServingKey(s.cfg.Name))
		if err != nil {
			return fmt.Errorf("load kubelet serving cert: %w", err)
		}
		tlsConfig.Certificates = []tls.Certificate{cert}
	}
	caPEM, err := os.ReadFile(p.CACert)
	if err != nil {
		return fmt.Errorf("read cluster CA: %w", err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	tlsConfig.ClientCAs = pool

	mux := http.NewServeMux()
	handle := func(route string, h http.Handler) { mux.Handle(route, s.metrics.observe(route, h)) }
	handle("/healthz", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) }))
	handle("/containerLogs/", s.guard("proxy", http.HandlerFunc(s.containerLogs)))
	handle("/pods", s.guard("proxy", http.HandlerFunc(s.listPods)))
	handle("/logs/", s.guard("log", http.HandlerFunc(s.nodeLogs)))
	handle("/metrics", s.guard("metrics", s.metrics.handler()))
	handle("/metrics/resource", s.guard("metrics", http.HandlerFunc(s.resourceMetrics)))
	handle("/metrics/cadvisor", s.guard("metrics", http.HandlerFunc(s.cadvisorMetrics)))
	handle("/metrics/probes", s.guard("metrics", http.HandlerFunc(s.probeMetrics)))
	handle("/stats/summary", s.guard("stats", http.HandlerFunc(s.statsSummary)))
	handle("/images/load", s.guard("proxy", http.HandlerFunc(s.loadImages)))
	handle("/volumes/", s.guard("proxy", http.HandlerFunc(s.removeVolume)))
	if s.streams != nil {
		handle("/exec/", s.guard("proxy", http.HandlerFunc(s.exec)))
		handle("/run/", s.guard("proxy", http.HandlerFunc(s.exec)))
		handle("/attach/", s.guard("proxy", http.HandlerFunc(s.exec)))
		handle("/portForward/", s.guard("proxy", http.HandlerFunc(s.portForward)))
	} else {
		for _, prefix := range []string{"/exec/", "/run/", "/attach/", "/portForward/"} {
			handle(prefix, s.guard("proxy", http.HandlerFunc(s.unsupported)))
		}
	}

	srv := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		TLSConfig:         tlsConfig,
		ErrorLog:          nil,
	}
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdown)
	}()
	klog.InfoS("serving the kubelet API", "address", l.Addr().String())
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

// loadImages takes a docker-save archive (POST body) into the node's
// image store, for runtimes whose node keeps its own images, and answers
// {"images": [names]}.
func (s *server) loadImages(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "POST a docker-save archive", http.StatusMethodNotAllowed)
		return
	}
	loader, ok := s.runtime.(runtime.ImageLoader)
	if !ok {
		http.Error(w, fmt.Sprintf("node %s runs %s pods, which take no images", s.cfg.Name, s.runtime.Name()), http.StatusNotImplemented)
		return
	}
	names, err := loader.LoadImage(r.Context(), r.Body)
	switch {
	case errors.Is(err, runtime.ErrNotSupported):
		http.Error(w, err.Error(), http.StatusNotImplemented)
		return
	case err != nil:
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string][]string{"images": names})
}

// removeVolume deletes a claim's volume kept on this node's own disk
// (DELETE /volumes/NAME): the control plane asks once the volume's
// PersistentVolume is deleted, since it cannot reach that disk itself.
func (s *server) removeVolume(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodDelete {
		w.Header().Set("Allow", http.MethodDelete)
		http.Error(w, "DELETE /volumes/NAME", http.StatusMethodNotAllowed)
		return
	}
	name := strings.TrimPrefix(r.URL.Path, "/volumes/")
	remover, ok := s.runtime.(runtime.ClaimVolumeRemover)
	if !ok {
		http.Error(w, fmt.Sprintf("node %s runs %s pods, which keep no volumes on the node", s.cfg.Name, s.runtime.Name()), http.StatusNotImplemented)
		return
	}
	switch err := remover.RemoveClaimVolume(r.Context(), name); {
	case errors.Is(err, runtime.ErrNotSupported):
		http.Error(w, err.Error(), http.StatusNotImplemented)
	case err != nil:
		http.Error(w, err.Error(), http.StatusBadRequest)
	default:
		w.WriteHeader(http.StatusNoContent)
	}
}

// unsupported answers at once, for every runtime without streaming, what
// it cannot do: its pods run no process to connect to.
func (s *server) unsupported(w http.ResponseWriter, r *http.Request) {
	what := strings.Split(strings.TrimPrefix(r.URL.Path, "/"), "/")[0]
	err := fmt.Errorf("%s is %w by the %s runtime: node %s runs no process for its pods (use the docker driver for real containers)",
		what, runtime.ErrNotSupported, s.runtime.Name(), s.cfg.Name)
	http.Error(w, err.Error(), http.StatusBadRequest)
}

// portForward serves /portForward/{namespace}/{pod}[/{uid}] over SPDY or
// WebSocket: each stream is joined to a port of the pod's IP.
func (s *server) portForward(w http.ResponseWriter, r *http.Request) {
	parts := strings.Split(strings.TrimPrefix(r.URL.Path, "/portForward/"), "/")
	if len(parts) < 2 || len(parts) > 3 || parts[0] == "" || parts[1] == "" {
		http.Error(w, "expected /portForward/NAMESPACE/POD", http.StatusBadRequest)
		return
	}
	view, ok := s.pods.lookup(parts[0], parts[1])
	if !ok || (len(parts) == 3 && parts[2] != "" && parts[2] != string(view.pod.UID)) {
		http.Error(w, fmt.Sprintf("pod %s/%s not found on node %s", parts[0], parts[1], s.cfg.Name), http.StatusNotFound)
		return
	}
	opts, err := portforward.NewV4Options(r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	portforward.ServePortForward(w, r, s.streams, parts[0]+"/"+parts[1], string(view.pod.UID), opts,
		4*time.Hour, remotecommandserver.DefaultStreamCreationTimeout, portforward.SupportedProtocols)
}

// exec serves /exec/{namespace}/{pod}/{container}?command=... (and /run/,
// whose command is the "cmd" parameter, and /attach/, which joins the
// container's own streams) over SPDY or WebSocket.
func (s *server) exec(w http.ResponseWriter, r *http.Request) {
	route, rest, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
	parts := strings.Split(rest, "/")
	if len(parts) == 4 { // /exec/{namespace}/{pod}/{uid}/{container}
		parts = []string{parts[0], parts[1], parts[3]}
	}
	if len(parts) != 3 || parts[0] == "" || parts[1] == "" || parts[2] == "" {
		http.Error(w, "expected /"+route+"/NAMESPACE/POD/CONTAINER", http.StatusBadRequest)
		return
	}
	cmd := r.URL.Query()["command"]
	if route == "run" {
		cmd = strings.Fields(r.URL.Query().Get("cmd"))
	}
	if len(cmd) == 0 && route != "attach" {
		http.Error(w, "no command given", http.StatusBadRequest)
		return
	}
	opts, err := remotecommandserver.NewOptions(r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if _, ok := s.pods.lookup(parts[0], parts[1]); !ok {
		http.Error(w, fmt.Sprintf("pod %s/%s not found on node %s", parts[0], parts[1], s.cfg.Name), http.StatusNotFound)
		return
	}
	if route == "attach" {
		remotecommandserver.ServeAttach(w, r, s.streams, parts[0]+"/"+parts[1], "", parts[2], opts,
			4*time.Hour, remotecommandserver.DefaultStreamCreationTimeout, remotecommandserver.SupportedStreamingProtocols)
		return
	}
	remotecommandserver.ServeExec(w, r, s.streams, parts[0]+"/"+parts[1], "", parts[2], cmd, opts,
		4*time.Hour, remotecommandserver.DefaultStreamCreationTimeout, remotecommandserver.SupportedStreamingProtocols)
}

// listenKubelet takes the node's kubelet API address. The agent does it
// before it registers: a node whose address is taken must not look Ready.
func listenKubelet(cfg *nodeconfig.Config) (net.Listener, error) {
	addr := net.JoinHostPort(cfg.IP, strconv.Itoa(cfg.KubeletPort))
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen for the kubelet API on %s: %w", addr, err)
	}
	return l, nil
}
