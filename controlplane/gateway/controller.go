// Package gateway is the control plane's side of minik's Gateway API
// implementation: it installs the standard channel's CRDs, makes
// GatewayClass minik, gives each Gateway of a minik class a LoadBalancer
// Service (so an address from the pool) and writes the statuses of
// GatewayClasses, Gateways and HTTPRoutes that package gateway computes.
// The control-plane node serves the traffic (package kubelet/services);
// on the sim runtime the statuses are written the same way and nothing is
// served.
package gateway

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"reflect"
	"sort"
	"time"

	corev1 "k8s.io/api/core/v1"
	apiextensions "k8s.io/apiextensions-apiserver/pkg/client/clientset/clientset"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/klog/v2"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
	gwclient "sigs.k8s.io/gateway-api/pkg/client/clientset/versioned"

	"minik.dev/minik/gateway"
	"minik.dev/minik/nodeconfig"
)

// Run installs the CRDs and the GatewayClass and keeps the statuses until
// ctx is done. It begins once node nodeName is Ready and the default
// ServiceAccount exists (see waitSettled).
func Run(ctx context.Context, rc *rest.Config, client kubernetes.Interface, nodeName string) error {
	ext, err := apiextensions.NewForConfig(rc)
	if err != nil {
		return fmt.Errorf("create the apiextensions client: %w", err)
	}
	gw, err := gwclient.NewForConfig(rc)
	if err != nil {
		return fmt.Errorf("create the gateway client: %w", err)
	}
	waitSettled(ctx, client, nodeName, settleTimeout)
	if err := installCRDs(ctx, ext); err != nil {
		return err
	}
	if err := ensureClass(ctx, gw); err != nil {
		return err
	}
	c := &controller{client: client, gw: gw}
	return c.run(ctx)
}

// retry calls f every 200ms until it succeeds, fails for good (the
// object is invalid) or ctx is done.
func retry(ctx context.Context, f func() error) error {
	for i := 0; ; i++ {
		err := f()
		if err == nil {
			return nil
		}
		if apierrors.IsInvalid(err) || apierrors.IsBadRequest(err) {
			return err // retrying will not help
		}
		if i%25 == 24 {
			klog.InfoS("gateway setup: retrying", "err", err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (last error: %w)", ctx.Err(), err)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// ensureClass makes GatewayClass minik unless it exists.
func ensureClass(ctx context.Context, gw gwclient.Interface) error {
	class := &gwv1.GatewayClass{
		ObjectMeta: metav1.ObjectMeta{Name: gateway.ClassName},
		Spec: gwv1.GatewayClassSpec{
			ControllerName: gateway.ControllerName,
			Description:    ptrTo("minik: addresses from the load balancer pool"),
		},
	}
	err := retry(ctx, func() error {
		_, err := gw.GatewayV1().GatewayClasses().Create(ctx, class, metav1.CreateOptions{})
		if apierrors.IsAlreadyExists(err) {
			return nil
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("create GatewayClass %s: %w", gateway.ClassName, err)
	}
	return nil
}

func ptrTo[T any](v T) *T { return &v }

type controller struct {
	client kubernetes.Interface
	gw     gwclient.Interface
	in     *gateway.Informers
}

func (c *controller) run(ctx context.Context) error {
	changed := make(chan struct{}, 1)
	in, err := gateway.NewInformers(c.client, c.gw, changed)
	if err != nil {
		return err
	}
	c.in = in
	in.Start(ctx)
	defer in.Shutdown()
	if !in.WaitForCacheSync(ctx) {
		return ctx.Err()
	}
	for {
		c.reconcile(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-changed:
		case <-time.After(30 * time.Second):
		}
	}
}

func (c *controller) reconcile(ctx context.Context) {
	now := metav1.Now()
	classes, _ := c.in.Classes.List(labels.Everything())
	for _, gc := range classes {
		if gc.Spec.ControllerName != gateway.ControllerName {
			continue
		}
		want := []metav1.Condition{{Type: string(gwv1.GatewayClassConditionStatusAccepted), Status: metav1.ConditionTrue,
			Reason: string(gwv1.GatewayClassReasonAccepted), Message: "minik serves this class", ObservedGeneration: gc.Generation}}
		if gateway.SameConditions(want, gc.Status.Conditions) {
			continue
		}
		gateway.KeepTransitions(want, gc.Status.Conditions, now)
		gc = gc.DeepCopy()
		gc.Status.Conditions = want
		if _, err := c.gw.GatewayV1().GatewayClasses().UpdateStatus(ctx, gc, metav1.UpdateOptions{}); err != nil {
			klog.V(2).InfoS("update gatewayclass status", "class", gc.Name, "err", err)
		}
	}
	input := c.in.Input()
	model := gateway.Compute(input)
	for _, g := range model.Gateways {
		c.ensureService(ctx, g.Gateway)
		c.writeGateway(ctx, g, now)
	}
	routes, _ := c.in.Routes.List(labels.Everything())
	for _, r := range routes {
		c.writeRoute(ctx, r, model.RouteParents[r.Namespace+"/"+r.Name], now)
	}
}

// ServiceName is the LoadBalancer Service that holds a Gateway's address,
// in the Gateway's namespace.
func ServiceName(gatewayName string) string {
	const suffix = "-minik-gateway"
	if len(gatewayName)+len(suffix) <= 63 {
		return gatewayName + suffix
	}
	sum := sha256.Sum256([]byte(gatewayName))
	return gatewayName[:40] + "-" + hex.EncodeToString(sum[:4]) + suffix
}

// ensureService makes or updates the Gateway's LoadBalancer Service: one
// TCP port per listener port. It is owned by the Gateway, so it goes
// with it.
func (c *controller) ensureService(ctx context.Context, g *gwv1.Gateway) {
	ports := map[int32]bool{}
	for _, l := range g.Spec.Listeners {
		ports[int32(l.Port)] = true
	}
	var sp []corev1.ServicePort
	for p := range ports {
		sp = append(sp, corev1.ServicePort{Name: fmt.Sprintf("port-%d", p), Port: p, Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromInt32(p)})
	}
	sort.Slice(sp, func(i, j int) bool { return sp[i].Port < sp[j].Port })
	name := ServiceName(g.Name)
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: g.Namespace,
			Labels:      map[string]string{gateway.LabelGatewayName: g.Name},
			Annotations: map[string]string{nodeconfig.AnnotationServedBy: "gateway"},
			OwnerReferences: []metav1.OwnerReference{{APIVersion: gwv1.GroupVersion.String(), Kind: "Gateway",
				Name: g.Name, UID: g.UID, Controller: ptrTo(true), BlockOwnerDeletion: ptrTo(true)}}},
		Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer, Ports: sp},
	}
	old, err := c.in.Services.Services(g.Namespace).Get(name)
	switch {
	case apierrors.IsNotFound(err):
		if _, err := c.client.CoreV1().Services(g.Namespace).Create(ctx, svc, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			klog.ErrorS(err, "create gateway service", "gateway", klog.KObj(g))
		}
	case err != nil:
		return
	default:
		same := len(old.Spec.Ports) == len(sp)
		for i := 0; same && i < len(sp); i++ {
			same = old.Spec.Ports[i].Port == sp[i].Port
		}
		if same {
			return
		}
		upd := old.DeepCopy()
		upd.Spec.Ports = sp
		if _, err := c.client.CoreV1().Services(g.Namespace).Update(ctx, upd, metav1.UpdateOptions{}); err != nil {
			klog.V(2).InfoS("update gateway service", "gateway", klog.KObj(g), "err", err)
		}
	}
}

func (c *controller) writeGateway(ctx context.Context, g *gateway.GatewayModel, now metav1.Time) {
	want := g.Status
	old := g.Gateway.Status
	same := gateway.SameConditions(want.Conditions, old.Conditions) && reflect.DeepEqual(want.Addresses, old.Addresses) &&
		len(want.Listeners) == len(old.Listeners)
	for i := 0; same && i < len(want.Listeners); i++ {
		w, o := want.Listeners[i], old.Listeners[i]
		same = w.Name == o.Name && w.AttachedRoutes == o.AttachedRoutes && reflect.DeepEqual(w.SupportedKinds, o.SupportedKinds) &&
			gateway.SameConditions(w.Conditions, o.Conditions)
	}
	if same {
		return
	}
	gateway.KeepTransitions(want.Conditions, old.Conditions, now)
	for i := range want.Listeners {
		var oldConds []metav1.Condition
		for _, o := range old.Listeners {
			if o.Name == want.Listeners[i].Name {
				oldConds = o.Conditions
			}
		}
		gateway.KeepTransitions(want.Listeners[i].Conditions, oldConds, now)
	}
	upd := g.Gateway.DeepCopy()
	upd.Status = want
	if _, err := c.gw.GatewayV1().Gateways(upd.Namespace).UpdateStatus(ctx, upd, metav1.UpdateOptions{}); err != nil {
		klog.V(2).InfoS("update gateway status", "gateway", klog.KObj(upd), "err", err)
	}
}

// writeRoute replaces minik's parent statuses of a route, keeping other
// controllers'.
func (c *controller) writeRoute(ctx context.Context, r *gwv1.HTTPRoute, ours []gwv1.RouteParentStatus, now metav1.Time) {
	var kept, oldOurs []gwv1.RouteParentStatus
	for _, p := range r.Status.Parents {
		if p.ControllerName == gateway.ControllerName {
			oldOurs = append(oldOurs, p)
		} else {
			kept = append(kept, p)
		}
	}
	same := len(oldOurs) == len(ours)
	for i := 0; same && i < len(ours); i++ {
		same = reflect.DeepEqual(ours[i].ParentRef, oldOurs[i].ParentRef) && gateway.SameConditions(ours[i].Conditions, oldOurs[i].Conditions)
	}
	if same {
		return
	}
	for i := range ours {
		var oldConds []metav1.Condition
		for _, o := range oldOurs {
			if reflect.DeepEqual(o.ParentRef, ours[i].ParentRef) {
				oldConds = o.Conditions
			}
		}
		gateway.KeepTransitions(ours[i].Conditions, oldConds, now)
	}
	upd := r.DeepCopy()
	upd.Status.Parents = append(kept, ours...)
	if _, err := c.gw.GatewayV1().HTTPRoutes(upd.Namespace).UpdateStatus(ctx, upd, metav1.UpdateOptions{}); err != nil {
		klog.V(2).InfoS("update httproute status", "route", klog.KObj(upd), "err", err)
	}
}
