// Package gateway is minik's Gateway API implementation, the part that
// both the control plane and the serving node use: which Listeners of
// which Gateways are valid, which HTTPRoutes attach to them, the status
// that follows, and the routing table the node serves. It only computes:
// the control plane writes the statuses (package controlplane/gateway)
// and the control-plane node serves the table (package kubelet/services).
package gateway

import (
	"crypto/tls"
	"fmt"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// ControllerName is the controllerName of the GatewayClasses minik serves.
const ControllerName gwv1.GatewayController = "minik.dev/gateway"

// ClassName is the GatewayClass the control plane makes.
const ClassName = "minik"

// Group is the Gateway API group.
const Group = gwv1.GroupName

// Input is everything the model reads.
type Input struct {
	// Classes are the names of the GatewayClasses whose controllerName is
	// ControllerName.
	Classes    map[string]bool
	Gateways   []*gwv1.Gateway
	Routes     []*gwv1.HTTPRoute
	Namespaces map[string]map[string]string // name -> labels
	Services   map[string]*corev1.Service   // "namespace/name"
	Secrets    map[string]*corev1.Secret    // "namespace/name"
	Grants     []*gwv1.ReferenceGrant
	// Addresses are the Gateways' LoadBalancer addresses, by "namespace/name".
	Addresses map[string]string
}

// Model is what follows from an Input.
type Model struct {
	Gateways map[string]*GatewayModel // "namespace/name"
	// RouteParents are the parent statuses minik writes, by route
	// "namespace/name"; parents of other controllers are not here.
	RouteParents map[string][]gwv1.RouteParentStatus
}

// GatewayModel is one Gateway of a minik class.
type GatewayModel struct {
	Gateway   *gwv1.Gateway
	Address   string
	Status    gwv1.GatewayStatus
	Listeners []*ListenerModel
}

// ListenerModel is one Listener and the routes that attach to it.
type ListenerModel struct {
	Listener gwv1.Listener
	// Accepted: routes may attach (even with unresolved references).
	Accepted bool
	// Serve says the listener is valid and is served.
	Serve  bool
	Cert   *tls.Certificate
	Routes []*AttachedRoute
}

// AttachedRoute is a route on a listener, with the hostnames that follow
// from the route's and the listener's.
type AttachedRoute struct {
	Route *gwv1.HTTPRoute
	// Hostnames are the intersection; empty means any host.
	Hostnames []string
	// Backends are the resolved backendRefs per rule; an entry with
	// Invalid set answers 500.
	Backends [][]Backend
}

// Backend is a resolved backendRef.
type Backend struct {
	Namespace, Name string
	Port            int32
	Weight          int32
	Invalid         bool
	Filters         []gwv1.HTTPRouteFilter
}

func key(ns, name string) string { return ns + "/" + name }

// Compute builds the model. Conditions carry the objects' generations but
// no transition times: the writer keeps those of unchanged conditions.
func Compute(in Input) *Model {
	m := &Model{Gateways: map[string]*GatewayModel{}, RouteParents: map[string][]gwv1.RouteParentStatus{}}
	for _, gw := range in.Gateways {
		if !in.Classes[string(gw.Spec.GatewayClassName)] {
			continue
		}
		m.Gateways[key(gw.Namespace, gw.Name)] = in.gateway(gw)
	}
	routes := append([]*gwv1.HTTPRoute(nil), in.Routes...)
	sortByAge(routes)
	for _, r := range routes {
		in.attach(m, r)
	}
	for _, g := range m.Gateways {
		for i, l := range g.Listeners {
			g.Status.Listeners[i].AttachedRoutes = int32(len(l.Routes))
		}
	}
	return m
}

func sortByAge(routes []*gwv1.HTTPRoute) {
	sort.SliceStable(routes, func(i, j int) bool {
		a, b := routes[i], routes[j]
		if !a.CreationTimestamp.Equal(&b.CreationTimestamp) {
			return a.CreationTimestamp.Before(&b.CreationTimestamp)
		}
		return key(a.Namespace, a.Name) < key(b.Namespace, b.Name)
	})
}

func cond(t, reason string, ok bool, gen int64, msg string) metav1.Condition {
	s := metav1.ConditionTrue
	if !ok {
		s = metav1.ConditionFalse
	}
	return metav1.Condition{Type: t, Status: s, Reason: reason, Message: msg, ObservedGeneration: gen}
}

var httpRouteKind = gwv1.RouteGroupKind{Group: ptrTo(gwv1.Group(Group)), Kind: "HTTPRoute"}

func ptrTo[T any](v T) *T { return &v }

// gateway validates a Gateway's listeners.
func (in Input) gateway(gw *gwv1.Gateway) *GatewayModel {
	gen := gw.Generation
	g := &GatewayModel{Gateway: gw, Address: in.Addresses[key(gw.Namespace, gw.Name)]}
	// Conflicts: listeners on one port need one protocol, and distinct
	// hostnames.
	protocols := map[gwv1.PortNumber]map[gwv1.ProtocolType]int{}
	hostnames := map[string]int{}
	for _, l := range gw.Spec.Listeners {
		if protocols[l.Port] == nil {
			protocols[l.Port] = map[gwv1.ProtocolType]int{}
		}
		protocols[l.Port][l.Protocol]++
		hostnames[fmt.Sprintf("%d|%s|%s", l.Port, l.Protocol, hostOf(l.Hostname))]++
	}
	allValid, anyAccepted := true, false
	for _, l := range gw.Spec.Listeners {
		lm := &ListenerModel{Listener: l}
		st := gwv1.ListenerStatus{Name: l.Name, SupportedKinds: []gwv1.RouteGroupKind{}}
		accepted, acceptedReason, acceptedMsg := true, string(gwv1.ListenerReasonAccepted), "Listener is accepted"
		resolved, resolvedReason, resolvedMsg := true, string(gwv1.ListenerReasonResolvedRefs), "References are resolved"
		conflicted, conflictReason := false, string(gwv1.ListenerReasonNoConflicts)
		switch l.Protocol {
		case gwv1.HTTPProtocolType, gwv1.HTTPSProtocolType:
		default:
			accepted, acceptedReason, acceptedMsg = false, string(gwv1.ListenerReasonUnsupportedProtocol), fmt.Sprintf("protocol %s is not supported: HTTP and HTTPS are", l.Protocol)
		}
		if len(protocols[l.Port]) > 1 {
			conflicted, conflictReason = true, string(gwv1.ListenerReasonProtocolConflict)
		} else if hostnames[fmt.Sprintf("%d|%s|%s", l.Port, l.Protocol, hostOf(l.Hostname))] > 1 {
			conflicted, conflictReason = true, string(gwv1.ListenerReasonHostnameConflict)
		}
		// Route kinds: HTTPRoute only.
		if l.AllowedRoutes == nil || len(l.AllowedRoutes.Kinds) == 0 {
			if accepted {
				st.SupportedKinds = append(st.SupportedKinds, httpRouteKind)
			}
		} else {
			for _, k := range l.AllowedRoutes.Kinds {
				if (k.Group == nil || string(*k.Group) == Group) && k.Kind == "HTTPRoute" {
					st.SupportedKinds = append(st.SupportedKinds, httpRouteKind)
				} else {
					resolved, resolvedReason, resolvedMsg = false, string(gwv1.ListenerReasonInvalidRouteKinds), fmt.Sprintf("route kind %s is not supported", k.Kind)
				}
			}
		}
		if l.Protocol == gwv1.HTTPSProtocolType && accepted {
			cert, reason, err := in.certificate(gw, l)
			if err != nil {
				resolved, resolvedReason, resolvedMsg = false, reason, err.Error()
			}
			lm.Cert = cert
		}
		programmed := accepted && resolved && !conflicted && g.Address != ""
		progReason, progMsg := string(gwv1.ListenerReasonProgrammed), "Listener is served"
		if !programmed {
			progReason, progMsg = string(gwv1.ListenerReasonInvalid), "Listener is not valid"
			if accepted && resolved && !conflicted {
				progReason, progMsg = string(gwv1.ListenerReasonPending), "waiting for the Gateway's address"
			}
		}
		lm.Accepted = accepted && !conflicted
		lm.Serve = lm.Accepted && (resolved || lm.Cert != nil || l.Protocol == gwv1.HTTPProtocolType)
		if !accepted || conflicted || !resolved {
			allValid = false
		}
		anyAccepted = anyAccepted || lm.Accepted
		st.Conditions = []metav1.Condition{
			cond(string(gwv1.ListenerConditionAccepted), acceptedReason, accepted, gen, acceptedMsg),
			cond(string(gwv1.ListenerConditionResolvedRefs), resolvedReason, resolved, gen, resolvedMsg),
			cond(string(gwv1.ListenerConditionConflicted), conflictReason, conflicted, gen, ""),
			cond(string(gwv1.ListenerConditionProgrammed), progReason, programmed, gen, progMsg),
		}
		g.Listeners = append(g.Listeners, lm)
		g.Status.Listeners = append(g.Status.Listeners, st)
	}
	acceptedReason, acceptedMsg := string(gwv1.GatewayReasonAccepted), "Gateway is accepted"
	accepted := true
	if len(gw.Spec.Addresses) > 0 {
		accepted, acceptedReason, acceptedMsg = false, string(gwv1.GatewayReasonUnsupportedAddress), "spec.addresses is not supported: the address comes from the load balancer pool"
	} else if !anyAccepted && len(gw.Spec.Listeners) > 0 {
		accepted, acceptedReason, acceptedMsg = false, string(gwv1.GatewayReasonListenersNotValid), "no listener is valid"
	} else if !allValid {
		acceptedReason, acceptedMsg = string(gwv1.GatewayReasonListenersNotValid), "some listeners are not valid"
	}
	progReason, progMsg, programmed := string(gwv1.GatewayReasonProgrammed), "Gateway is served on "+g.Address, g.Address != ""
	if !programmed {
		progReason, progMsg = string(gwv1.GatewayReasonAddressNotAssigned), "waiting for an address from the load balancer pool"
	}
	if !accepted {
		programmed, progReason, progMsg = false, string(gwv1.GatewayReasonInvalid), acceptedMsg
	}
	g.Status.Conditions = []metav1.Condition{
		cond(string(gwv1.GatewayConditionAccepted), acceptedReason, accepted, gen, acceptedMsg),
		cond(string(gwv1.GatewayConditionProgrammed), progReason, programmed, gen, progMsg),
	}
	if g.Address != "" {
		g.Status.Addresses = []gwv1.GatewayStatusAddress{{Type: ptrTo(gwv1.IPAddressType), Value: g.Address}}
	}
	return g
}

func hostOf(h *gwv1.Hostname) string {
	if h == nil {
		return ""
	}
	return strings.ToLower(string(*h))
}

// certificate loads an HTTPS listener's first certificateRef.
func (in Input) certificate(gw *gwv1.Gateway, l gwv1.Listener) (*tls.Certificate, string, error) {
	if l.TLS == nil || len(l.TLS.CertificateRefs) == 0 {
		return nil, string(gwv1.ListenerReasonInvalidCertificateRef), fmt.Errorf("HTTPS listener %s has no certificateRefs", l.Name)
	}
	if l.TLS.Mode != nil && *l.TLS.Mode != gwv1.TLSModeTerminate {
		return nil, string(gwv1.ListenerReasonInvalidCertificateRef), fmt.Errorf("TLS mode %s is not supported for HTTPS", *l.TLS.Mode)
	}
	var first *tls.Certificate
	for _, ref := range l.TLS.CertificateRefs {
		if (ref.Group != nil && *ref.Group != "") || (ref.Kind != nil && *ref.Kind != "Secret") {
			return nil, string(gwv1.ListenerReasonInvalidCertificateRef), fmt.Errorf("certificateRef %s is not a Secret", ref.Name)
		}
		ns := gw.Namespace
		if ref.Namespace != nil {
			ns = string(*ref.Namespace)
		}
		if ns != gw.Namespace && !in.granted(gw.Namespace, Group, "Gateway", ns, "", "Secret", string(ref.Name)) {
			return nil, string(gwv1.ListenerReasonRefNotPermitted), fmt.Errorf("no ReferenceGrant in %s allows the Gateway to use Secret %s", ns, ref.Name)
		}
		s, ok := in.Secrets[key(ns, string(ref.Name))]
		if !ok {
			return nil, string(gwv1.ListenerReasonInvalidCertificateRef), fmt.Errorf("secret %s/%s does not exist", ns, ref.Name)
		}
		c, err := tls.X509KeyPair(s.Data[corev1.TLSCertKey], s.Data[corev1.TLSPrivateKeyKey])
		if err != nil {
			return nil, string(gwv1.ListenerReasonInvalidCertificateRef), fmt.Errorf("secret %s/%s is not a certificate and key: %w", ns, ref.Name, err)
		}
		if first == nil {
			first = &c
		}
	}
	return first, "", nil
}

// granted says whether a ReferenceGrant in toNS lets objects of kind
// fromKind in fromNS refer to the object toKind/toName.
func (in Input) granted(fromNS, fromGroup, fromKind, toNS, toGroup, toKind, toName string) bool {
	for _, g := range in.Grants {
		if g.Namespace != toNS {
			continue
		}
		from := false
		for _, f := range g.Spec.From {
			if string(f.Group) == fromGroup && string(f.Kind) == fromKind && string(f.Namespace) == fromNS {
				from = true
			}
		}
		if !from {
			continue
		}
		for _, t := range g.Spec.To {
			if string(t.Group) == toGroup && string(t.Kind) == toKind && (t.Name == nil || *t.Name == "" || string(*t.Name) == toName) {
				return true
			}
		}
	}
	return false
}

// attach attaches a route to the listeners its parentRefs name and
// records a parent status for each parentRef to a minik Gateway.
func (in Input) attach(m *Model, r *gwv1.HTTPRoute) {
	gen := r.Generation
	rk := key(r.Namespace, r.Name)
	backends, resolved, resolvedReason, resolvedMsg := in.resolveBackends(r)
	unsupported := unsupportedFilter(r)
	for _, ref := range r.Spec.ParentRefs {
		if (ref.Group != nil && string(*ref.Group) != Group) || (ref.Kind != nil && *ref.Kind != "Gateway") {
			continue
		}
		ns := r.Namespace
		if ref.Namespace != nil {
			ns = string(*ref.Namespace)
		}
		g, ok := m.Gateways[key(ns, string(ref.Name))]
		if !ok {
			continue // not a minik Gateway, or none
		}
		accepted, reason, msg := false, string(gwv1.RouteReasonNoMatchingParent), "no listener matches the parentRef"
		var attachedTo []*ListenerModel
		var hostsFor [][]string
		for _, l := range g.Listeners {
			if ref.SectionName != nil && *ref.SectionName != l.Listener.Name {
				continue
			}
			if ref.Port != nil && *ref.Port != l.Listener.Port {
				continue
			}
			if !l.Accepted {
				continue
			}
			if !in.allowed(g.Gateway, l.Listener, r) {
				if reason == string(gwv1.RouteReasonNoMatchingParent) {
					reason, msg = string(gwv1.RouteReasonNotAllowedByListeners), "the listeners do not allow routes from this namespace or of this kind"
				}
				continue
			}
			hosts, ok := intersect(hostOf(l.Listener.Hostname), r.Spec.Hostnames)
			if !ok {
				if reason != string(gwv1.RouteReasonAccepted) {
					reason, msg = string(gwv1.RouteReasonNoMatchingListenerHostname), "no hostname of the route matches the listener's"
				}
				continue
			}
			accepted, reason, msg = true, string(gwv1.RouteReasonAccepted), "Route is accepted"
			attachedTo = append(attachedTo, l)
			hostsFor = append(hostsFor, hosts)
		}
		if accepted && unsupported != "" {
			accepted, reason, msg = false, string(gwv1.RouteReasonUnsupportedValue), unsupported
		}
		if accepted {
			for i, l := range attachedTo {
				l.Routes = append(l.Routes, &AttachedRoute{Route: r, Hostnames: hostsFor[i], Backends: backends})
			}
		}
		m.RouteParents[rk] = append(m.RouteParents[rk], gwv1.RouteParentStatus{
			ParentRef:      ref,
			ControllerName: ControllerName,
			Conditions: []metav1.Condition{
				cond(string(gwv1.RouteConditionAccepted), reason, accepted, gen, msg),
				cond(string(gwv1.RouteConditionResolvedRefs), resolvedReason, resolved, gen, resolvedMsg),
			},
		})
	}
}

// unsupportedFilter names the first filter minik does not implement.
func unsupportedFilter(r *gwv1.HTTPRoute) string {
	ok := func(f gwv1.HTTPRouteFilter) bool {
		switch f.Type {
		case gwv1.HTTPRouteFilterRequestHeaderModifier, gwv1.HTTPRouteFilterResponseHeaderModifier,
			gwv1.HTTPRouteFilterRequestRedirect, gwv1.HTTPRouteFilterURLRewrite:
			return true
		}
		return false
	}
	for _, rule := range r.Spec.Rules {
		for _, f := range rule.Filters {
			if !ok(f) {
				return fmt.Sprintf("filter %s is not supported", f.Type)
			}
		}
		for _, b := range rule.BackendRefs {
			for _, f := range b.Filters {
				if !ok(f) {
					return fmt.Sprintf("filter %s is not supported", f.Type)
				}
			}
		}
	}
	return ""
}

// allowed applies a listener's allowedRoutes to a route.
func (in Input) allowed(gw *gwv1.Gateway, l gwv1.Listener, r *gwv1.HTTPRoute) bool {
	from := gwv1.NamespacesFromSame
	var sel *metav1.LabelSelector
	if l.AllowedRoutes != nil {
		if l.AllowedRoutes.Namespaces != nil && l.AllowedRoutes.Namespaces.From != nil {
			from = *l.AllowedRoutes.Namespaces.From
			sel = l.AllowedRoutes.Namespaces.Selector
		}
		if len(l.AllowedRoutes.Kinds) > 0 {
			kindOK := false
			for _, k := range l.AllowedRoutes.Kinds {
				if (k.Group == nil || string(*k.Group) == Group) && k.Kind == "HTTPRoute" {
					kindOK = true
				}
			}
			if !kindOK {
				return false
			}
		}
	}
	switch from {
	case gwv1.NamespacesFromAll:
		return true
	case gwv1.NamespacesFromSame:
		return r.Namespace == gw.Namespace
	case gwv1.NamespacesFromSelector:
		if sel == nil {
			return false
		}
		s, err := metav1.LabelSelectorAsSelector(sel)
		if err != nil {
			return false
		}
		return s.Matches(labels.Set(in.Namespaces[r.Namespace]))
	}
	return false
}

// intersect is the hostnames a route serves on a listener; false when
// none of the route's hostnames fits the listener's.
func intersect(listener string, route []gwv1.Hostname) ([]string, bool) {
	if len(route) == 0 {
		if listener == "" {
			return nil, true
		}
		return []string{listener}, true
	}
	var out []string
	for _, h := range route {
		rh := strings.ToLower(string(h))
		switch {
		case listener == "":
			out = append(out, rh)
		case rh == listener:
			out = append(out, rh)
		case strings.HasPrefix(listener, "*.") && wildcardMatches(listener, rh):
			out = append(out, rh)
		case strings.HasPrefix(rh, "*.") && wildcardMatches(rh, listener):
			out = append(out, listener)
		}
	}
	return out, len(out) > 0
}

// wildcardMatches says whether host (a name, or a narrower wildcard)
// is covered by the wildcard pattern "*.suffix": one or more labels
// before the suffix.
func wildcardMatches(pattern, host string) bool {
	suffix := pattern[1:] // ".example.com"
	return strings.HasSuffix(host, suffix) && len(host) > len(suffix) && host != pattern
}

// resolveBackends checks every backendRef of every rule.
func (in Input) resolveBackends(r *gwv1.HTTPRoute) ([][]Backend, bool, string, string) {
	resolved, reason, msg := true, string(gwv1.RouteReasonResolvedRefs), "References are resolved"
	fail := func(rsn, m string) {
		if resolved {
			resolved, reason, msg = false, rsn, m
		}
	}
	out := make([][]Backend, len(r.Spec.Rules))
	for i, rule := range r.Spec.Rules {
		for _, b := range rule.BackendRefs {
			ns := r.Namespace
			if b.Namespace != nil {
				ns = string(*b.Namespace)
			}
			be := Backend{Namespace: ns, Name: string(b.Name), Weight: 1, Filters: b.Filters}
			if b.Weight != nil {
				be.Weight = *b.Weight
			}
			if b.Port != nil {
				be.Port = int32(*b.Port)
			}
			group, kind := "", "Service"
			if b.Group != nil {
				group = string(*b.Group)
			}
			if b.Kind != nil {
				kind = string(*b.Kind)
			}
			switch {
			case group != "" || kind != "Service":
				be.Invalid = true
				fail(string(gwv1.RouteReasonInvalidKind), fmt.Sprintf("backendRef %s of kind %s is not supported", b.Name, kind))
			case ns != r.Namespace && !in.granted(r.Namespace, Group, "HTTPRoute", ns, "", "Service", string(b.Name)):
				be.Invalid = true
				fail(string(gwv1.RouteReasonRefNotPermitted), fmt.Sprintf("no ReferenceGrant in %s allows this route to use Service %s", ns, b.Name))
			case in.Services[key(ns, string(b.Name))] == nil:
				be.Invalid = true
				fail(string(gwv1.RouteReasonBackendNotFound), fmt.Sprintf("service %s/%s does not exist", ns, b.Name))
			case b.Port == nil:
				be.Invalid = true
				fail(string(gwv1.RouteReasonUnsupportedValue), fmt.Sprintf("backendRef %s has no port", b.Name))
			}
			out[i] = append(out[i], be)
		}
	}
	return out, resolved, reason, msg
}

// SameConditions says whether two condition lists agree in everything but
// transition times.
func SameConditions(a, b []metav1.Condition) bool {
	if len(a) != len(b) {
		return false
	}
	for _, c := range a {
		o := meta.FindStatusCondition(b, c.Type)
		if o == nil || o.Status != c.Status || o.Reason != c.Reason || o.Message != c.Message || o.ObservedGeneration != c.ObservedGeneration {
			return false
		}
	}
	return true
}

// KeepTransitions sets each condition's lastTransitionTime: the old one
// where the status did not change, else now.
func KeepTransitions(conds, old []metav1.Condition, now metav1.Time) {
	for i := range conds {
		if o := meta.FindStatusCondition(old, conds[i].Type); o != nil && o.Status == conds[i].Status {
			conds[i].LastTransitionTime = o.LastTransitionTime
		} else {
			conds[i].LastTransitionTime = now
		}
	}
}
