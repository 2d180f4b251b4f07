package cluster

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"minik.dev/minik/nodeconfig"
)

// ErrSimulatedService is returned for a Service of a cluster whose pods are
// simulated: nothing answers on its address.
var ErrSimulatedService = errors.New("services of this cluster are simulated")

// ServiceURLs are the URLs on which this machine reaches a Service: its
// LoadBalancer addresses, or its ClusterIP, all on the cluster's own
// network, one URL per TCP port; then those of the Ingress rules and
// HTTPRoutes that send to it.
func (m *Manager) ServiceURLs(ctx context.Context, profile, namespace, name string) ([]string, error) {
	if err := ValidateName(profile); err != nil {
		return nil, err
	}
	p, err := m.store.Load(profile)
	if err != nil {
		return nil, err
	}
	d, err := m.drivers.Get(p.Driver)
	if err != nil {
		return nil, err
	}
	info := d.Info()
	simulated := fmt.Errorf("%w: the %s driver runs pods on the %s runtime, so nothing answers on a Service's address; use the docker driver for real Services", ErrSimulatedService, p.Driver, info.Runtime)
	rc, err := adminRESTConfig(m.store.AdminKubeconfig(p.Name))
	if err != nil {
		if !info.ServicesReachable {
			return nil, simulated
		}
		return nil, err
	}
	client, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return nil, fmt.Errorf("create admin client: %w", err)
	}
	svc, err := client.CoreV1().Services(namespace).Get(ctx, name, metav1.GetOptions{})
	// minik's own servers (Prometheus) answer on a node's address, which
	// this machine reaches on every driver.
	if err == nil && svc.Labels[nodeconfig.NodeServedLabel] == "true" {
		u := svc.Annotations[nodeconfig.NodeURLAnnotation]
		if u == "" {
			return nil, fmt.Errorf("service %s/%s has no endpoint yet", namespace, name)
		}
		return []string{u}, nil
	}
	if !info.ServicesReachable {
		return nil, simulated
	}
	if apierrors.IsNotFound(err) {
		return nil, fmt.Errorf("service %s/%s not found in cluster %s", namespace, name, p.Name)
	}
	if err != nil {
		return nil, fmt.Errorf("get service %s/%s: %w", namespace, name, err)
	}
	ip := svc.Spec.ClusterIP
	if ip == "" || ip == corev1.ClusterIPNone {
		return nil, fmt.Errorf("service %s/%s is headless: it has no address of its own; reach its pods by their IPs", namespace, name)
	}
	// A LoadBalancer is reached on its own addresses (also on the
	// cluster's network), once it has them.
	ips := []string{ip}
	if svc.Spec.Type == corev1.ServiceTypeLoadBalancer {
		var lb []string
		for _, in := range svc.Status.LoadBalancer.Ingress {
			if in.IP != "" {
				lb = append(lb, in.IP)
			}
		}
		if len(lb) > 0 {
			ips = lb
		}
	}
	// On 127.0.0.1 a port is on the host port the annotation says.
	local, _ := nodeconfig.ParseLocalhostPorts(svc.Annotations[nodeconfig.AnnotationLocalhostPorts])
	var urls []string
	for _, ip := range ips {
		for _, port := range svc.Spec.Ports {
			if port.Protocol != "" && port.Protocol != corev1.ProtocolTCP {
				continue
			}
			n := int(port.Port)
			if parsed := net.ParseIP(ip); parsed != nil && parsed.IsLoopback() {
				if n = nodeconfig.LocalhostHostPort(local, "tcp", n); n == 0 {
					continue
				}
			}
			urls = append(urls, urlScheme(port)+"://"+net.JoinHostPort(ip, strconv.Itoa(n)))
		}
	}
	if len(urls) == 0 {
		return nil, fmt.Errorf("service %s/%s has no TCP port", namespace, name)
	}
	ing, err := ingressURLs(ctx, client, namespace, svc)
	if err != nil {
		return nil, err
	}
	routes, err := httpRouteURLs(ctx, rc, svc)
	if err != nil {
		return nil, err
	}
	urls = append(urls, ing...)
	return append(urls, routes...), nil
}

// ingressURLs are the URLs of the Ingress rules that send to the Service,
// on the Ingresses' addresses: "http://ADDRESS/PATH (ingress NAME)", with
// ", Host: HOST" in the parentheses for a rule of one host, since that
// name is not in any DNS.
func ingressURLs(ctx context.Context, client kubernetes.Interface, namespace string, svc *corev1.Service) ([]string, error) {
	list, err := client.NetworkingV1().Ingresses(namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("list ingresses of %s: %w", namespace, err)
	}
	var out []string
	for _, ing := range list.Items {
		var addrs []string
		for _, lb := range ing.Status.LoadBalancer.Ingress {
			if lb.IP != "" {
				addrs = append(addrs, lb.IP)
			}
		}
		tlsHosts := map[string]bool{}
		for _, t := range ing.Spec.TLS {
			for _, h := range t.Hosts {
				tlsHosts[h] = true
			}
		}
		for _, rule := range ing.Spec.Rules {
			if rule.HTTP == nil {
				continue
			}
			for _, p := range rule.HTTP.Paths {
				if p.Backend.Service == nil || p.Backend.Service.Name != svc.Name {
					continue
				}
				for _, a := range addrs {
					scheme := "http"
					if tlsHosts[rule.Host] {
						scheme = "https"
					}
					u := scheme + "://" + a + p.Path + " (ingress " + ing.Name
					if rule.Host != "" {
						u += ", Host: " + rule.Host
					}
					u += ")"
					out = append(out, u)
				}
			}
		}
	}
	return out, nil
}

// urlScheme guesses https for ports that say so, else http.
func urlScheme(p corev1.ServicePort) string {
	if p.Port == 443 || strings.Contains(strings.ToLower(p.Name), "https") ||
		(p.AppProtocol != nil && strings.EqualFold(*p.AppProtocol, "https")) {
		return "https"
	}
	return "http"
}
