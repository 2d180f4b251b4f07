package controlplane

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"reflect"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	genericapiserver "k8s.io/apiserver/pkg/server"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/metadata/metadatainformer"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/klog/v2"
	apiregistrationv1 "k8s.io/kube-aggregator/pkg/apis/apiregistration/v1"
	aggregatorclient "k8s.io/kube-aggregator/pkg/client/clientset_generated/clientset"

	"minik.dev/minik/controlplane/metricsapi"
	"minik.dev/minik/controlplane/nodeproxy"
	"minik.dev/minik/nodeconfig"
	"minik.dev/minik/pki"
)

// metricsReaderRole lets whoever may view, edit or admin a namespace read
// its metrics, as metrics-server's manifest does.
const metricsReaderRole = "system:aggregated-metrics-reader"

// metricsAPI is metrics.k8s.io served by the apiserver itself: a handler
// on the kube-apiserver's mux, behind the aggregator's authentication and
// authorization, fed by scraping every kubelet. No Service, no pod, no
// proxying: the APIService is local, so it is Available whenever the
// apiserver is, whatever state the kubelets are in.
type metricsAPI struct {
	cfg        *nodeconfig.Config
	store      *metricsapi.Store
	handler    *metricsapi.Handler
	fetcher    *metricsapi.KubeletFetcher
	kubeletTLS *tls.Config
	allowed    func(net.IP) bool
	client     kubernetes.Interface
	restConfig *rest.Config
	informers  informers.SharedInformerFactory
	metadata   metadatainformer.SharedInformerFactory
}

// newMetricsAPI prepares the API; allowed says which addresses the scraper
// may dial (the egress proxy's rule).
func newMetricsAPI(cfg *nodeconfig.Config, allowed func(net.IP) bool) (*metricsAPI, error) {
	rc, err := clientcmd.BuildConfigFromFlags("", cfg.ControlPlane.AdminKubeconfig)
	if err != nil {
		return nil, fmt.Errorf("load admin kubeconfig: %w", err)
	}
	rc.UserAgent = "minik-metrics"
	client, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return nil, fmt.Errorf("create metrics client: %w", err)
	}
	meta, err := metadata.NewForConfig(rc)
	if err != nil {
		return nil, fmt.Errorf("create metrics metadata client: %w", err)
	}
	p := pki.Layout(cfg.PKIDir)
	kubeletTLS, err := metricsapi.KubeletTLSConfig(p.CACert, p.APIServerKubeletClientCert, p.APIServerKubeletClientKey)
	if err != nil {
		return nil, err
	}
	m := &metricsAPI{
		cfg:        cfg,
		store:      metricsapi.NewStore(),
		fetcher:    metricsapi.NewKubeletFetcher(kubeletTLS, allowed),
		kubeletTLS: kubeletTLS,
		allowed:    allowed,
		client:     client,
		restConfig: rc,
		informers:  informers.NewSharedInformerFactory(client, 0),
		metadata:   metadatainformer.NewSharedInformerFactory(meta, 0),
	}
	m.handler = metricsapi.NewHandler(m.store, metricsapi.ListerObjects{
		Nodes: m.informers.Core().V1().Nodes().Lister(),
		Pods:  m.metadata.ForResource(corev1.SchemeGroupVersion.WithResource("pods")).Lister(),
	})
	return m, nil
}

// install mounts the handler on the kube-apiserver's mux, where the
// aggregator delegates a local APIService's requests, and lists the group
// in aggregated discovery (what kubectl reads): the aggregator's discovery
// manager skips local APIServices, whose servers must list themselves.
func (m *metricsAPI) install(kube *genericapiserver.GenericAPIServer) {
	kube.Handler.NonGoRestfulMux.Handle(metricsapi.PathPrefix, m.handler)
	kube.Handler.NonGoRestfulMux.HandlePrefix(metricsapi.PathPrefix+"/", m.handler)
	if d := kube.AggregatedDiscoveryGroupManager; d != nil {
		d.AddGroupVersion(metricsapi.GroupName, metricsapi.AggregatedDiscovery())
		d.SetGroupVersionPriority(metav1.GroupVersion{Group: metricsapi.GroupName, Version: metricsapi.Version},
			metricsapi.GroupPriorityMinimum, metricsapi.VersionPriority)
	}
}

// nodeProxy wraps the apiserver's innermost handler, inside its
// authentication and authorization filters, with the node proxy for
// loopback nodes (see package nodeproxy).
func (m *metricsAPI) nodeProxy(next http.Handler) http.Handler {
	return nodeproxy.New(m.informers.Core().V1().Nodes().Lister(), metricsapi.KubeletTransport(m.kubeletTLS), m.allowed, next)
}

// run registers the APIService and scrapes until ctx is done; the
// apiserver must be ready.
func (m *metricsAPI) run(ctx context.Context) {
	m.informers.Core().V1().Nodes().Informer()
	pods := m.metadata.ForResource(corev1.SchemeGroupVersion.WithResource("pods")).Informer()
	m.informers.Start(ctx.Done())
	m.metadata.Start(ctx.Done())
	defer m.informers.Shutdown()
	defer m.metadata.Shutdown()
	if err := m.register(ctx); err != nil {
		klog.ErrorS(err, "register metrics.k8s.io")
	}
	if !cache.WaitForCacheSync(ctx.Done(), m.informers.Core().V1().Nodes().Informer().HasSynced, pods.HasSynced) {
		return
	}
	resolution := time.Duration(m.cfg.ControlPlane.MetricsResolution()) * time.Second
	klog.InfoS("serving metrics.k8s.io", "resolution", resolution)
	metricsapi.NewScraper(m.store, m.informers.Core().V1().Nodes().Lister(), m.fetcher.Fetch, resolution).Run(ctx)
}

// register creates the local APIService and the reader role, retrying
// while the apiserver finishes starting.
func (m *metricsAPI) register(ctx context.Context) error {
	agg, err := aggregatorclient.NewForConfig(m.restConfig)
	if err != nil {
		return fmt.Errorf("create apiregistration client: %w", err)
	}
	want := &apiregistrationv1.APIService{
		ObjectMeta: metav1.ObjectMeta{
			Name:   metricsapi.APIServiceName,
			Labels: map[string]string{"app.kubernetes.io/managed-by": "minik"},
		},
		Spec: apiregistrationv1.APIServiceSpec{
			Group:                metricsapi.GroupName,
			Version:              metricsapi.Version,
			GroupPriorityMinimum: metricsapi.GroupPriorityMinimum,
			VersionPriority:      metricsapi.VersionPriority,
		},
	}
	role := &rbacv1.ClusterRole{
		ObjectMeta: metav1.ObjectMeta{
			Name: metricsReaderRole,
			Labels: map[string]string{
				"rbac.authorization.k8s.io/aggregate-to-admin": "true",
				"rbac.authorization.k8s.io/aggregate-to-edit":  "true",
				"rbac.authorization.k8s.io/aggregate-to-view":  "true",
			},
		},
		Rules: []rbacv1.PolicyRule{{
			APIGroups: []string{metricsapi.GroupName},
			Resources: []string{"pods", "nodes"},
			Verbs:     []string{"get", "list", "watch"},
		}},
	}
	return retryUntil(ctx, func() error {
		if err := ensureAPIService(ctx, agg, want); err != nil {
			return err
		}
		_, err := m.client.RbacV1().ClusterRoles().Create(ctx, role, metav1.CreateOptions{})
		if err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("create cluster role %s: %w", metricsReaderRole, err)
		}
		return nil
	})
}

// ensureAPIService creates want or resets the spec of an existing one: a
// metrics-server installed earlier would have pointed it at its Service.
func ensureAPIService(ctx context.Context, agg aggregatorclient.Interface, want *apiregistrationv1.APIService) error {
	apiServices := agg.ApiregistrationV1().APIServices()
	have, err := apiServices.Get(ctx, want.Name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		if _, err := apiServices.Create(ctx, want, metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("create APIService %s: %w", want.Name, err)
		}
		return nil
	case err != nil:
		return fmt.Errorf("get APIService %s: %w", want.Name, err)
	case reflect.DeepEqual(have.Spec, want.Spec):
		return nil
	}
	have.Spec = want.Spec
	if _, err := apiServices.Update(ctx, have, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("update APIService %s: %w", want.Name, err)
	}
	return nil
}

// retryUntil calls f until it succeeds or ctx is done.
func retryUntil(ctx context.Context, f func() error) error {
	for {
		err := f()
		if err == nil {
			return nil
		}
		klog.V(2).InfoS("retrying", "err", err)
		select {
		case <-ctx.Done():
			return err
		case <-time.After(200 * time.Millisecond):
		}
	}
}
