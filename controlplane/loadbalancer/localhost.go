package loadbalancer

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net"
	"net/netip"
	"regexp"
	"sort"
	"strconv"
	"strings"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"

	"minik.dev/minik/forward"
	"minik.dev/minik/kubelet/engine"
	"minik.dev/minik/nodeconfig"
)

// Loopback is the extra address of a Service whose ports are published on
// the host's 127.0.0.1.
const Loopback = "127.0.0.1"

// Localhost publishes LoadBalancer Services' ports on the host's
// 127.0.0.1, for hosts that do not route to the cluster's network (Docker
// Desktop): one forwarder container per Service, on the cluster's network,
// with the engine publishing its ports on the host's loopback.
type Localhost struct {
	cli     *client.Client
	kube    kubernetes.Interface
	cluster string
	node    string
	cfg     nodeconfig.DockerRuntime
}

// NewLocalhost returns nil when the mode is off: it is on when cfg forces
// it or when the engine is Docker Desktop.
func NewLocalhost(ctx context.Context, kube kubernetes.Interface, cluster, node string, cfg nodeconfig.DockerRuntime) (*Localhost, error) {
	cli, err := engine.Dial(ctx, cfg.Host)
	if err != nil {
		return nil, err
	}
	if !cfg.PublishLocalhost {
		info, err := cli.Info(ctx, client.InfoOptions{})
		if err != nil {
			_ = cli.Close()
			return nil, fmt.Errorf("docker engine info: %w", err)
		}
		if !strings.Contains(info.Info.OperatingSystem, "Docker Desktop") {
			_ = cli.Close()
			return nil, nil
		}
	}
	return &Localhost{cli: cli, kube: kube, cluster: cluster, node: node, cfg: cfg}, nil
}

// forwardRules are the forwarder's rules for a Service at ip: every TCP
// and UDP port, to the same port of the Service's address.
func forwardRules(s *corev1.Service, ip string) []forward.Rule {
	var rules []forward.Rule
	for _, p := range s.Spec.Ports {
		proto := strings.ToLower(string(p.Protocol))
		if proto == "" {
			proto = "tcp"
		}
		if proto != "tcp" && proto != "udp" {
			continue // SCTP: the engine publishes it, but nothing here relays it
		}
		rules = append(rules, forward.Rule{Protocol: proto, Port: int(p.Port), Target: net.JoinHostPort(ip, strconv.Itoa(int(p.Port)))})
	}
	sort.Slice(rules, func(i, j int) bool { return rules[i].String() < rules[j].String() })
	return rules
}

// rulesHash says what a forwarder was made for: another hash means other
// ports or another address, so a new forwarder.
func rulesHash(rules []forward.Rule) string {
	h := sha256.New()
	for _, r := range rules {
		fmt.Fprintln(h, r.String())
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}

// publishedPorts reads the host ports the engine gave a forwarder's ports.
func publishedPorts(pm network.PortMap) []nodeconfig.LocalhostPort {
	var out []nodeconfig.LocalhostPort
	for p, bs := range pm {
		for _, b := range bs {
			hp, err := strconv.Atoi(b.HostPort)
			if err != nil || hp == 0 || (b.HostIP.IsValid() && !b.HostIP.IsLoopback()) {
				continue
			}
			out = append(out, nodeconfig.LocalhostPort{Protocol: string(p.Proto()), Port: int(p.Num()), HostPort: hp})
			break
		}
	}
	return out
}

func (l *Localhost) filter(key string) client.Filters {
	f := make(client.Filters).Add("label", nodeconfig.LabelCluster+"="+l.cluster).
		Add("label", nodeconfig.LabelKind+"="+nodeconfig.KindForwarder)
	if key != "" {
		f = f.Add("label", nodeconfig.LabelService+"="+key)
	}
	return f
}

// Ensure makes s's forwarder to ip, if it has none that fits, and writes
// its host ports into the Service's annotation.
func (l *Localhost) Ensure(ctx context.Context, s *corev1.Service, ip string) error {
	rules := forwardRules(s, ip)
	if len(rules) == 0 {
		return l.Remove(ctx, key(s))
	}
	hash := rulesHash(rules)
	list, err := l.cli.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: l.filter(key(s))})
	if err != nil {
		return fmt.Errorf("list forwarders of %s: %w", key(s), err)
	}
	var id string
	for _, c := range list.Items {
		if id == "" && c.State == container.StateRunning && c.Labels[nodeconfig.LabelServiceHash] == hash {
			id = c.ID
			continue
		}
		if err := l.remove(ctx, c.ID); err != nil {
			return err
		}
	}
	if id == "" {
		if id, err = l.start(ctx, s, rules, hash); err != nil {
			return err
		}
	}
	res, err := l.cli.ContainerInspect(ctx, id, client.ContainerInspectOptions{})
	if err != nil {
		return fmt.Errorf("inspect forwarder of %s: %w", key(s), err)
	}
	var ports []nodeconfig.LocalhostPort
	if ns := res.Container.NetworkSettings; ns != nil {
		ports = publishedPorts(ns.Ports)
	}
	return l.annotate(ctx, s, nodeconfig.FormatLocalhostPorts(ports))
}

func (l *Localhost) annotate(ctx context.Context, s *corev1.Service, value string) error {
	if s.Annotations[nodeconfig.AnnotationLocalhostPorts] == value {
		return nil
	}
	v := "null"
	if value != "" {
		v = strconv.Quote(value)
	}
	patch := fmt.Sprintf(`{"metadata":{"annotations":{%q:%s}}}`, nodeconfig.AnnotationLocalhostPorts, v)
	if _, err := l.kube.CoreV1().Services(s.Namespace).Patch(ctx, s.Name, types.MergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
		return fmt.Errorf("annotate %s with its localhost ports: %w", key(s), err)
	}
	return nil
}

// start runs a forwarder with each port on the same host port when the
// host has it free, else on one the engine picks: the engine names the
// port it could not bind, which then goes to the engine's choice, one at a
// time; an error that names none sends them all.
func (l *Localhost) start(ctx context.Context, s *corev1.Service, rules []forward.Rule, hash string) (string, error) {
	anyPort := map[string]bool{}
	for {
		id, err := l.run(ctx, s, rules, hash, anyPort)
		if err == nil {
			return id, nil
		}
		if len(anyPort) == len(rules) {
			return "", err
		}
		if r, ok := takenPort(err, rules, anyPort); ok {
			anyPort[r] = true
			continue
		}
		for _, r := range rules {
			anyPort[r.String()] = true
		}
	}
}

// takenPortRE finds the host port in the engine's "Bind for
// 127.0.0.1:80 failed: port is already allocated" and the kernel's
// "listen tcp4 127.0.0.1:80: bind: address already in use".
var takenPortRE = regexp.MustCompile(`127\.0\.0\.1:(\d+)`)

// takenPort is the rule, still on its own port, whose host port err says
// is taken.
func takenPort(err error, rules []forward.Rule, anyPort map[string]bool) (string, bool) {
	m := takenPortRE.FindStringSubmatch(err.Error())
	if m == nil {
		return "", false
	}
	port, _ := strconv.Atoi(m[1])
	for _, r := range rules {
		if r.Port == port && !anyPort[r.String()] {
			return r.String(), true
		}
	}
	return "", false
}

// run creates and starts a forwarder: a port of a rule in anyPort goes on
// a host port the engine picks, any other on its own.
func (l *Localhost) run(ctx context.Context, s *corev1.Service, rules []forward.Rule, hash string, anyPort map[string]bool) (string, error) {
	cmd := []string{"/minik-node", "forward"}
	if len(l.cfg.SandboxCommand) > 0 {
		cmd = []string{l.cfg.SandboxCommand[0], "forward"}
	}
	exposed := network.PortSet{}
	bindings := network.PortMap{}
	for _, r := range rules {
		cmd = append(cmd, r.String())
		p, err := network.ParsePort(strconv.Itoa(r.Port) + "/" + r.Protocol)
		if err != nil {
			return "", fmt.Errorf("forwarder port %s: %w", r, err)
		}
		exposed[p] = struct{}{}
		hp := ""
		if !anyPort[r.String()] {
			hp = strconv.Itoa(r.Port)
		}
		bindings[p] = []network.PortBinding{{HostIP: netip.MustParseAddr(Loopback), HostPort: hp}}
	}
	name := fmt.Sprintf("k8s_LB_%s_%s_%s", s.Name, s.Namespace, l.cluster)
	res, err := l.cli.ContainerCreate(ctx, client.ContainerCreateOptions{
		Name: name,
		Config: &container.Config{
			Image:        l.cfg.SandboxImage,
			Entrypoint:   cmd,
			Cmd:          []string{},
			ExposedPorts: exposed,
			Labels: map[string]string{
				nodeconfig.LabelCluster:     l.cluster,
				nodeconfig.LabelNode:        l.node,
				nodeconfig.LabelKind:        nodeconfig.KindForwarder,
				nodeconfig.LabelService:     key(s),
				nodeconfig.LabelServiceHash: hash,
			},
		},
		HostConfig: &container.HostConfig{
			NetworkMode:  container.NetworkMode(l.cfg.Network),
			PortBindings: bindings,
		},
		NetworkingConfig: &network.NetworkingConfig{
			EndpointsConfig: map[string]*network.EndpointSettings{l.cfg.Network: {}},
		},
	})
	if err != nil {
		return "", fmt.Errorf("create forwarder of %s: %w", key(s), err)
	}
	if _, err := l.cli.ContainerStart(ctx, res.ID, client.ContainerStartOptions{}); err != nil {
		_ = l.remove(ctx, res.ID)
		return "", fmt.Errorf("start forwarder of %s: %w", key(s), err)
	}
	return res.ID, nil
}

// Remove removes the forwarder of the Service key (namespace/name).
func (l *Localhost) Remove(ctx context.Context, key string) error {
	list, err := l.cli.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: l.filter(key)})
	if err != nil {
		return fmt.Errorf("list forwarders of %s: %w", key, err)
	}
	for _, c := range list.Items {
		if err := l.remove(ctx, c.ID); err != nil {
			return err
		}
	}
	return nil
}

func (l *Localhost) remove(ctx context.Context, id string) error {
	_, err := l.cli.ContainerRemove(ctx, id, client.ContainerRemoveOptions{Force: true})
	if err != nil && !cerrdefs.IsNotFound(err) && !(cerrdefs.IsConflict(err) && strings.Contains(err.Error(), "already in progress")) {
		return fmt.Errorf("remove forwarder %s: %w", id, err)
	}
	return nil
}
