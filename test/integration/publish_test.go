package integration

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"
)

func loadBalancer(name, app string, ports ...corev1.ServicePort) *corev1.Service {
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec:       corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer, Selector: map[string]string{"app": app}, Ports: ports},
	}
}

// lbIP waits for the Service's LoadBalancer address.
func lbIP(t *testing.T, ctx context.Context, c kubernetes.Interface, name string) string {
	t.Helper()
	var ip string
	eventually(t, time.Minute, "EXTERNAL-IP of "+name, func() (bool, string) {
		s, err := c.CoreV1().Services("default").Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		if in := s.Status.LoadBalancer.Ingress; len(in) > 0 {
			ip = in[0].IP
		}
		return ip != "", fmt.Sprintf("%+v", s.Status)
	})
	return ip
}

// statusOf is the status code and body of a GET, 0 when it fails.
func statusOf(url string) (int, string) {
	resp, err := (&http.Client{Timeout: 3 * time.Second}).Get(url)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func udpAsk(addr, msg string) (string, error) {
	conn, err := net.Dial("udp", addr)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := conn.Write([]byte(msg)); err != nil {
		return "", err
	}
	buf := make([]byte, 2048)
	n, err := conn.Read(buf)
	return string(buf[:n]), err
}

func TestLoadBalancerDocker(t *testing.T) {
	requireEngine(t)
	keepNodeImages(t)
	h := newHarness(t)
	h.env = slices.DeleteFunc(h.env, func(e string) bool { return strings.HasPrefix(e, "MINIK_DRIVER=") })
	const profile = "lb"
	removeCluster(t, h, profile)
	image := buildApp(t)
	_, st := h.startJSON("-p", profile, "--driver", "docker", "--nodes", "2")
	c := clientFor(t, h.kubeconfig, profile)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()

	d := appDeployment("web", image, 2)
	d.Spec.Template.Spec.Containers = append(d.Spec.Template.Spec.Containers, corev1.Container{
		Name: "udp", Image: image, Args: []string{"udpecho"},
		Ports: []corev1.ContainerPort{{Name: "echo", ContainerPort: 9000, Protocol: corev1.ProtocolUDP}},
	})
	_, err := c.AppsV1().Deployments("default").Create(ctx, d, metav1.CreateOptions{})
	require.NoError(t, err)
	h.ok(3*time.Minute, "kubectl", "-p", profile, "--", "rollout", "status", "deployment/web", "--timeout=2m")

	svc, err := c.CoreV1().Services("default").Create(ctx, loadBalancer("web", "web",
		corev1.ServicePort{Name: "http", Port: 80, TargetPort: intstr.FromString("http")},
		corev1.ServicePort{Name: "echo", Port: 9000, Protocol: corev1.ProtocolUDP, TargetPort: intstr.FromString("echo")},
	), metav1.CreateOptions{})
	require.NoError(t, err)
	ip := lbIP(t, ctx, c, "web")
	// The address is in the cluster network's load balancer range.
	require.True(t, strings.HasPrefix(ip, strings.Join(strings.Split(st.Nodes[0].IP, ".")[:2], ".")+".48."), "%s from the pool of %s", ip, st.Nodes[0].IP)

	t.Run("TCP and UDP answer from the host, with no tunnel", func(t *testing.T) {
		eventually(t, time.Minute, "HTTP on the LoadBalancer address", func() (bool, string) {
			body, err := httpGet("http://" + ip + "/via-lb")
			return err == nil && strings.Contains(body, "hello from web-"), fmt.Sprint(body, err)
		})
		eventually(t, time.Minute, "UDP on the LoadBalancer address", func() (bool, string) {
			got, err := udpAsk(net.JoinHostPort(ip, "9000"), "ping")
			return got == "echo ping", fmt.Sprint(got, err)
		})
		// UDP on the ClusterIP too.
		got, err := udpAsk(net.JoinHostPort(svc.Spec.ClusterIP, "9000"), "pong")
		require.NoError(t, err)
		require.Equal(t, "echo pong", got)
		urls := strings.Fields(h.ok(time.Minute, "service", "web", "-p", profile, "--url"))
		require.Equal(t, []string{"http://" + ip + ":80"}, urls)
	})

	t.Run("session affinity, pod hostnames, ExternalName", func(t *testing.T) {
		sticky, err := c.CoreV1().Services("default").Create(ctx, &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Name: "sticky"},
			Spec: corev1.ServiceSpec{Selector: map[string]string{"app": "web"}, SessionAffinity: corev1.ServiceAffinityClientIP,
				Ports: []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromString("http")}}},
		}, metav1.CreateOptions{})
		require.NoError(t, err)
		var first string
		eventually(t, time.Minute, "the sticky Service answers", func() (bool, string) {
			body, err := httpGet("http://" + sticky.Spec.ClusterIP + "/")
			first = body
			return err == nil && strings.Contains(body, "hello from web-"), fmt.Sprint(body, err)
		})
		for range 6 {
			body, err := (&http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 3 * time.Second}).Get("http://" + sticky.Spec.ClusterIP + "/")
			require.NoError(t, err)
			b, _ := io.ReadAll(body.Body)
			body.Body.Close()
			require.Equal(t, first, string(b), "every new connection of this client reaches the same pod")
		}

		// A headless Service's pod by its hostname, and an ExternalName.
		_, err = c.CoreV1().Services("default").Create(ctx, &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Name: "crew"},
			Spec: corev1.ServiceSpec{ClusterIP: corev1.ClusterIPNone, Selector: map[string]string{"crew": "yes"},
				Ports: []corev1.ServicePort{{Name: "http", Port: 8080}}},
		}, metav1.CreateOptions{})
		require.NoError(t, err)
		_, err = c.CoreV1().Services("default").Create(ctx, &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Name: "alias"},
			Spec:       corev1.ServiceSpec{Type: corev1.ServiceTypeExternalName, ExternalName: "sticky.default.svc.cluster.local"},
		}, metav1.CreateOptions{})
		require.NoError(t, err)
		member := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: "member", Labels: map[string]string{"crew": "yes"}},
			Spec: corev1.PodSpec{Hostname: "member-0", Subdomain: "crew", TerminationGracePeriodSeconds: ptr.To[int64](1),
				Containers: []corev1.Container{{Name: "app", Image: image, Env: []corev1.EnvVar{{Name: "GREETING", Value: "hello crew"}},
					Ports:          []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}},
					ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromInt32(8080)}}, PeriodSeconds: 1}}}},
		}
		_, err = c.CoreV1().Pods("default").Create(ctx, member, metav1.CreateOptions{})
		require.NoError(t, err)
		waitPhase(t, ctx, c, "member", corev1.PodRunning)
		for url, want := range map[string]string{
			"http://member-0.crew:8080/": "hello crew",
			"http://alias/":              "hello from web-",
		} {
			eventually(t, time.Minute, url+" from a pod", func() (bool, string) {
				r := h.run(time.Minute, "kubectl", "-p", profile, "--", "exec", "member", "--", "/app", "get", url)
				return r.code == 0 && strings.Contains(r.stdout, want), r.stdout + r.stderr
			})
		}
	})

	t.Run("NodePorts on every node, externalTrafficPolicy Local", func(t *testing.T) {
		// One pod, so one node has a local endpoint and the other has none.
		d := appDeployment("solo", image, 1)
		d.Spec.Template.Spec.Containers[0].Env[0].Value = "hello solo"
		_, err := c.AppsV1().Deployments("default").Create(ctx, d, metav1.CreateOptions{})
		require.NoError(t, err)
		h.ok(3*time.Minute, "kubectl", "-p", profile, "--", "rollout", "status", "deployment/solo", "--timeout=2m")
		pods, err := c.CoreV1().Pods("default").List(ctx, metav1.ListOptions{LabelSelector: "app=solo"})
		require.NoError(t, err)
		require.Len(t, pods.Items, 1)
		ipOf := map[string]string{}
		for _, n := range st.Nodes {
			ipOf[n.Name] = n.IP
		}
		require.Len(t, ipOf, 2)
		podNode := pods.Items[0].Spec.NodeName
		var otherNode string
		for n := range ipOf {
			if n != podNode {
				otherNode = n
			}
		}

		cluster, err := c.CoreV1().Services("default").Create(ctx, &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Name: "solo-np"},
			Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeNodePort, Selector: map[string]string{"app": "solo"},
				Ports: []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromString("http")}}},
		}, metav1.CreateOptions{})
		require.NoError(t, err)
		np := strconv.Itoa(int(cluster.Spec.Ports[0].NodePort))
		for node, nodeIP := range ipOf {
			eventually(t, time.Minute, "NodePort on "+node, func() (bool, string) {
				body, err := httpGet("http://" + net.JoinHostPort(nodeIP, np) + "/")
				return err == nil && strings.HasPrefix(body, "hello solo from "), fmt.Sprint(body, err)
			})
		}

		lb := loadBalancer("solo-local", "solo", corev1.ServicePort{Name: "http", Port: 80, TargetPort: intstr.FromString("http")})
		lb.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyLocal
		local, err := c.CoreV1().Services("default").Create(ctx, lb, metav1.CreateOptions{})
		require.NoError(t, err)
		require.NotZero(t, local.Spec.HealthCheckNodePort)
		lnp := strconv.Itoa(int(local.Spec.Ports[0].NodePort))
		hc := strconv.Itoa(int(local.Spec.HealthCheckNodePort))
		eventually(t, time.Minute, "the Local NodePort on the pod's node", func() (bool, string) {
			body, err := httpGet("http://" + net.JoinHostPort(ipOf[podNode], lnp) + "/")
			return err == nil && strings.HasPrefix(body, "hello solo from "), fmt.Sprint(body, err)
		})
		eventually(t, time.Minute, "health checks: 200 where the endpoint is, 503 elsewhere", func() (bool, string) {
			codeHere, bodyHere := statusOf("http://" + net.JoinHostPort(ipOf[podNode], hc) + "/healthz")
			codeThere, _ := statusOf("http://" + net.JoinHostPort(ipOf[otherNode], hc) + "/healthz")
			return codeHere == 200 && strings.Contains(bodyHere, `"localEndpoints":1`) && codeThere == 503,
				fmt.Sprint(codeHere, bodyHere, codeThere)
		})
		// The node without a local endpoint does not send the traffic on.
		_, err = httpGet("http://" + net.JoinHostPort(ipOf[otherNode], lnp) + "/")
		require.Error(t, err, "the Local NodePort of a node without endpoints answers nothing")
	})

	t.Run("a change of ports takes effect", func(t *testing.T) {
		s, err := c.CoreV1().Services("default").Get(ctx, "web", metav1.GetOptions{})
		require.NoError(t, err)
		s.Spec.Ports[0].Port = 8081
		_, err = c.CoreV1().Services("default").Update(ctx, s, metav1.UpdateOptions{})
		require.NoError(t, err)
		eventually(t, time.Minute, "HTTP on the new port", func() (bool, string) {
			body, err := httpGet("http://" + net.JoinHostPort(ip, "8081") + "/")
			return err == nil && strings.Contains(body, "hello"), fmt.Sprint(body, err)
		})
		// New connections only: one already open lives on, as with conntrack.
		eventually(t, time.Minute, "nothing on the old port", func() (bool, string) {
			conn, err := net.DialTimeout("tcp", net.JoinHostPort(ip, "80"), 2*time.Second)
			if err != nil {
				return true, ""
			}
			conn.Close()
			return false, "still accepts connections"
		})
	})

	t.Run("bad addresses and freeing", func(t *testing.T) {
		bad := loadBalancer("outside", "web", corev1.ServicePort{Name: "http", Port: 80, TargetPort: intstr.FromString("http")})
		bad.Spec.LoadBalancerIP = "10.1.2.3"
		_, err := c.CoreV1().Services("default").Create(ctx, bad, metav1.CreateOptions{})
		require.NoError(t, err)
		eventFor(t, ctx, c, "Service", "outside", "SyncLoadBalancerFailed", "loadBalancerIP 10.1.2.3 is outside the pool")
		taken := loadBalancer("taken", "web", corev1.ServicePort{Name: "http", Port: 80, TargetPort: intstr.FromString("http")})
		taken.Spec.LoadBalancerIP = ip
		_, err = c.CoreV1().Services("default").Create(ctx, taken, metav1.CreateOptions{})
		require.NoError(t, err)
		eventFor(t, ctx, c, "Service", "taken", "SyncLoadBalancerFailed", "is taken by service default/web")

		// Deleting a Service frees its address for the next one.
		require.NoError(t, c.CoreV1().Services("default").Delete(ctx, "web", metav1.DeleteOptions{}))
		eventually(t, time.Minute, "the address is free again", func() (bool, string) {
			s, err := c.CoreV1().Services("default").Get(ctx, "taken", metav1.GetOptions{})
			if err != nil || len(s.Status.LoadBalancer.Ingress) == 0 {
				return false, fmt.Sprint(err)
			}
			return s.Status.LoadBalancer.Ingress[0].IP == ip, s.Status.LoadBalancer.Ingress[0].IP
		})
	})
}

// selfSigned makes a TLS certificate and key for host.
func selfSigned(t *testing.T, host string) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: host}, DNSNames: []string{host},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	keyDER, err := x509.MarshalECPrivateKey(key)
	require.NoError(t, err)
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})
}

// ingressGet asks the Ingress address for host and path, over TLS when
// roots is set.
func ingressGet(ip, host, path string, roots *x509.CertPool) (int, string, error) {
	scheme := "http"
	tr := &http.Transport{DisableKeepAlives: true}
	if roots != nil {
		scheme = "https"
		tr.TLSClientConfig = &tls.Config{RootCAs: roots, ServerName: host}
	}
	req, err := http.NewRequest(http.MethodGet, scheme+"://"+ip+path, nil)
	if err != nil {
		return 0, "", err
	}
	req.Host = host
	resp, err := (&http.Client{Transport: tr, Timeout: 3 * time.Second}).Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

func TestIngressDocker(t *testing.T) {
	requireEngine(t)
	keepNodeImages(t)
	h := newHarness(t)
	h.env = slices.DeleteFunc(h.env, func(e string) bool { return strings.HasPrefix(e, "MINIK_DRIVER=") })
	const profile = "ing"
	removeCluster(t, h, profile)
	image := buildApp(t)
	h.ok(3*time.Minute, "start", "-p", profile, "--driver", "docker", "--nodes", "2")
	c := clientFor(t, h.kubeconfig, profile)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	for _, app := range []string{"web", "api"} {
		d := appDeployment(app, image, 1)
		d.Spec.Template.Spec.Containers[0].Env[0].Value = "hello " + app
		_, err := c.AppsV1().Deployments("default").Create(ctx, d, metav1.CreateOptions{})
		require.NoError(t, err)
		_, err = c.CoreV1().Services("default").Create(ctx, &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Name: app},
			Spec: corev1.ServiceSpec{Selector: map[string]string{"app": app},
				Ports: []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromString("http")}}},
		}, metav1.CreateOptions{})
		require.NoError(t, err)
		h.ok(3*time.Minute, "kubectl", "-p", profile, "--", "rollout", "status", "deployment/"+app, "--timeout=2m")
	}
	class, err := c.NetworkingV1().IngressClasses().Get(ctx, "minik", metav1.GetOptions{})
	require.NoError(t, err)
	require.Equal(t, "true", class.Annotations[networkingv1.AnnotationIsDefaultIngressClass])

	certPEM, keyPEM := selfSigned(t, "secure.example")
	_, err = c.CoreV1().Secrets("default").Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "secure-tls"}, Type: corev1.SecretTypeTLS,
		Data: map[string][]byte{corev1.TLSCertKey: certPEM, corev1.TLSPrivateKeyKey: keyPEM},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	prefix, exact := networkingv1.PathTypePrefix, networkingv1.PathTypeExact
	backend := func(svc string) networkingv1.IngressBackend {
		return networkingv1.IngressBackend{Service: &networkingv1.IngressServiceBackend{Name: svc, Port: networkingv1.ServiceBackendPort{Name: "http"}}}
	}
	rule := func(host string, paths ...networkingv1.HTTPIngressPath) networkingv1.IngressRule {
		return networkingv1.IngressRule{Host: host, IngressRuleValue: networkingv1.IngressRuleValue{HTTP: &networkingv1.HTTPIngressRuleValue{Paths: paths}}}
	}
	// No class named: the default class takes it.
	_, err = c.NetworkingV1().Ingresses("default").Create(ctx, &networkingv1.Ingress{
		ObjectMeta: metav1.ObjectMeta{Name: "site"},
		Spec: networkingv1.IngressSpec{
			DefaultBackend: ptr.To(backend("web")),
			TLS:            []networkingv1.IngressTLS{{Hosts: []string{"secure.example"}, SecretName: "secure-tls"}},
			Rules: []networkingv1.IngressRule{
				rule("site.example",
					networkingv1.HTTPIngressPath{Path: "/api", PathType: &prefix, Backend: backend("api")},
					networkingv1.HTTPIngressPath{Path: "/exact", PathType: &exact, Backend: backend("api")},
					networkingv1.HTTPIngressPath{Path: "/", PathType: &prefix, Backend: backend("web")}),
				rule("secure.example", networkingv1.HTTPIngressPath{Path: "/", PathType: &prefix, Backend: backend("api")}),
			},
		},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	var ip string
	eventually(t, time.Minute, "the ingress's address", func() (bool, string) {
		ing, err := c.NetworkingV1().Ingresses("default").Get(ctx, "site", metav1.GetOptions{})
		if err != nil || len(ing.Status.LoadBalancer.Ingress) == 0 {
			return false, fmt.Sprint(err)
		}
		ip = ing.Status.LoadBalancer.Ingress[0].IP
		return ip != "", ""
	})
	for _, tt := range []struct{ host, path, want string }{
		{"site.example", "/", "hello web"},
		{"site.example", "/api/users", "hello api"},
		{"site.example", "/exact", "hello api"},
		{"site.example", "/exact/no", "hello web"},
		{"unknown.example", "/", "hello web"}, // the default backend
	} {
		eventually(t, time.Minute, tt.host+tt.path, func() (bool, string) {
			code, body, err := ingressGet(ip, tt.host, tt.path, nil)
			return code == 200 && strings.Contains(body, tt.want), fmt.Sprint(code, body, err)
		})
	}
	// minik service lists the Ingress rules that send to the Service;
	// --url keeps to the Service's own URLs.
	out := h.ok(time.Minute, "service", "api", "-p", profile)
	require.Contains(t, out, "http://"+ip+"/api (ingress site, Host: site.example)")
	require.Contains(t, out, "https://"+ip+"/ (ingress site, Host: secure.example)")
	require.NotContains(t, h.ok(time.Minute, "service", "api", "-p", profile, "--url"), "ingress")
	roots := x509.NewCertPool()
	require.True(t, roots.AppendCertsFromPEM(certPEM))
	eventually(t, time.Minute, "HTTPS with the Ingress's certificate", func() (bool, string) {
		code, body, err := ingressGet(ip, "secure.example", "/", roots)
		return code == 200 && strings.Contains(body, "hello api"), fmt.Sprint(code, body, err)
	})

	// Bad input: a clash with an older Ingress, a missing TLS secret.
	// Creation times are in seconds: make "older" unambiguous.
	time.Sleep(1100 * time.Millisecond)
	_, err = c.NetworkingV1().Ingresses("default").Create(ctx, &networkingv1.Ingress{
		ObjectMeta: metav1.ObjectMeta{Name: "clash"},
		Spec: networkingv1.IngressSpec{
			TLS:   []networkingv1.IngressTLS{{Hosts: []string{"other.example"}, SecretName: "missing"}},
			Rules: []networkingv1.IngressRule{rule("site.example", networkingv1.HTTPIngressPath{Path: "/api", PathType: &prefix, Backend: backend("web")}), rule("other.example", networkingv1.HTTPIngressPath{Path: "/", PathType: &prefix, Backend: backend("web")})},
		},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	eventFor(t, ctx, c, "Ingress", "clash", "HostPathConflict", `host "site.example" path "/api" is served by the older ingress default/site`)
	eventFor(t, ctx, c, "Ingress", "clash", "TLSSecretInvalid", "its hosts are served on HTTP only")
	code, body, err := ingressGet(ip, "site.example", "/api", nil)
	require.NoError(t, err)
	require.Equal(t, 200, code)
	require.Contains(t, body, "hello api", "the older ingress keeps the path")
	eventually(t, time.Minute, "other.example on HTTP", func() (bool, string) {
		code, body, err := ingressGet(ip, "other.example", "/", nil)
		return code == 200 && strings.Contains(body, "hello web"), fmt.Sprint(code, body, err)
	})
}

// On the sim runtime a LoadBalancer gets its address the same way, from a
// loopback range: charts that wait for one go on, and nothing dials it
// off this machine.
func TestLoadBalancerSim(t *testing.T) {
	h := newHarness(t)
	h.ok(3*time.Minute, "start", "-p", "lbsim")
	c := clientFor(t, h.kubeconfig, "lbsim")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	_, err := c.CoreV1().Services("default").Create(ctx, loadBalancer("web", "web",
		corev1.ServicePort{Name: "http", Port: 80, TargetPort: intstr.FromInt32(8080)}), metav1.CreateOptions{})
	require.NoError(t, err)
	ip := lbIP(t, ctx, c, "web")
	require.True(t, strings.HasPrefix(ip, "127.255.0."), ip)
	out := h.ok(time.Minute, "kubectl", "-p", "lbsim", "--", "get", "svc", "web")
	require.Contains(t, out, ip)
	// An Ingress gets the Ingress controller's address the same way.
	h.ok(time.Minute, "kubectl", "-p", "lbsim", "--", "create", "ingress", "site", "--rule", "site.example/*=web:80")
	eventually(t, time.Minute, "the ingress's address", func() (bool, string) {
		ing, err := c.NetworkingV1().Ingresses("default").Get(ctx, "site", metav1.GetOptions{})
		if err != nil || len(ing.Status.LoadBalancer.Ingress) == 0 {
			return false, fmt.Sprint(err)
		}
		return strings.HasPrefix(ing.Status.LoadBalancer.Ingress[0].IP, "127.255.0."), ing.Status.LoadBalancer.Ingress[0].IP
	})
}
