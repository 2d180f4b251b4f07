package controlplane

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"
	"k8s.io/utils/ptr"

	"minik.dev/minik/controlplane/promserver"
	"minik.dev/minik/nodeconfig"
	"minik.dev/minik/pki"
)

// prometheusRetry is how long a server that failed waits to start again.
const prometheusRetry = 10 * time.Second

// runPrometheus runs the Prometheus server while its settings ConfigMap
// exists, restarting it when the settings change, and publishes it as the
// Service kube-system/prometheus. Until asked for it costs one watch.
func runPrometheus(ctx context.Context, cfg *nodeconfig.Config, client kubernetes.Interface, allowed func(net.IP) bool) {
	factory := informers.NewSharedInformerFactoryWithOptions(client, 0,
		informers.WithNamespace(metav1.NamespaceSystem),
		informers.WithTweakListOptions(func(o *metav1.ListOptions) {
			o.FieldSelector = fields.OneTermEqualSelector("metadata.name", nodeconfig.PrometheusSettings).String()
		}))
	maps := factory.Core().V1().ConfigMaps()
	kick := make(chan struct{}, 1)
	poke := func() {
		select {
		case kick <- struct{}{}:
		default:
		}
	}
	if _, err := maps.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { poke() },
		UpdateFunc: func(any, any) { poke() },
		DeleteFunc: func(any) { poke() },
	}); err != nil {
		klog.ErrorS(err, "prometheus: watch settings")
		return
	}
	factory.Start(ctx.Done())
	defer factory.Shutdown()
	if !cache.WaitForCacheSync(ctx.Done(), maps.Informer().HasSynced) {
		return
	}
	poke()

	var (
		running  *prometheusRun
		settings nodeconfig.Prometheus
		retry    <-chan time.Time
	)
	stop := func() {
		if running != nil {
			running.stop()
			running = nil
		}
	}
	defer stop()
	for {
		var failed <-chan struct{}
		if running != nil {
			failed = running.done
		}
		select {
		case <-ctx.Done():
			return
		case <-kick:
		case <-retry:
		case <-failed:
			klog.ErrorS(running.err, "prometheus stopped; starting it again", "after", prometheusRetry)
			running = nil
			retry = time.After(prometheusRetry)
			continue
		}
		retry = nil
		cm, err := maps.Lister().ConfigMaps(metav1.NamespaceSystem).Get(nodeconfig.PrometheusSettings)
		if apierrors.IsNotFound(err) {
			if running != nil {
				klog.InfoS("prometheus off")
			}
			stop()
			if err := unpublishPrometheus(ctx, client); err != nil {
				klog.ErrorS(err, "prometheus: remove its Service")
			}
			continue
		}
		if err != nil {
			klog.ErrorS(err, "prometheus: read settings")
			continue
		}
		next, err := nodeconfig.ParsePrometheus(cm.Data)
		if err != nil {
			klog.ErrorS(err, "prometheus: settings refused; keeping what runs")
			continue
		}
		if running != nil && next == settings {
			continue
		}
		stop()
		settings = next
		if running, err = startPrometheus(ctx, cfg, client, settings, allowed); err != nil {
			klog.ErrorS(err, "prometheus: start", "retryAfter", prometheusRetry)
			retry = time.After(prometheusRetry)
		}
	}
}

// prometheusRun is one server run.
type prometheusRun struct {
	cancel context.CancelFunc
	done   chan struct{}
	err    error
}

func (r *prometheusRun) stop() {
	r.cancel()
	<-r.done
}

// startPrometheus listens on the node's address (PrometheusPort, or any
// port when that one is taken: several process-driver clusters share
// 127.0.0.1 outside Linux), publishes the Service and runs the server.
func startPrometheus(ctx context.Context, cfg *nodeconfig.Config, client kubernetes.Interface, s nodeconfig.Prometheus, allowed func(net.IP) bool) (*prometheusRun, error) {
	l, err := net.Listen("tcp", net.JoinHostPort(cfg.IP, strconv.Itoa(nodeconfig.PrometheusPort)))
	if errors.Is(err, syscall.EADDRINUSE) {
		l, err = net.Listen("tcp", net.JoinHostPort(cfg.IP, "0"))
	}
	if err != nil {
		return nil, fmt.Errorf("listen for prometheus: %w", err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	if err := publishPrometheus(ctx, client, cfg.IP, port); err != nil {
		l.Close()
		return nil, err
	}
	self := net.JoinHostPort(cfg.IP, strconv.Itoa(port))
	p := pki.Layout(cfg.PKIDir)
	o := promserver.Options{
		Targets: promserver.Targets{
			Cluster:    cfg.Cluster,
			Self:       self,
			APIServer:  cfg.APIServer,
			Kubeconfig: cfg.ControlPlane.AdminKubeconfig,
			CAFile:     p.CACert,
			CertFile:   p.APIServerKubeletClientCert,
			KeyFile:    p.APIServerKubeletClientKey,
			Interval:   s.ScrapeInterval,
		},
		DataDir:        filepath.Join(cfg.DataDir, "prometheus"),
		Listener:       l,
		ExternalURL:    "http://" + self,
		Retention:      s.Retention,
		RetentionBytes: s.RetentionBytes,
		RulesDir:       cfg.ControlPlane.ManifestsDir,
		Allowed:        allowed,
		Logger:         slog.New(logr.ToSlogHandler(klog.Background().WithName("prometheus"))),
	}
	runCtx, cancel := context.WithCancel(ctx)
	r := &prometheusRun{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(r.done)
		defer l.Close()
		r.err = promserver.Run(runCtx, o)
		if r.err == nil && runCtx.Err() == nil {
			r.err = errors.New("prometheus returned")
		}
	}()
	klog.InfoS("prometheus on", "url", o.ExternalURL, "retention", s.Retention, "retentionBytes", s.RetentionBytes)
	return r, nil
}

// publishPrometheus makes the Service kube-system/prometheus point at
// ip:port: a Service without a selector and an EndpointSlice of ours, as
// the apiserver publishes the kubernetes Service. A loopback address (the
// process driver's nodes) may not be an endpoint, and no real pod would
// use it: then the Service only names the URL.
func publishPrometheus(ctx context.Context, client kubernetes.Interface, ip string, port int) error {
	labels := map[string]string{"app.kubernetes.io/name": "prometheus", "app.kubernetes.io/managed-by": "minik", nodeconfig.NodeServedLabel: "true"}
	annotations := map[string]string{nodeconfig.NodeURLAnnotation: "http://" + net.JoinHostPort(ip, strconv.Itoa(port))}
	want := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: nodeconfig.PrometheusService, Namespace: metav1.NamespaceSystem, Labels: labels, Annotations: annotations},
		Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{
			Name: "web", Protocol: corev1.ProtocolTCP, Port: nodeconfig.PrometheusPort,
			TargetPort: intstr.FromInt32(int32(port)), AppProtocol: ptr.To("http"),
		}}},
	}
	services := client.CoreV1().Services(metav1.NamespaceSystem)
	svc, err := services.Get(ctx, want.Name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		if svc, err = services.Create(ctx, want, metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("create Service %s/%s: %w", want.Namespace, want.Name, err)
		}
	case err != nil:
		return fmt.Errorf("get Service %s/%s: %w", want.Namespace, want.Name, err)
	case svc.Labels[nodeconfig.NodeServedLabel] != "true":
		return fmt.Errorf("service %s/%s exists and is not minik's: delete it to run minik's Prometheus", want.Namespace, want.Name)
	default:
		svc.Labels, svc.Annotations, svc.Spec.Ports, svc.Spec.Selector = labels, annotations, want.Spec.Ports, nil
		if svc, err = services.Update(ctx, svc, metav1.UpdateOptions{}); err != nil {
			return fmt.Errorf("update Service %s/%s: %w", want.Namespace, want.Name, err)
		}
	}
	if net.ParseIP(ip).IsLoopback() {
		return nil
	}
	slice := &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{
			Name: nodeconfig.PrometheusService, Namespace: metav1.NamespaceSystem,
			Labels: map[string]string{
				discoveryv1.LabelServiceName: nodeconfig.PrometheusService,
				discoveryv1.LabelManagedBy:   "minik.dev",
			},
			// Deleting the Service deletes the slice.
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "v1", Kind: "Service", Name: svc.Name, UID: svc.UID}},
		},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints: []discoveryv1.Endpoint{{
			Addresses:  []string{ip},
			Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true), Serving: ptr.To(true), Terminating: ptr.To(false)},
		}},
		Ports: []discoveryv1.EndpointPort{{Name: ptr.To("web"), Protocol: ptr.To(corev1.ProtocolTCP), Port: ptr.To(int32(port)), AppProtocol: ptr.To("http")}},
	}
	if net.ParseIP(ip).To4() == nil {
		slice.AddressType = discoveryv1.AddressTypeIPv6
	}
	slices := client.DiscoveryV1().EndpointSlices(metav1.NamespaceSystem)
	old, err := slices.Get(ctx, slice.Name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		_, err = slices.Create(ctx, slice, metav1.CreateOptions{})
	case err == nil:
		slice.ResourceVersion = old.ResourceVersion
		_, err = slices.Update(ctx, slice, metav1.UpdateOptions{})
	}
	if err != nil {
		return fmt.Errorf("publish EndpointSlice %s/%s: %w", slice.Namespace, slice.Name, err)
	}
	return nil
}

// unpublishPrometheus deletes the Service if it is minik's (the slice goes
// with it); a user's own Service of that name stays.
func unpublishPrometheus(ctx context.Context, client kubernetes.Interface) error {
	services := client.CoreV1().Services(metav1.NamespaceSystem)
	svc, err := services.Get(ctx, nodeconfig.PrometheusService, metav1.GetOptions{})
	if apierrors.IsNotFound(err) || (err == nil && svc.Labels[nodeconfig.NodeServedLabel] != "true") {
		return nil
	}
	if err == nil {
		err = services.Delete(ctx, svc.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &svc.UID}})
	}
	if err != nil && !apierrors.IsNotFound(err) {
		return err
	}
	return nil
}
