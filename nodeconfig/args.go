package nodeconfig

import (
	"cmp"
	"fmt"
	"net"
	"strconv"

	"minik.dev/minik/pki"
)

// ServiceAccountIssuer is the issuer of service account tokens.
func (c *Config) ServiceAccountIssuer() string {
	return "https://kubernetes.default.svc." + c.ControlPlane.DNSDomain
}

// APIServerArgs are the upstream kube-apiserver flags for this node.
// egressConfig, when set, is the egress selector config file that routes
// the apiserver's cluster traffic through minik's egress proxy.
func (c *Config) APIServerArgs(etcdURL, egressConfig string) []string {
	cp := c.ControlPlane
	p := pki.Layout(c.PKIDir)
	args := []string{
		"--etcd-servers=" + etcdURL,
		"--bind-address=" + cp.BindAddress,
		"--secure-port=" + strconv.Itoa(cp.Port),
		"--advertise-address=" + c.IP,
		"--endpoint-reconciler-type=" + endpointReconciler(c.IP),
		"--tls-cert-file=" + p.APIServerCert,
		"--tls-private-key-file=" + p.APIServerKey,
		"--client-ca-file=" + p.CACert,
		"--kubelet-client-certificate=" + p.APIServerKubeletClientCert,
		"--kubelet-client-key=" + p.APIServerKubeletClientKey,
		"--kubelet-certificate-authority=" + p.CACert,
		"--kubelet-preferred-address-types=InternalIP,Hostname",
		"--service-account-key-file=" + p.SAPub,
		"--service-account-signing-key-file=" + p.SAKey,
		"--service-account-issuer=" + c.ServiceAccountIssuer(),
		"--service-cluster-ip-range=" + cp.ServiceCIDR,
		"--authorization-mode=Node,RBAC",
		// Nodes on other machines join with bootstrap tokens (minik-node join).
		"--enable-bootstrap-token-auth=true",
		"--enable-admission-plugins=NodeRestriction",
		"--allow-privileged=true",
		"--requestheader-client-ca-file=" + p.FrontProxyCACert,
		"--requestheader-allowed-names=front-proxy-client",
		"--requestheader-username-headers=X-Remote-User",
		"--requestheader-group-headers=X-Remote-Group",
		"--requestheader-extra-headers-prefix=X-Remote-Extra-",
		"--proxy-client-cert-file=" + p.FrontProxyClientCert,
		"--proxy-client-key-file=" + p.FrontProxyClientKey,
		"--enable-aggregator-routing=true",
		// In-process watches otherwise hold a stop for 60 s.
		"--shutdown-watch-termination-grace-period=2s",
		"--shutdown-delay-duration=0s",
		"--profiling=false",
		"--event-ttl=1h",
		// Pods on a lost node are evicted after this, not the default 5 minutes.
		"--default-not-ready-toleration-seconds=" + strconv.Itoa(cp.evictionSeconds()),
		"--default-unreachable-toleration-seconds=" + strconv.Itoa(cp.evictionSeconds()),
	}
	if egressConfig != "" {
		args = append(args, "--egress-selector-config-file="+egressConfig)
	}
	return args
}

// Dev-cluster defaults: a stopped node is noticed and its pods moved in
// well under a minute (upstream: 40 s and 300 s).
const (
	DefaultNodeMonitorGracePeriodSeconds = 20
	DefaultPodEvictionSeconds            = 15
)

// Dev-cluster metrics defaults: `kubectl top` and the HorizontalPodAutoscaler
// react within seconds (upstream: 15 s scrapes by metrics-server, a 15 s
// HPA sync period and a 5 minute downscale stabilization window).
const (
	DefaultMetricsResolutionSeconds         = 10
	DefaultHPASyncPeriodSeconds             = 5
	DefaultHPADownscaleStabilizationSeconds = 15
)

// MetricsResolution is the scrape interval of metrics.k8s.io in seconds.
func (cp *ControlPlane) MetricsResolution() int {
	return positiveOr(cp.MetricsResolutionSeconds, DefaultMetricsResolutionSeconds)
}

func positiveOr(v, def int) int {
	if v > 0 {
		return v
	}
	return def
}

func (cp *ControlPlane) evictionSeconds() int {
	if cp.PodEvictionSeconds > 0 {
		return cp.PodEvictionSeconds
	}
	return DefaultPodEvictionSeconds
}

// EgressSelectorConfig routes the apiserver's "cluster" traffic through an
// HTTP CONNECT proxy on the unix socket udsName.
func EgressSelectorConfig(udsName string) []byte {
	return []byte(`apiVersion: apiserver.k8s.io/v1beta1
kind: EgressSelectorConfiguration
egressSelections:
- name: cluster
  connection:
    proxyProtocol: HTTPConnect
    transport:
      uds:
        udsName: ` + strconv.Quote(udsName) + `
`)
}

// ControllerManagerArgs are the upstream kube-controller-manager flags.
func (c *Config) ControllerManagerArgs() []string {
	cp := c.ControlPlane
	p := pki.Layout(c.PKIDir)
	grace := cp.NodeMonitorGracePeriodSeconds
	if grace <= 0 {
		grace = DefaultNodeMonitorGracePeriodSeconds
	}
	return []string{
		"--kubeconfig=" + cp.ControllerManagerKubeconfig,
		"--leader-elect=false",
		// One shared identity builds every controller at once: the default
		// ServiceAccount appears ~6 s sooner than with per-controller credentials.
		"--use-service-account-credentials=false",
		"--secure-port=0",
		"--service-account-private-key-file=" + p.SAKey,
		"--root-ca-file=" + p.CACert,
		"--cluster-signing-cert-file=" + p.CACert,
		"--cluster-signing-key-file=" + p.CAKey,
		"--allocate-node-cidrs=true",
		"--cluster-cidr=" + cp.PodCIDR,
		"--node-cidr-mask-size=" + strconv.Itoa(cmp.Or(cp.NodeCIDRMaskSize, 24)),
		"--service-cluster-ip-range=" + cp.ServiceCIDR,
		"--controllers=*,bootstrapsigner,tokencleaner",
		"--node-monitor-grace-period=" + strconv.Itoa(grace) + "s",
		"--node-monitor-period=2s",
		"--profiling=false",
		// The upstream defaults (20 qps) cap a 1,000-replica rollout at a
		// few pods a second; a local apiserver takes far more.
		"--kube-api-qps=1000",
		"--kube-api-burst=2000",
		"--concurrent-replicaset-syncs=10",
		"--concurrent-deployment-syncs=10",
		"--horizontal-pod-autoscaler-sync-period=" + strconv.Itoa(positiveOr(cp.HPASyncPeriodSeconds, DefaultHPASyncPeriodSeconds)) + "s",
		"--horizontal-pod-autoscaler-downscale-stabilization=" + strconv.Itoa(positiveOr(cp.HPADownscaleStabilizationSeconds, DefaultHPADownscaleStabilizationSeconds)) + "s",
	}
}

// SchedulerArgs are the upstream kube-scheduler flags.
func (c *Config) SchedulerArgs() []string {
	return []string{
		"--kubeconfig=" + c.ControlPlane.SchedulerKubeconfig,
		"--leader-elect=false",
		"--secure-port=0",
		"--profiling=false",
		"--kube-api-qps=1000",
		"--kube-api-burst=2000",
	}
}

// FirstServiceIP is the ClusterIP of Service "kubernetes": the apiserver's
// serving cert must name it.
func FirstServiceIP(serviceCIDR string) (net.IP, error) {
	_, n, err := net.ParseCIDR(serviceCIDR)
	if err != nil {
		return nil, fmt.Errorf("parse service CIDR: %w", err)
	}
	ip := n.IP.To4()
	if ip == nil {
		ip = n.IP.To16()
	}
	first := make(net.IP, len(ip))
	copy(first, ip)
	first[len(first)-1]++
	return first, nil
}

// ClusterDNSIP is the cluster DNS Service's address: the tenth of the
// Service range, as kubeadm and kind use.
func ClusterDNSIP(serviceCIDR string) (net.IP, error) {
	ip, err := FirstServiceIP(serviceCIDR)
	if err != nil {
		return nil, err
	}
	ip[len(ip)-1] += 9
	return ip, nil
}

// endpointReconciler keeps Service "kubernetes" pointing at the apiserver
// when the node IP is a real address. A loopback node IP (process driver)
// is refused by the endpoints API; there the Service keeps no endpoints, as
// nothing in a simulated cluster could reach it through them anyway.
func endpointReconciler(nodeIP string) string {
	if ip := net.ParseIP(nodeIP); ip != nil && !ip.IsLoopback() {
		return "lease"
	}
	return "none"
}
