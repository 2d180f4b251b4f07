package gateway

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	gwclient "sigs.k8s.io/gateway-api/pkg/client/clientset/versioned"
	gwinformers "sigs.k8s.io/gateway-api/pkg/client/informers/externalversions"
	gwlisters "sigs.k8s.io/gateway-api/pkg/client/listers/apis/v1"

	"minik.dev/minik/nodeconfig"
)

// LabelGatewayName names the Gateway of its LoadBalancer Service.
const LabelGatewayName = "gateway.networking.k8s.io/gateway-name"

const annotationServedBy = nodeconfig.AnnotationServedBy

// Informers watch what the model reads.
type Informers struct {
	core informers.SharedInformerFactory
	gw   gwinformers.SharedInformerFactory

	Classes    gwlisters.GatewayClassLister
	Gateways   gwlisters.GatewayLister
	Routes     gwlisters.HTTPRouteLister
	Grants     gwlisters.ReferenceGrantLister
	Services   corelisters.ServiceLister
	Namespaces corelisters.NamespaceLister
	Secrets    corelisters.SecretLister
	synced     []cache.InformerSynced
}

// NewInformers watches GatewayClasses, Gateways, HTTPRoutes,
// ReferenceGrants, Services, Namespaces and Secrets, and pokes changed
// (a channel of one) on every change.
func NewInformers(client kubernetes.Interface, gw gwclient.Interface, changed chan struct{}) (*Informers, error) {
	core := informers.NewSharedInformerFactory(client, 0)
	g := gwinformers.NewSharedInformerFactory(gw, 0)
	poke := func(any) {
		select {
		case changed <- struct{}{}:
		default:
		}
	}
	handler := cache.ResourceEventHandlerFuncs{AddFunc: poke, UpdateFunc: func(_, o any) { poke(o) }, DeleteFunc: poke}
	in := &Informers{core: core, gw: g,
		Classes:    g.Gateway().V1().GatewayClasses().Lister(),
		Gateways:   g.Gateway().V1().Gateways().Lister(),
		Routes:     g.Gateway().V1().HTTPRoutes().Lister(),
		Grants:     g.Gateway().V1().ReferenceGrants().Lister(),
		Services:   core.Core().V1().Services().Lister(),
		Namespaces: core.Core().V1().Namespaces().Lister(),
		Secrets:    core.Core().V1().Secrets().Lister(),
	}
	for _, inf := range []cache.SharedIndexInformer{
		g.Gateway().V1().GatewayClasses().Informer(), g.Gateway().V1().Gateways().Informer(),
		g.Gateway().V1().HTTPRoutes().Informer(), g.Gateway().V1().ReferenceGrants().Informer(),
		core.Core().V1().Services().Informer(), core.Core().V1().Namespaces().Informer(),
		core.Core().V1().Secrets().Informer(),
	} {
		if _, err := inf.AddEventHandler(handler); err != nil {
			return nil, fmt.Errorf("watch gateway objects: %w", err)
		}
		in.synced = append(in.synced, inf.HasSynced)
	}
	return in, nil
}

// Start starts the informers.
func (in *Informers) Start(ctx context.Context) {
	in.core.Start(ctx.Done())
	in.gw.Start(ctx.Done())
}

// Shutdown stops them.
func (in *Informers) Shutdown() {
	in.core.Shutdown()
	in.gw.Shutdown()
}

// WaitForCacheSync waits until every informer has listed once.
func (in *Informers) WaitForCacheSync(ctx context.Context) bool {
	return cache.WaitForCacheSync(ctx.Done(), in.synced...)
}

// HasSynced says whether every informer has listed once.
func (in *Informers) HasSynced() bool {
	for _, s := range in.synced {
		if !s() {
			return false
		}
	}
	return true
}

// Input is the model's input from the informers' caches.
func (in *Informers) Input() Input {
	out := Input{Classes: map[string]bool{}, Namespaces: map[string]map[string]string{},
		Services: map[string]*corev1.Service{}, Secrets: map[string]*corev1.Secret{}, Addresses: map[string]string{}}
	classes, _ := in.Classes.List(labels.Everything())
	for _, c := range classes {
		if c.Spec.ControllerName == ControllerName {
			out.Classes[c.Name] = true
		}
	}
	out.Gateways, _ = in.Gateways.List(labels.Everything())
	out.Routes, _ = in.Routes.List(labels.Everything())
	out.Grants, _ = in.Grants.List(labels.Everything())
	nss, _ := in.Namespaces.List(labels.Everything())
	for _, ns := range nss {
		out.Namespaces[ns.Name] = ns.Labels
	}
	svcs, _ := in.Services.List(labels.Everything())
	for _, s := range svcs {
		out.Services[s.Namespace+"/"+s.Name] = s
		if gw := s.Labels[LabelGatewayName]; gw != "" && s.Annotations[annotationServedBy] == "gateway" && s.Spec.Type == corev1.ServiceTypeLoadBalancer {
			for _, ing := range s.Status.LoadBalancer.Ingress {
				if ing.IP != "" {
					out.Addresses[s.Namespace+"/"+gw] = ing.IP
					break
				}
			}
		}
	}
	secrets, _ := in.Secrets.List(labels.Everything())
	for _, s := range secrets {
		if s.Type == corev1.SecretTypeTLS || len(s.Data[corev1.TLSCertKey]) > 0 {
			out.Secrets[s.Namespace+"/"+s.Name] = s
		}
	}
	return out
}
