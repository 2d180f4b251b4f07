package services

import (
	"net"
	"strings"

	"golang.org/x/net/dns/dnsmessage"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// records answers a name of the cluster's Service zone (labels before
// svc.<domain>), as the Kubernetes DNS specification says:
//
//	SERVICE.NS                  A: the ClusterIP, or a headless Service's ready endpoints;
//	                            CNAME (and its addresses) for an ExternalName Service;
//	                            SRV: one per named port
//	HOSTNAME.SERVICE.NS         A: the endpoint of that hostname (a StatefulSet's pod, say)
//	_PORT._PROTO.SERVICE.NS     SRV: the named port, on the Service's name or,
//	                            headless, on each endpoint's name
//
// found is false for a name that does not exist.
func (d *dnsServer) records(parts []string, q dnsmessage.Question, zone, network string) ([]dnsmessage.Resource, bool) {
	p := d.proxy
	rr := func(typ dnsmessage.Type, body dnsmessage.ResourceBody) dnsmessage.Resource {
		return dnsmessage.Resource{Header: dnsmessage.ResourceHeader{Name: q.Name, Type: typ, Class: dnsmessage.ClassINET, TTL: dnsTTL}, Body: body}
	}
	wants := func(t dnsmessage.Type) bool { return q.Type == t || q.Type == dnsmessage.TypeALL }
	a := func(ips []net.IP) []dnsmessage.Resource {
		var out []dnsmessage.Resource
		for _, ip := range ips {
			if v4 := ip.To4(); v4 != nil {
				out = append(out, rr(dnsmessage.TypeA, &dnsmessage.AResource{A: [4]byte(v4)}))
			}
		}
		return out
	}
	switch len(parts) {
	case 2:
		svc, err := p.services.Services(parts[1]).Get(parts[0])
		if err != nil {
			return nil, false
		}
		var out []dnsmessage.Resource
		if svc.Spec.Type == corev1.ServiceTypeExternalName {
			target := strings.TrimSuffix(svc.Spec.ExternalName, ".") + "."
			out = append(out, rr(dnsmessage.TypeCNAME, &dnsmessage.CNAMEResource{CNAME: dnsmessage.MustNewName(target)}))
			if wants(dnsmessage.TypeA) {
				out = append(out, d.chase(target, zone, network)...)
			}
			return out, true
		}
		if wants(dnsmessage.TypeA) {
			ips, _ := p.serviceIPs(parts[1], parts[0])
			out = append(out, a(ips)...)
		}
		if wants(dnsmessage.TypeSRV) {
			for _, sp := range svc.Spec.Ports {
				if sp.Name != "" {
					out = append(out, d.srv(rr, svc, sp, parts[0]+"."+parts[1]+"."+zone)...)
				}
			}
		}
		return out, true
	case 3:
		ips := p.hostnameIPs(parts[2], parts[1], parts[0])
		if ips == nil {
			return nil, false
		}
		if wants(dnsmessage.TypeA) {
			return a(ips), true
		}
		return nil, true
	case 4:
		port, proto := strings.TrimPrefix(parts[0], "_"), strings.ToUpper(strings.TrimPrefix(parts[1], "_"))
		svc, err := p.services.Services(parts[3]).Get(parts[2])
		if err != nil || !strings.HasPrefix(parts[0], "_") || !strings.HasPrefix(parts[1], "_") {
			return nil, false
		}
		for _, sp := range svc.Spec.Ports {
			if sp.Name == port && string(protocolOf(sp)) == proto {
				if !wants(dnsmessage.TypeSRV) {
					return nil, true
				}
				return d.srv(rr, svc, sp, parts[2]+"."+parts[3]+"."+zone), true
			}
		}
	}
	return nil, false
}

func protocolOf(sp corev1.ServicePort) corev1.Protocol {
	if sp.Protocol == "" {
		return corev1.ProtocolTCP
	}
	return sp.Protocol
}

// srv is a Service port's SRV records: on the Service's name, or for a
// headless Service on each ready endpoint's name (its hostname, else its
// address with dashes).
func (d *dnsServer) srv(rr func(dnsmessage.Type, dnsmessage.ResourceBody) dnsmessage.Resource, svc *corev1.Service, sp corev1.ServicePort, svcName string) []dnsmessage.Resource {
	if svc.Spec.ClusterIP != corev1.ClusterIPNone {
		return []dnsmessage.Resource{rr(dnsmessage.TypeSRV, &dnsmessage.SRVResource{Priority: 0, Weight: 100, Port: uint16(sp.Port), Target: dnsmessage.MustNewName(svcName)})}
	}
	var out []dnsmessage.Resource
	for _, ep := range d.proxy.readyEndpoints(svc.Namespace, svc.Name) {
		host := ep.hostname
		if host == "" {
			host = strings.ReplaceAll(ep.ip, ".", "-")
		}
		port := sp.Port
		if ep.ports[sp.Name] != 0 {
			port = ep.ports[sp.Name]
		}
		out = append(out, rr(dnsmessage.TypeSRV, &dnsmessage.SRVResource{Priority: 0, Weight: 100, Port: uint16(port), Target: dnsmessage.MustNewName(host + "." + svcName)}))
	}
	return out
}

// chase resolves the target of a CNAME: in the cluster's zone from the
// informers, elsewhere through the upstream resolver.
func (d *dnsServer) chase(target, zone, network string) []dnsmessage.Resource {
	q := dnsmessage.Question{Name: dnsmessage.MustNewName(target), Type: dnsmessage.TypeA, Class: dnsmessage.ClassINET}
	if rest, ok := strings.CutSuffix(strings.ToLower(target), "."+zone); ok {
		answers, _ := d.records(strings.Split(rest, "."), q, zone, network)
		return answers
	}
	msg := dnsmessage.Message{Header: dnsmessage.Header{ID: 1, RecursionDesired: true}, Questions: []dnsmessage.Question{q}}
	packed, err := msg.Pack()
	if err != nil {
		return nil
	}
	resp := d.forward(packed, network)
	var reply dnsmessage.Message
	if resp == nil || reply.Unpack(resp) != nil {
		return nil
	}
	return reply.Answers
}

// reverse answers a PTR name (D.C.B.A.in-addr.arpa.) as the Kubernetes DNS
// specification says: a Service's ClusterIP names the Service, a headless
// Service's endpoint with a hostname names HOSTNAME.SERVICE.NS. ok is false
// for an address that is neither, which the upstream resolver answers.
func (d *dnsServer) reverse(name, zone string) (targets []string, ok bool) {
	labels4 := strings.Split(strings.TrimSuffix(name, ".in-addr.arpa."), ".")
	if len(labels4) != 4 {
		return nil, false
	}
	ip := net.ParseIP(labels4[3] + "." + labels4[2] + "." + labels4[1] + "." + labels4[0])
	if ip == nil {
		return nil, false
	}
	services, err := d.proxy.services.List(labels.Everything())
	if err != nil {
		return nil, false
	}
	for _, svc := range services {
		for _, cip := range append([]string{svc.Spec.ClusterIP}, svc.Spec.ClusterIPs...) {
			if cip != "" && net.ParseIP(cip).Equal(ip) {
				return []string{svc.Name + "." + svc.Namespace + "." + zone}, true
			}
		}
	}
	for _, svc := range services {
		if svc.Spec.ClusterIP != corev1.ClusterIPNone {
			continue
		}
		for _, ep := range d.proxy.readyEndpoints(svc.Namespace, svc.Name) {
			if ep.hostname != "" && net.ParseIP(ep.ip).Equal(ip) {
				targets = append(targets, ep.hostname+"."+svc.Name+"."+svc.Namespace+"."+zone)
			}
		}
	}
	return targets, len(targets) > 0
}

// endpointInfo is one ready endpoint of a Service.
type endpointInfo struct {
	ip, hostname string
	ports        map[string]int32
}

func (p *Proxy) readyEndpoints(namespace, service string) []endpointInfo {
	sel := labels.SelectorFromSet(labels.Set{discoveryv1.LabelServiceName: service})
	slices, _ := p.slices.EndpointSlices(namespace).List(sel)
	var out []endpointInfo
	for _, s := range slices {
		ports := map[string]int32{}
		for _, sp := range s.Ports {
			if sp.Port != nil {
				ports[ptrString(sp.Name)] = *sp.Port
			}
		}
		for _, ep := range s.Endpoints {
			if ep.Conditions.Ready != nil && !*ep.Conditions.Ready {
				continue
			}
			for _, a := range ep.Addresses {
				out = append(out, endpointInfo{ip: a, hostname: ptrString(ep.Hostname), ports: ports})
			}
		}
	}
	return out
}

// hostnameIPs are the addresses of the endpoint of a headless Service with
// that hostname (HOSTNAME.SERVICE.NS), or nil when there is none.
func (p *Proxy) hostnameIPs(namespace, service, hostname string) []net.IP {
	var out []net.IP
	for _, ep := range p.readyEndpoints(namespace, service) {
		if ep.hostname == hostname {
			out = append(out, net.ParseIP(ep.ip))
		}
	}
	return out
}
