package kubelet

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"time"

	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	watchtools "k8s.io/client-go/tools/watch"
	"k8s.io/client-go/util/certificate"
	"k8s.io/klog/v2"
	kubeletcertificate "k8s.io/kubernetes/pkg/kubelet/certificate"

	"minik.dev/minik/nodeconfig"
)

// ErrNodeDeleted ends the agent of a joined node whose Node was deleted
// (`minik node delete`): it must not register again on its own.
var ErrNodeDeleted = errors.New("this node was deleted from the cluster")

// servingCertWait bounds the wait for the first serving certificate: the
// control plane approves it as soon as the Node exists.
const servingCertWait = 2 * time.Minute

// ServingCertDir is where a joined node keeps its kubelet serving
// certificates (kubelet-server-current.pem and its predecessors).
func ServingCertDir(cfg *nodeconfig.Config) string {
	return filepath.Join(cfg.DataDir, "pki")
}

// startServingCertificates gets this node's serving certificate through a
// CertificateSigningRequest for the kubelet-serving signer and keeps it
// renewed (client-go's certificate manager, as the kubelet uses); it
// returns once there is one.
func startServingCertificates(ctx context.Context, cfg *nodeconfig.Config, client kubernetes.Interface) (func() (*tls.Certificate, error), error) {
	dir := ServingCertDir(cfg)
	store, err := certificate.NewFileStore("kubelet-server", dir, dir, "", "")
	if err != nil {
		return nil, fmt.Errorf("open the serving certificate store: %w", err)
	}
	template := &x509.CertificateRequest{
		Subject:     pkix.Name{CommonName: "system:node:" + cfg.Name, Organization: []string{"system:nodes"}},
		DNSNames:    []string{cfg.Name},
		IPAddresses: []net.IP{net.ParseIP(cfg.IP)},
	}
	m, err := certificate.NewManager(&certificate.Config{
		ClientsetFn:      func(*tls.Certificate) (kubernetes.Interface, error) { return client, nil },
		Template:         template,
		SignerName:       certificatesv1.KubeletServingSignerName,
		Usages:           []certificatesv1.KeyUsage{certificatesv1.UsageDigitalSignature, certificatesv1.UsageServerAuth},
		CertificateStore: store,
		Name:             "kubelet-server",
		Ctx:              &ctx,
	})
	if err != nil {
		return nil, fmt.Errorf("create the serving certificate manager: %w", err)
	}
	m.Start()
	context.AfterFunc(ctx, m.Stop)
	wait, cancel := context.WithTimeout(ctx, servingCertWait)
	defer cancel()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for m.Current() == nil {
		select {
		case <-wait.Done():
			return nil, fmt.Errorf("no kubelet serving certificate after %s: the control plane approves a request only for this node's own name and addresses (%s, %s); see `kubectl get csr`", servingCertWait, cfg.Name, cfg.IP)
		case <-tick.C:
		}
	}
	klog.InfoS("kubelet serving certificate ready", "node", cfg.Name)
	return func() (*tls.Certificate, error) {
		if c := m.Current(); c != nil {
			return c, nil
		}
		return nil, errors.New("no kubelet serving certificate")
	}, nil
}

// rotatingClientConfig gives a joined node's API client the kubelet's own
// client certificate manager, as a kubelet with rotateCertificates runs:
// the certificate of the TLS bootstrap (a year, the controller-manager's
// default) is renewed through a CertificateSigningRequest made with itself
// once 70–90 % of its life has passed (the control plane approves a node's
// renewal of its own certificate), and the transport closes its connections
// to pick up the new one. The returned config carries no credentials of its
// own: every handshake asks the manager. The manager runs once Start is
// called; stop ends the transport's watch of it.
func rotatingClientConfig(cfg *nodeconfig.Config, rc *rest.Config, stop <-chan struct{}) (*rest.Config, certificate.Manager, error) {
	m, err := kubeletcertificate.NewKubeletClientCertificateManager(cfg.PKIDir, types.NodeName(cfg.Name), nil, nil, rc.CertFile, rc.KeyFile,
		func(*tls.Certificate) (kubernetes.Interface, error) {
			// The files behind rc are the current certificate, renewed or not.
			return kubernetes.NewForConfig(rc)
		})
	if err != nil {
		return nil, nil, fmt.Errorf("create the client certificate manager: %w", err)
	}
	if m.Current() == nil {
		return nil, nil, fmt.Errorf("no client certificate in %s: join the cluster again", cfg.PKIDir)
	}
	transport := rest.AnonymousClientConfig(rc)
	// No exit: an expired certificate shows as failed requests in the log
	// and the node NotReady, rather than a process that quits.
	if _, err := kubeletcertificate.UpdateTransport(klog.Background(), stop, transport, m, 0); err != nil {
		return nil, nil, fmt.Errorf("rotate the client certificate: %w", err)
	}
	return transport, m, nil
}

// deletionPoll is how often a joined node also asks for its Node: after
// the control plane was down a while, the watch's reconnect can back off
// for most of a minute.
const deletionPoll = 5 * time.Second

// watchDeletion returns ErrNodeDeleted once this node's Node is deleted,
// or nil when ctx ends. It watches the Node and, in case the watch is
// backing off, asks for it every deletionPoll too.
func (a *Agent) watchDeletion(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	watched := make(chan error, 1)
	go func() {
		selector := fields.OneTermEqualSelector("metadata.name", a.cfg.Name).String()
		lw := cache.NewFilteredListWatchFromClient(a.client.CoreV1().RESTClient(), "nodes", "", func(o *metav1.ListOptions) {
			o.FieldSelector = selector
		})
		_, err := watchtools.UntilWithSync(ctx, lw, &corev1.Node{}, nil, func(e watch.Event) (bool, error) {
			return e.Type == watch.Deleted, nil
		})
		watched <- err
	}()
	poll := time.NewTicker(deletionPoll)
	defer poll.Stop()
	for {
		select {
		case err := <-watched:
			if ctx.Err() != nil {
				return nil
			}
			if err != nil {
				return fmt.Errorf("watch node %s: %w", a.cfg.Name, err)
			}
			return ErrNodeDeleted
		case <-poll.C:
			_, err := a.client.CoreV1().Nodes().Get(ctx, a.cfg.Name, metav1.GetOptions{})
			if apierrors.IsNotFound(err) {
				return ErrNodeDeleted
			}
		case <-ctx.Done():
			return nil
		}
	}
}
