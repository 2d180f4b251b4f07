package cluster

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
	gwclient "sigs.k8s.io/gateway-api/pkg/client/clientset/versioned"
)

// gatewayControllerName is the controllerName minik writes in the route
// statuses it owns (package gateway's ControllerName; that package links
// the apiextensions server, which the CLI must not).
const gatewayControllerName = "minik.dev/gateway"

// httpRouteURLs are the URLs of the HTTPRoute rules that send to the
// Service, on the addresses of the Gateways that accepted the routes:
// "http://ADDRESS[:PORT]/PATH (httproute NAME, Host: HOST)".
func httpRouteURLs(ctx context.Context, rc *rest.Config, svc *corev1.Service) ([]string, error) {
	gw, err := gwclient.NewForConfig(rc)
	if err != nil {
		return nil, fmt.Errorf("create the gateway client: %w", err)
	}
	// A route in another namespace may send to the Service (with a
	// ReferenceGrant), so every namespace is searched.
	routes, err := gw.GatewayV1().HTTPRoutes(metav1.NamespaceAll).List(ctx, metav1.ListOptions{})
	if apierrors.IsNotFound(err) || meta.IsNoMatchError(err) {
		return nil, nil // no Gateway API in this cluster
	}
	if err != nil {
		return nil, fmt.Errorf("list httproutes: %w", err)
	}
	gateways := map[string]*gwv1.Gateway{}
	var out []string
	for i := range routes.Items {
		r := &routes.Items[i]
		if !routeSendsTo(r, svc) {
			continue
		}
		for _, ref := range r.Spec.ParentRefs {
			if !isGatewayRef(ref) {
				continue
			}
			ns := r.Namespace
			if ref.Namespace != nil {
				ns = string(*ref.Namespace)
			}
			key := ns + "/" + string(ref.Name)
			g, seen := gateways[key]
			if !seen {
				g, err = gw.GatewayV1().Gateways(ns).Get(ctx, string(ref.Name), metav1.GetOptions{})
				if apierrors.IsNotFound(err) {
					g = nil
				} else if err != nil {
					return nil, fmt.Errorf("get gateway %s: %w", key, err)
				}
				gateways[key] = g
			}
			if g == nil {
				continue
			}
			out = append(out, routeURLs(r, ref, g, svc)...)
		}
	}
	return dedupe(out), nil
}

func isGatewayRef(ref gwv1.ParentReference) bool {
	return (ref.Group == nil || string(*ref.Group) == gwv1.GroupName) && (ref.Kind == nil || *ref.Kind == "Gateway")
}

// routeSendsTo says whether a backendRef of one of the route's rules is the
// Service.
func routeSendsTo(r *gwv1.HTTPRoute, svc *corev1.Service) bool {
	for _, rule := range r.Spec.Rules {
		if ruleSendsTo(r, rule, svc) {
			return true
		}
	}
	return false
}

func ruleSendsTo(r *gwv1.HTTPRoute, rule gwv1.HTTPRouteRule, svc *corev1.Service) bool {
	for _, b := range rule.BackendRefs {
		ref := b.BackendObjectReference
		if ref.Group != nil && *ref.Group != "" && *ref.Group != "core" {
			continue
		}
		if ref.Kind != nil && *ref.Kind != "Service" {
			continue
		}
		ns := r.Namespace
		if ref.Namespace != nil {
			ns = string(*ref.Namespace)
		}
		if ns == svc.Namespace && string(ref.Name) == svc.Name {
			return true
		}
	}
	return false
}

// routeURLs are the URLs of one route through one of its parent Gateways:
// nothing unless minik accepted the route there; one URL per Gateway
// address, listener the parentRef selects, hostname and path match of a
// rule that sends to the Service.
func routeURLs(r *gwv1.HTTPRoute, ref gwv1.ParentReference, g *gwv1.Gateway, svc *corev1.Service) []string {
	if !routeAcceptedBy(r, ref) {
		return nil
	}
	var addrs []string
	for _, a := range g.Status.Addresses {
		if a.Type == nil || *a.Type == gwv1.IPAddressType {
			addrs = append(addrs, a.Value)
		}
	}
	var out []string
	for _, l := range g.Spec.Listeners {
		if ref.SectionName != nil && *ref.SectionName != l.Name {
			continue
		}
		if ref.Port != nil && *ref.Port != l.Port {
			continue
		}
		scheme := ""
		switch l.Protocol {
		case gwv1.HTTPProtocolType:
			scheme = "http"
		case gwv1.HTTPSProtocolType:
			scheme = "https"
		default:
			continue
		}
		hosts, ok := routeHosts(r.Spec.Hostnames, l.Hostname)
		if !ok {
			continue
		}
		for _, rule := range r.Spec.Rules {
			if !ruleSendsTo(r, rule, svc) {
				continue
			}
			for _, path := range rulePaths(rule) {
				for _, a := range addrs {
					base := scheme + "://" + hostPort(a, int(l.Port), scheme)
					for _, h := range hosts {
						u := base + path.value + " (httproute " + r.Name
						if r.Namespace != svc.Namespace {
							u = base + path.value + " (httproute " + r.Namespace + "/" + r.Name
						}
						if path.note != "" {
							u += ", " + path.note
						}
						if h != "" {
							u += ", Host: " + h
						}
						out = append(out, u+")")
					}
				}
			}
		}
	}
	return out
}

// routeAcceptedBy says whether minik's status for the parentRef says
// Accepted: a route the Gateway refused is reached on none of its URLs.
func routeAcceptedBy(r *gwv1.HTTPRoute, ref gwv1.ParentReference) bool {
	for _, p := range r.Status.Parents {
		if p.ControllerName != gatewayControllerName || p.ParentRef.Name != ref.Name ||
			!sameOptional(p.ParentRef.Namespace, ref.Namespace) || !sameOptional(p.ParentRef.SectionName, ref.SectionName) ||
			!sameOptional(p.ParentRef.Port, ref.Port) {
			continue
		}
		return meta.IsStatusConditionTrue(p.Conditions, string(gwv1.RouteConditionAccepted))
	}
	return false
}

func sameOptional[T comparable](a, b *T) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	return *a == *b
}

// routeHosts are the Host headers a route is reached with on a listener:
// the route's hostnames that the listener's admits (the more specific of
// the two when one is a wildcard), the listener's own when the route names
// none, "" when neither does. ok is false when none intersect.
func routeHosts(routeNames []gwv1.Hostname, listener *gwv1.Hostname) (hosts []string, ok bool) {
	lh := ""
	if listener != nil {
		lh = string(*listener)
	}
	if len(routeNames) == 0 {
		return []string{lh}, true
	}
	for _, n := range routeNames {
		rh := string(n)
		switch {
		case lh == "" || lh == rh:
			hosts = append(hosts, rh)
		case wildcardCovers(lh, rh):
			hosts = append(hosts, rh)
		case wildcardCovers(rh, lh):
			hosts = append(hosts, lh)
		}
	}
	return hosts, len(hosts) > 0
}

// wildcardCovers says whether pattern "*.example.com" covers name (one or
// more labels before the suffix), as Gateway API's hostname matching does.
func wildcardCovers(pattern, name string) bool {
	suffix, ok := strings.CutPrefix(pattern, "*")
	if !ok || strings.HasPrefix(name, "*") {
		return false
	}
	return strings.HasSuffix(name, suffix) && len(name) > len(suffix)
}

type routePath struct {
	value string
	// note says how to read value when it is not a plain path prefix.
	note string
}

// rulePaths are the paths of a rule's matches; a rule without matches
// matches every path.
func rulePaths(rule gwv1.HTTPRouteRule) []routePath {
	if len(rule.Matches) == 0 {
		return []routePath{{value: "/"}}
	}
	var out []routePath
	for _, m := range rule.Matches {
		p := routePath{value: "/"}
		if m.Path != nil && m.Path.Value != nil {
			p.value = *m.Path.Value
			if m.Path.Type != nil {
				switch *m.Path.Type {
				case gwv1.PathMatchExact:
					p.note = "exact path"
				case gwv1.PathMatchRegularExpression:
					p = routePath{value: "/", note: "path matching " + *m.Path.Value}
				}
			}
		}
		out = append(out, p)
	}
	return out
}

// hostPort leaves out a scheme's default port.
func hostPort(addr string, port int, scheme string) string {
	if (scheme == "http" && port == 80) || (scheme == "https" && port == 443) {
		if strings.Contains(addr, ":") {
			return "[" + addr + "]"
		}
		return addr
	}
	return net.JoinHostPort(addr, strconv.Itoa(port))
}

func dedupe(s []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, v := range s {
		if !seen[v] {
			seen[v] = true
			out = append(out, v)
		}
	}
	return out
}
