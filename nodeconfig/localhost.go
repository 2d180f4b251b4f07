package nodeconfig

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// AnnotationLocalhostPorts is set on a LoadBalancer Service whose ports are
// also published on the host's 127.0.0.1 (see DockerRuntime.PublishLocalhost):
// "SERVICEPORT:HOSTPORT" per TCP port, "SERVICEPORT/udp:HOSTPORT" per UDP
// port, comma-separated, so clients on the host find each port.
const AnnotationLocalhostPorts = "minik.dev/localhost-ports"

// LocalhostPort is one Service port published on the host's 127.0.0.1.
type LocalhostPort struct {
	// Protocol is "tcp" or "udp".
	Protocol string
	Port     int
	HostPort int
}

// FormatLocalhostPorts renders ports as AnnotationLocalhostPorts wants,
// sorted so that the same mapping is always the same text.
func FormatLocalhostPorts(ports []LocalhostPort) string {
	ps := append([]LocalhostPort(nil), ports...)
	sort.Slice(ps, func(i, j int) bool {
		if ps[i].Port != ps[j].Port {
			return ps[i].Port < ps[j].Port
		}
		return ps[i].Protocol < ps[j].Protocol
	})
	parts := make([]string, 0, len(ps))
	for _, p := range ps {
		s := strconv.Itoa(p.Port)
		if p.Protocol == "udp" {
			s += "/udp"
		}
		parts = append(parts, s+":"+strconv.Itoa(p.HostPort))
	}
	return strings.Join(parts, ",")
}

// ParseLocalhostPorts reads an AnnotationLocalhostPorts value.
func ParseLocalhostPorts(s string) ([]LocalhostPort, error) {
	var out []LocalhostPort
	if strings.TrimSpace(s) == "" {
		return out, nil
	}
	for _, part := range strings.Split(s, ",") {
		svc, host, ok := strings.Cut(strings.TrimSpace(part), ":")
		if !ok {
			return nil, fmt.Errorf("localhost port %q is not SERVICEPORT:HOSTPORT", part)
		}
		proto := "tcp"
		if p, pr, ok := strings.Cut(svc, "/"); ok {
			svc, proto = p, strings.ToLower(pr)
			if proto != "tcp" && proto != "udp" {
				return nil, fmt.Errorf("localhost port %q: protocol %q is neither tcp nor udp", part, pr)
			}
		}
		port, err := parsePort(svc)
		if err != nil {
			return nil, fmt.Errorf("localhost port %q: %w", part, err)
		}
		hp, err := parsePort(host)
		if err != nil {
			return nil, fmt.Errorf("localhost port %q: %w", part, err)
		}
		out = append(out, LocalhostPort{Protocol: proto, Port: port, HostPort: hp})
	}
	return out, nil
}

// LocalhostHostPort is the host port of a Service port in ports, 0 if it
// is not published.
func LocalhostHostPort(ports []LocalhostPort, protocol string, port int) int {
	for _, p := range ports {
		if p.Protocol == protocol && p.Port == port {
			return p.HostPort
		}
	}
	return 0
}

func parsePort(s string) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > 65535 {
		return 0, fmt.Errorf("port %q is not 1 to 65535", s)
	}
	return n, nil
}
