package cluster

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	bootstrapapi "k8s.io/cluster-bootstrap/token/api"
	bootstraputil "k8s.io/cluster-bootstrap/token/util"

	"minik.dev/minik/nodeconfig"
	"minik.dev/minik/pki"
)

// JoinCommand is what another machine runs to join a cluster as a node.
type JoinCommand struct {
	Server     string    `json:"server"`
	Token      string    `json:"token"`
	CACertHash string    `json:"caCertHash"`
	Expires    time.Time `json:"expires"`
	// Command is the line to run on the other machine.
	Command string `json:"command"`
}

// Bounds of a join token's life.
const (
	MinJoinTTL = time.Minute
	MaxJoinTTL = 7 * 24 * time.Hour
)

// JoinServer is the apiserver's URL for other machines.
func (p *Profile) JoinServer() string {
	return "https://" + net.JoinHostPort(p.ListenAddress, strconv.Itoa(p.APIServerPort))
}

// NewJoinCommand creates a bootstrap token that expires after ttl and
// returns the `minik-node join` line that uses it.
func (m *Manager) NewJoinCommand(ctx context.Context, profile string, ttl time.Duration) (*JoinCommand, error) {
	if ttl < MinJoinTTL || ttl > MaxJoinTTL {
		return nil, &InvalidOptionError{Field: "TTL", Value: ttl.String(), Reason: fmt.Sprintf("use %s to %s", MinJoinTTL, MaxJoinTTL)}
	}
	p, d, lock, err := m.openProfile(profile)
	if err != nil {
		return nil, err
	}
	defer lock.Unlock()
	if p.ListenAddress == "" {
		return nil, fmt.Errorf("cluster %s listens only on 127.0.0.1, which other machines cannot reach: create it with `minik start -p %s --listen-address ADDRESS` (an address of this machine that they reach); delete it first with `minik delete -p %s`", p.Name, p.Name, p.Name)
	}
	if err := m.requireRunning(ctx, d, p); err != nil {
		return nil, err
	}
	hash, err := caCertHash(pki.Layout(m.store.PKIDir(p.Name)).CACert)
	if err != nil {
		return nil, err
	}
	client, err := newAdminClient(m.store.AdminKubeconfig(p.Name))
	if err != nil {
		return nil, err
	}
	token, expires, err := createBootstrapToken(ctx, client, ttl, time.Now())
	if err != nil {
		return nil, err
	}
	jc := &JoinCommand{Server: p.JoinServer(), Token: token, CACertHash: hash, Expires: expires}
	jc.Command = fmt.Sprintf("minik-node join --server %s --token %s --ca-cert-hash %s", jc.Server, jc.Token, jc.CACertHash)
	return jc, nil
}

// caCertHash pins a CA as kubeadm does: sha256 of its public key.
func caCertHash(path string) (string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("read cluster CA: %w", err)
	}
	block, _ := pem.Decode(data)
	if block == nil {
		return "", fmt.Errorf("cluster CA %s holds no PEM block", path)
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return "", fmt.Errorf("parse cluster CA: %w", err)
	}
	sum := sha256.Sum256(cert.RawSubjectPublicKeyInfo)
	return "sha256:" + hex.EncodeToString(sum[:]), nil
}

// createBootstrapToken stores a bootstrap token Secret that authenticates
// and signs cluster-info until now+ttl, when the token cleaner deletes it.
func createBootstrapToken(ctx context.Context, client kubernetes.Interface, ttl time.Duration, now time.Time) (string, time.Time, error) {
	token, err := bootstraputil.GenerateBootstrapToken()
	if err != nil {
		return "", time.Time{}, fmt.Errorf("generate bootstrap token: %w", err)
	}
	id, secret, _ := strings.Cut(token, ".")
	expires := now.Add(ttl).UTC().Truncate(time.Second)
	s := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: bootstraputil.BootstrapTokenSecretName(id), Namespace: metav1.NamespaceSystem},
		Type:       corev1.SecretType(bootstrapapi.SecretTypeBootstrapToken),
		StringData: map[string]string{
			bootstrapapi.BootstrapTokenIDKey:               id,
			bootstrapapi.BootstrapTokenSecretKey:           secret,
			bootstrapapi.BootstrapTokenExpirationKey:       expires.Format(time.RFC3339),
			bootstrapapi.BootstrapTokenUsageAuthentication: "true",
			bootstrapapi.BootstrapTokenUsageSigningKey:     "true",
			bootstrapapi.BootstrapTokenExtraGroupsKey:      nodeconfig.JoinTokenGroup,
			bootstrapapi.BootstrapTokenDescriptionKey:      "minik node join-command",
		},
	}
	if _, err := client.CoreV1().Secrets(metav1.NamespaceSystem).Create(ctx, s, metav1.CreateOptions{}); err != nil {
		return "", time.Time{}, fmt.Errorf("create bootstrap token: %w", err)
	}
	return token, expires, nil
}

// joinedNodes lists the Nodes that joined from other machines.
func joinedNodes(nodes []corev1.Node) []corev1.Node {
	return slices.DeleteFunc(slices.Clone(nodes), func(n corev1.Node) bool { return n.Labels[nodeconfig.JoinedLabel] != "true" })
}

// joinedInfo is a joined Node as minik lists it: its host is where it runs.
func joinedInfo(n corev1.Node) NodeInfo {
	info := NodeInfo{Name: n.Name, Role: nodeconfig.RoleWorker, State: NodeStateJoined, Host: n.Labels[nodeconfig.JoinedHostLabel]}
	for _, a := range n.Status.Addresses {
		switch a.Type {
		case corev1.NodeInternalIP:
			if info.IP == "" {
				info.IP = a.Address
			}
		case corev1.NodeHostName:
			if info.Host == "" {
				info.Host = a.Address
			}
		}
	}
	return info
}

// NodeStateJoined is the state of a node on another machine: no driver
// runs it, so only Kubernetes' view (Ready) says how it is.
const NodeStateJoined = "Joined"

// deleteJoinedNode drains a joined node and deletes its Node; its agent
// sees the deletion and stops for good.
func (m *Manager) deleteJoinedNode(ctx context.Context, client kubernetes.Interface, n *corev1.Node) error {
	done := m.report.Step(StepDrainNode)
	err := drainNode(ctx, client, n.Name, readyState(*n) == NodeReady)
	done(err)
	if err != nil {
		return err
	}
	done = m.report.Step(StepDeleteNode)
	err = deleteNodeObject(ctx, client, n.Name)
	done(err)
	return err
}
