package loadbalancer

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"
	"k8s.io/utils/ptr"

	"minik.dev/minik/nodeconfig"
)

// RunIngresses makes the default IngressClass minik and its LoadBalancer
// Service, and gives every Ingress of the class that Service's address,
// until ctx is done. Where the cluster's network is real, the
// control-plane node serves the traffic (package kubelet/services); on
// the sim runtime the address exists only in the API, so charts that wait
// for one go on.
func RunIngresses(ctx context.Context, client kubernetes.Interface) error {
	if err := ensureIngressObjects(ctx, client); err != nil {
		return err
	}
	factory := informers.NewSharedInformerFactory(client, 0)
	ingresses := factory.Networking().V1().Ingresses()
	services := factory.Core().V1().Services()
	changed := make(chan struct{}, 1)
	poke := func(any) {
		select {
		case changed <- struct{}{}:
		default:
		}
	}
	handler := cache.ResourceEventHandlerFuncs{AddFunc: poke, UpdateFunc: func(_, o any) { poke(o) }}
	for _, inf := range []cache.SharedIndexInformer{ingresses.Informer(), services.Informer()} {
		if _, err := inf.AddEventHandler(handler); err != nil {
			return fmt.Errorf("watch ingresses: %w", err)
		}
	}
	factory.Start(ctx.Done())
	defer factory.Shutdown()
	factory.WaitForCacheSync(ctx.Done())
	for {
		if svc, err := services.Lister().Services(metav1.NamespaceSystem).Get(nodeconfig.IngressService); err == nil && len(svc.Status.LoadBalancer.Ingress) > 0 {
			ip := svc.Status.LoadBalancer.Ingress[0].IP
			list, _ := ingresses.Lister().List(labels.Everything())
			for _, ing := range list {
				if ptr.Deref(ing.Spec.IngressClassName, "") != nodeconfig.IngressClass ||
					(len(ing.Status.LoadBalancer.Ingress) == 1 && ing.Status.LoadBalancer.Ingress[0].IP == ip) {
					continue
				}
				ing = ing.DeepCopy()
				ing.Status.LoadBalancer.Ingress = []networkingv1.IngressLoadBalancerIngress{{IP: ip}}
				if _, err := client.NetworkingV1().Ingresses(ing.Namespace).UpdateStatus(ctx, ing, metav1.UpdateOptions{}); err != nil {
					klog.V(2).InfoS("set ingress address", "ingress", klog.KObj(ing), "err", err)
				}
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-changed:
		case <-time.After(30 * time.Second):
		}
	}
}

// ensureIngressObjects creates the IngressClass and the Service unless
// they exist (a user's edits are kept).
func ensureIngressObjects(ctx context.Context, client kubernetes.Interface) error {
	class := &networkingv1.IngressClass{
		ObjectMeta: metav1.ObjectMeta{Name: nodeconfig.IngressClass,
			Annotations: map[string]string{networkingv1.AnnotationIsDefaultIngressClass: "true"}},
		Spec: networkingv1.IngressClassSpec{Controller: nodeconfig.IngressController},
	}
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: nodeconfig.IngressService, Namespace: metav1.NamespaceSystem,
			Annotations: map[string]string{nodeconfig.AnnotationServedBy: "ingress"},
			Labels:      map[string]string{"app.kubernetes.io/name": "minik-ingress"}},
		Spec: corev1.ServiceSpec{
			Type: corev1.ServiceTypeLoadBalancer,
			Ports: []corev1.ServicePort{
				{Name: "http", Port: 80, Protocol: corev1.ProtocolTCP},
				{Name: "https", Port: 443, Protocol: corev1.ProtocolTCP},
			},
		},
	}
	for {
		_, err := client.NetworkingV1().IngressClasses().Create(ctx, class, metav1.CreateOptions{})
		if err == nil || apierrors.IsAlreadyExists(err) {
			_, err = client.CoreV1().Services(metav1.NamespaceSystem).Get(ctx, svc.Name, metav1.GetOptions{})
			if apierrors.IsNotFound(err) {
				_, err = client.CoreV1().Services(metav1.NamespaceSystem).Create(ctx, svc, metav1.CreateOptions{})
			}
			if err == nil || apierrors.IsAlreadyExists(err) {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(time.Second):
		}
	}
}
