// Package join makes this machine a node of a running minik cluster, the
// way kubeadm join makes a kubelet's: discovery of the cluster CA through
// the cluster-info ConfigMap checked against a pinned CA hash and a
// bootstrap token (kubeadm's own discovery code), then the kubelet's TLS
// bootstrap (its own code) for a client certificate that the upstream
// controllers approve and sign. It writes the node's config and
// credentials into a data folder, so the node agent restarts from them
// without the token.
package join

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	bootstraputil "k8s.io/cluster-bootstrap/token/util"
	kubeadmapi "k8s.io/kubernetes/cmd/kubeadm/app/apis/kubeadm"
	"k8s.io/kubernetes/cmd/kubeadm/app/discovery/token"
	"k8s.io/kubernetes/pkg/kubelet/certificate/bootstrap"

	"minik.dev/minik/kubelet/engine"
	containerimage "minik.dev/minik/node-image/container"
	"minik.dev/minik/nodeconfig"
	"minik.dev/minik/pki"
	"minik.dev/minik/version"
)

// Options are what `minik-node join` is told.
type Options struct {
	// Server is the apiserver's URL as `minik node join-command` prints it.
	Server string
	// Token is a bootstrap token (ID.SECRET).
	Token string
	// CACertHash pins the cluster CA: sha256:HEX of its public key.
	CACertHash string
	// Name is the node's name (default: this machine's host name).
	Name string
	// DataDir keeps the node's config, credentials and state.
	DataDir string
	// NodeIP is the node's address (default: the one this machine reaches
	// the server from).
	NodeIP string
	// KubeletPort is where the node serves the kubelet API.
	KubeletPort int
	// Runtime runs the node's pods: nodeconfig.RuntimeDocker,
	// nodeconfig.RuntimeSim or RuntimeAuto (docker where an engine
	// answers, else sim).
	Runtime     string
	CPUMillis   int64
	MemoryBytes int64
	MaxPods     int
	// Timeout bounds each wait: discovery, the client certificate.
	Timeout time.Duration
}

// RuntimeAuto picks the docker runtime where an engine answers, else sim.
const RuntimeAuto = "auto"

// PodNetworkName is the engine network of a joined node's pods.
func PodNetworkName(cluster, node string) string { return "minik-joined-" + cluster + "-" + node }

// chooseRuntime resolves --runtime: docker needs an engine that answers
// (DOCKER_HOST, else the default socket), whose endpoint it returns.
func chooseRuntime(ctx context.Context, asked string) (runtime, dockerHost string, err error) {
	if asked == nodeconfig.RuntimeSim {
		return asked, "", nil
	}
	pingCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	cli, err := engine.Dial(pingCtx, "")
	if err != nil {
		if asked == RuntimeAuto {
			return nodeconfig.RuntimeSim, "", nil
		}
		return "", "", fmt.Errorf("--runtime docker: %w; start the Docker Engine (or set DOCKER_HOST), or join with --runtime sim", err)
	}
	defer cli.Close()
	return nodeconfig.RuntimeDocker, cli.DaemonHost(), nil
}

// MaxClockSkew is how far this machine's clock may be from the server's:
// certificates are backdated by this much, no more.
const MaxClockSkew = 5 * time.Minute

// Files in the data folder.
const (
	configFile     = "config.json"
	kubeconfigFile = "kubelet.kubeconfig"
	bootstrapFile  = "bootstrap-kubelet.kubeconfig"
	pkiDir         = "pki"
)

// ConfigPath is the node config join writes in dataDir.
func ConfigPath(dataDir string) string { return filepath.Join(dataDir, configFile) }

var (
	hashRE = regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)
	nameRE = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)
)

// Validate reports the first bad option.
func (o *Options) Validate() error {
	if _, err := o.endpoint(); err != nil {
		return err
	}
	switch {
	case !bootstraputil.IsValidBootstrapToken(o.Token):
		return errors.New("--token is not a bootstrap token (6 and 16 characters of a-z and 0-9, joined by a dot): copy it from `minik node join-command`")
	case !hashRE.MatchString(o.CACertHash):
		return errors.New("--ca-cert-hash must be sha256: and 64 hex digits, as `minik node join-command` prints it: the CA is never trusted without it")
	case len(o.Name) > 63 || !nameRE.MatchString(o.Name):
		return fmt.Errorf("node name %q is not a DNS label (a-z, 0-9 and -, at most 63): pass --name", o.Name)
	case o.DataDir == "":
		return errors.New("--data-dir is empty")
	case o.NodeIP != "" && net.ParseIP(o.NodeIP) == nil:
		return fmt.Errorf("--node-ip %q is not an IP address", o.NodeIP)
	case o.KubeletPort <= 0 || o.KubeletPort > 65535:
		return fmt.Errorf("--kubelet-port %d is out of range", o.KubeletPort)
	case o.Runtime != RuntimeAuto && o.Runtime != nodeconfig.RuntimeDocker && o.Runtime != nodeconfig.RuntimeSim:
		return fmt.Errorf("--runtime %q is not %s, %s or %s", o.Runtime, RuntimeAuto, nodeconfig.RuntimeDocker, nodeconfig.RuntimeSim)
	case o.CPUMillis <= 0 || o.MemoryBytes <= 0 || o.MaxPods <= 0:
		return errors.New("--cpus, --memory and --max-pods must be positive")
	case o.Timeout <= 0:
		return errors.New("--timeout must be positive")
	}
	return nil
}

// endpoint is the server's host:port.
func (o *Options) endpoint() (string, error) {
	u, err := url.Parse(o.Server)
	if err != nil || u.Scheme != "https" || u.Host == "" || u.Port() == "" || (u.Path != "" && u.Path != "/") {
		return "", fmt.Errorf("--server %q must be https://ADDRESS:PORT, as `minik node join-command` prints it", o.Server)
	}
	return u.Host, nil
}

// Join makes this machine a node of the cluster at o.Server and returns
// the node's config file. A data folder that already holds this node's
// config is reused as it is (a restart); one of another cluster or node
// is refused. Nothing is left in the cluster when Join fails before the
// client certificate is issued, and the Node is registered only later,
// by the agent.
func Join(ctx context.Context, o Options) (string, error) {
	if err := o.Validate(); err != nil {
		return "", err
	}
	endpoint, _ := o.endpoint()
	if cfg, err := nodeconfig.Load(ConfigPath(o.DataDir)); err == nil {
		if cfg.APIServer != o.Server || cfg.Name != o.Name {
			return "", fmt.Errorf("%s already holds node %s of the cluster at %s: to join again, delete the node on the cluster's machine (`minik node delete %s`) and remove %s", o.DataDir, cfg.Name, cfg.APIServer, cfg.Name, o.DataDir)
		}
		return ConfigPath(o.DataDir), nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return "", err
	}
	if err := os.MkdirAll(o.DataDir, 0o700); err != nil {
		return "", fmt.Errorf("create data folder: %w", err)
	}
	runtime, dockerHost, err := chooseRuntime(ctx, o.Runtime)
	if err != nil {
		return "", err
	}
	if err := checkServer(ctx, o.Server, time.Now); err != nil {
		return "", err
	}
	nodeIP := o.NodeIP
	if nodeIP == "" {
		ip, err := sourceAddress(ctx, endpoint)
		if err != nil {
			return "", err
		}
		nodeIP = ip
	}

	cluster, err := token.RetrieveValidatedConfigInfo(nil, &kubeadmapi.Discovery{BootstrapToken: &kubeadmapi.BootstrapTokenDiscovery{
		Token: o.Token, APIServerEndpoint: endpoint, CACertHashes: []string{o.CACertHash},
	}}, o.Timeout)
	if err != nil {
		return "", fmt.Errorf("discover the cluster at %s: %w; compare --token and --ca-cert-hash with a new `minik node join-command` on the cluster's machine (tokens expire; a CA hash that does not match means this server is not that cluster: do not join it)", o.Server, err)
	}
	clusterName, ca, err := clusterCA(cluster)
	if err != nil {
		return "", err
	}

	bootstrapPath := filepath.Join(o.DataDir, bootstrapFile)
	bootstrapKC := clientcmdapi.NewConfig()
	bootstrapKC.Clusters[clusterName] = &clientcmdapi.Cluster{Server: o.Server, CertificateAuthorityData: ca}
	bootstrapKC.AuthInfos["bootstrap"] = &clientcmdapi.AuthInfo{Token: o.Token}
	bootstrapKC.Contexts["bootstrap"] = &clientcmdapi.Context{Cluster: clusterName, AuthInfo: "bootstrap"}
	bootstrapKC.CurrentContext = "bootstrap"
	if err := clientcmd.WriteToFile(*bootstrapKC, bootstrapPath); err != nil {
		return "", fmt.Errorf("write bootstrap kubeconfig: %w", err)
	}
	// The token is needed only until the node has a certificate.
	defer os.Remove(bootstrapPath)
	if err := checkNameFree(ctx, bootstrapPath, o.Name); err != nil {
		return "", err
	}

	dir := filepath.Join(o.DataDir, pkiDir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("create pki folder: %w", err)
	}
	if err := nodeconfig.WriteFileAtomic(pki.Layout(dir).CACert, ca, 0o644); err != nil {
		return "", fmt.Errorf("write cluster CA: %w", err)
	}
	kubeconfigPath := filepath.Join(o.DataDir, kubeconfigFile)
	certCtx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	if err := bootstrap.LoadClientCert(certCtx, kubeconfigPath, bootstrapPath, dir, types.NodeName(o.Name)); err != nil {
		return "", fmt.Errorf("get a client certificate for node %s: %w", o.Name, err)
	}

	cfg := &nodeconfig.Config{
		Cluster:     clusterName,
		Name:        o.Name,
		Role:        nodeconfig.RoleWorker,
		IP:          nodeIP,
		KubeletPort: o.KubeletPort,
		DataDir:     o.DataDir,
		PKIDir:      dir,
		APIServer:   o.Server,
		Kubeconfig:  kubeconfigPath,
		CPUMillis:   o.CPUMillis,
		MemoryBytes: o.MemoryBytes,
		MaxPods:     o.MaxPods,
		Labels:      joinedLabels(),
		Runtime:     runtime,
		Joined:      true,
	}
	if runtime == nodeconfig.RuntimeDocker {
		cfg.Docker = &nodeconfig.DockerRuntime{
			Host:           dockerHost,
			Network:        PodNetworkName(clusterName, o.Name),
			SandboxImage:   containerimage.Ref(version.Version),
			SandboxCommand: []string{"/minik-node", "pause"},
			HostIsNode:     true,
		}
	}
	if err := nodeconfig.Save(ConfigPath(o.DataDir), cfg); err != nil {
		return "", err
	}
	return ConfigPath(o.DataDir), nil
}

// Leave removes the node's config and credentials from dataDir once the
// cluster deleted the node: they name a node that no longer exists.
func Leave(dataDir string) error {
	var errs []error
	for _, f := range []string{configFile, kubeconfigFile, bootstrapFile, pkiDir} {
		errs = append(errs, os.RemoveAll(filepath.Join(dataDir, f)))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("remove the deleted node's credentials: %w", err)
	}
	return nil
}

// checkServer reaches the apiserver without trusting or telling it
// anything, so an unreachable server or a far-off clock is a clear error
// before the token is sent anywhere.
func checkServer(ctx context.Context, server string, now func() time.Time) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	client := &http.Client{Transport: &http.Transport{
		// Only the Date header is read; the CA is checked against its pin
		// during discovery.
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, //nolint:gosec
	}}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, server+"/version", nil)
	if err != nil {
		return fmt.Errorf("reach the apiserver: %w", err)
	}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("cannot reach the apiserver at %s: %w; check that the cluster was started with `--listen-address` set to an address this machine reaches, and that TCP to that port is allowed", server, err)
	}
	resp.Body.Close()
	return checkClock(resp.Header.Get("Date"), now())
}

// checkClock refuses a local clock that differs from the server's Date
// by more than MaxClockSkew.
func checkClock(date string, now time.Time) error {
	if date == "" {
		return nil
	}
	serverTime, err := http.ParseTime(date)
	if err != nil {
		return nil
	}
	skew := now.Sub(serverTime)
	if skew < 0 {
		skew = -skew
	}
	if skew > MaxClockSkew {
		return fmt.Errorf("this machine's clock (%s) is %s off from the apiserver's (%s), more than %s: certificates would not be valid here; set the clock (NTP) and join again",
			now.UTC().Format(time.RFC3339), skew.Round(time.Second), serverTime.UTC().Format(time.RFC3339), MaxClockSkew)
	}
	return nil
}

// sourceAddress is this machine's address towards endpoint (no packet is
// sent: a UDP socket only picks its route).
func sourceAddress(ctx context.Context, endpoint string) (string, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "udp", endpoint)
	if err != nil {
		return "", fmt.Errorf("find this machine's address towards %s: %w; pass --node-ip", endpoint, err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).IP.String(), nil
}

// clusterCA reads the cluster's name and CA from the validated
// cluster-info kubeconfig.
func clusterCA(kc *clientcmdapi.Config) (string, []byte, error) {
	for name, c := range kc.Clusters {
		if len(c.CertificateAuthorityData) > 0 {
			if name == "" {
				name = "minik"
			}
			return name, c.CertificateAuthorityData, nil
		}
	}
	return "", nil, errors.New("the cluster-info ConfigMap names no CA")
}

// checkNameFree refuses a name a Node already has, before any
// certificate is asked for.
func checkNameFree(ctx context.Context, bootstrapPath, name string) error {
	rc, err := clientcmd.BuildConfigFromFlags("", bootstrapPath)
	if err != nil {
		return fmt.Errorf("load bootstrap kubeconfig: %w", err)
	}
	client, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return fmt.Errorf("create bootstrap client: %w", err)
	}
	_, err = client.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
	switch {
	case err == nil:
		return fmt.Errorf("the cluster already has a node named %s: join with another --name, or delete that node first (`minik node delete %s` on the cluster's machine)", name, name)
	case apierrors.IsNotFound(err):
		return nil
	case apierrors.IsUnauthorized(err):
		return fmt.Errorf("the apiserver refused the bootstrap token (expired or deleted): print a new join command with `minik node join-command` on the cluster's machine: %w", err)
	default:
		return fmt.Errorf("check that node name %s is free: %w", name, err)
	}
}

// joinedLabels mark the Node as joined, from this machine.
func joinedLabels() map[string]string {
	l := map[string]string{nodeconfig.JoinedLabel: "true"}
	if h, err := os.Hostname(); err == nil && len(validation.IsValidLabelValue(h)) == 0 {
		l[nodeconfig.JoinedHostLabel] = h
	}
	return l
}

// DefaultName is this machine's host name as a node name.
func DefaultName() string {
	h, err := os.Hostname()
	if err != nil {
		return ""
	}
	h, _, _ = strings.Cut(strings.ToLower(h), ".")
	return h
}
