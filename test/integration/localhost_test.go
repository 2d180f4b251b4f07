package integration

import (
	"context"
	"fmt"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
)

const annotationLocalhostPorts = "minik.dev/localhost-ports"

// localhostPorts waits for the Service's 127.0.0.1 entry and its ports
// annotation, and returns the annotation's mapping ("80" or "9000/udp" to
// the host port).
func localhostPorts(t *testing.T, ctx context.Context, c kubernetes.Interface, name string, want int) map[string]string {
	t.Helper()
	var ports map[string]string
	eventually(t, time.Minute, "127.0.0.1 in the status of "+name, func() (bool, string) {
		s, err := c.CoreV1().Services("default").Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		in := s.Status.LoadBalancer.Ingress
		if len(in) != 2 || in[1].IP != "127.0.0.1" {
			return false, fmt.Sprintf("%+v", s.Status)
		}
		ports = map[string]string{}
		for _, p := range strings.Split(s.Annotations[annotationLocalhostPorts], ",") {
			if k, v, ok := strings.Cut(p, ":"); ok {
				ports[k] = v
			}
		}
		return len(ports) == want, fmt.Sprint(s.Annotations)
	})
	return ports
}

func forwarders(t *testing.T, profile, service string) []string {
	t.Helper()
	return strings.Fields(docker(t, "ps", "-aq", "--filter", "label="+labelCluster+"="+profile,
		"--filter", "label=dev.minik.kind=forwarder", "--filter", "label=dev.minik.service="+service))
}

// TestLoadBalancerLocalhostDocker covers the mode of Docker Desktop, whose
// cluster networks the host does not reach: --publish-localhost forces it.
func TestLoadBalancerLocalhostDocker(t *testing.T) {
	requireEngine(t)
	keepNodeImages(t)
	h := newHarness(t)
	h.env = slices.DeleteFunc(h.env, func(e string) bool { return strings.HasPrefix(e, "MINIK_DRIVER=") })
	const profile = "lblocal"
	removeCluster(t, h, profile)
	image := buildApp(t)
	h.startJSON("-p", profile, "--driver", "docker", "--publish-localhost")
	c := clientFor(t, h.kubeconfig, profile)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()

	d := appDeployment("web", image, 1)
	d.Spec.Template.Spec.Containers = append(d.Spec.Template.Spec.Containers, corev1.Container{
		Name: "udp", Image: image, Args: []string{"udpecho"},
		Ports: []corev1.ContainerPort{{Name: "echo", ContainerPort: 9000, Protocol: corev1.ProtocolUDP}},
	})
	_, err := c.AppsV1().Deployments("default").Create(ctx, d, metav1.CreateOptions{})
	require.NoError(t, err)
	h.ok(3*time.Minute, "kubectl", "-p", profile, "--", "rollout", "status", "deployment/web", "--timeout=2m")

	// A host port that is free now is the Service port's own; port 80 may
	// be the Ingress Service's already, which sends web's elsewhere.
	udpFree := false
	if pc, err := net.ListenPacket("udp", "127.0.0.1:9000"); err == nil {
		udpFree = pc.Close() == nil
	}
	_, err = c.CoreV1().Services("default").Create(ctx, loadBalancer("web", "web",
		corev1.ServicePort{Name: "http", Port: 80, TargetPort: intstr.FromString("http")},
		corev1.ServicePort{Name: "echo", Port: 9000, Protocol: corev1.ProtocolUDP, TargetPort: intstr.FromString("echo")},
	), metav1.CreateOptions{})
	require.NoError(t, err)
	ip := lbIP(t, ctx, c, "web")
	require.NotEqual(t, "127.0.0.1", ip, "the pool's address comes first")
	ports := localhostPorts(t, ctx, c, "web", 2)
	httpPort, udpPort := ports["80"], ports["9000/udp"]
	t.Logf("web on 127.0.0.1: %v (9000/udp free before: %v)", ports, udpFree)
	require.NotEmpty(t, httpPort, "%v", ports)
	require.NotEmpty(t, udpPort, "%v", ports)
	if udpFree {
		require.Equal(t, "9000", udpPort, "a free host port is the Service port's own, whatever became of the others: %v", ports)
	}

	t.Run("TCP and UDP answer on 127.0.0.1", func(t *testing.T) {
		eventually(t, time.Minute, "HTTP on 127.0.0.1", func() (bool, string) {
			body, err := httpGet("http://127.0.0.1:" + httpPort + "/via-localhost")
			return err == nil && strings.Contains(body, "hello from web-"), fmt.Sprint(body, err)
		})
		eventually(t, time.Minute, "UDP on 127.0.0.1", func() (bool, string) {
			got, err := udpAsk(net.JoinHostPort("127.0.0.1", udpPort), "ping")
			return got == "echo ping", fmt.Sprint(got, err)
		})
		urls := strings.Fields(h.ok(time.Minute, "service", "web", "-p", profile, "--url"))
		require.Equal(t, []string{"http://" + ip + ":80", "http://127.0.0.1:" + httpPort}, urls)
		require.Len(t, forwarders(t, profile, "default/web"), 1)
	})

	t.Run("a new port gets published", func(t *testing.T) {
		s, err := c.CoreV1().Services("default").Get(ctx, "web", metav1.GetOptions{})
		require.NoError(t, err)
		s.Spec.Ports = append(s.Spec.Ports, corev1.ServicePort{Name: "alt", Port: 8081, TargetPort: intstr.FromString("http")})
		_, err = c.CoreV1().Services("default").Update(ctx, s, metav1.UpdateOptions{})
		require.NoError(t, err)
		ports := localhostPorts(t, ctx, c, "web", 3)
		eventually(t, time.Minute, "HTTP on the new port", func() (bool, string) {
			body, err := httpGet("http://127.0.0.1:" + ports["8081"] + "/")
			return err == nil && strings.Contains(body, "hello from web-"), fmt.Sprint(body, err)
		})
		require.Len(t, forwarders(t, profile, "default/web"), 1)
	})

	t.Run("stop removes the forwarders, start makes them again", func(t *testing.T) {
		h.ok(3*time.Minute, "stop", "-p", profile)
		require.Empty(t, docker(t, "ps", "-aq", "--filter", "label="+labelCluster+"="+profile, "--filter", "label=dev.minik.kind=forwarder"))
		h.startJSON("-p", profile)
		eventually(t, 2*time.Minute, "the forwarder is back", func() (bool, string) {
			n := forwarders(t, profile, "default/web")
			return len(n) == 1, fmt.Sprint(n)
		})
		// The host ports may differ after a restart: the annotation follows.
		eventually(t, 2*time.Minute, "HTTP on 127.0.0.1 after a restart", func() (bool, string) {
			ports := localhostPorts(t, ctx, c, "web", 3)
			body, err := httpGet("http://127.0.0.1:" + ports["80"] + "/")
			return err == nil && strings.Contains(body, "hello from web-"), fmt.Sprint(ports, body, err)
		})
	})

	t.Run("a Service that stops being a LoadBalancer loses its forwarder and annotation", func(t *testing.T) {
		s, err := c.CoreV1().Services("default").Get(ctx, "web", metav1.GetOptions{})
		require.NoError(t, err)
		s.Spec.Type = corev1.ServiceTypeClusterIP
		_, err = c.CoreV1().Services("default").Update(ctx, s, metav1.UpdateOptions{})
		require.NoError(t, err)
		eventually(t, time.Minute, "no forwarder and no annotation for web", func() (bool, string) {
			n := forwarders(t, profile, "default/web")
			s, err := c.CoreV1().Services("default").Get(ctx, "web", metav1.GetOptions{})
			if err != nil {
				return false, err.Error()
			}
			_, annotated := s.Annotations[annotationLocalhostPorts]
			return len(n) == 0 && !annotated, fmt.Sprint(n, s.Annotations)
		})
		s, err = c.CoreV1().Services("default").Get(ctx, "web", metav1.GetOptions{})
		require.NoError(t, err)
		s.Spec.Type = corev1.ServiceTypeLoadBalancer
		_, err = c.CoreV1().Services("default").Update(ctx, s, metav1.UpdateOptions{})
		require.NoError(t, err)
		localhostPorts(t, ctx, c, "web", 3)
		require.Len(t, forwarders(t, profile, "default/web"), 1)
	})

	t.Run("deleting the Service removes its forwarder", func(t *testing.T) {
		require.NoError(t, c.CoreV1().Services("default").Delete(ctx, "web", metav1.DeleteOptions{}))
		eventually(t, time.Minute, "no forwarder for web", func() (bool, string) {
			n := forwarders(t, profile, "default/web")
			return len(n) == 0, fmt.Sprint(n)
		})
	})

	h.ok(2*time.Minute, "delete", "-p", profile)
	require.Empty(t, labelled(t, profile))
}
