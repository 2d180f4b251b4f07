package pki

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"regexp"
	"time"
)

const (
	caCN           = "minik-ca"
	frontProxyCACN = "minik-front-proxy-ca"

	// RenewBefore is how close to expiry a certificate is replaced, at
	// the next start.
	RenewBefore = 30 * 24 * time.Hour
	// clockSkew backdates NotBefore so node containers or VMs whose clock
	// is slightly behind the host's accept fresh certificates.
	clockSkew = 5 * time.Minute
)

// NodeSpec is a node that gets its own kubelet certificates.
type NodeSpec struct {
	Name string // node name, e.g. "minik" or "minik-m02"
	IP   net.IP // node IP, e.g. 127.0.0.1 or 127.0.2.1
}

// Spec describes the PKI of a cluster.
type Spec struct {
	Dir          string   // where the files go, e.g. $MINIK_HOME/profiles/NAME/pki
	APIServerIPs []net.IP // IP SANs of the apiserver serving certificate
	APIServerDNS []string // DNS SANs of the apiserver serving certificate
	Nodes        []NodeSpec
}

// authority is a CA loaded or created by Ensure.
type authority struct {
	cert *x509.Certificate
	key  crypto.Signer
}

// leaf describes one certificate signed by a CA.
type leaf struct {
	cert, key  string
	frontProxy bool // signed by the front-proxy CA instead of the cluster CA
	cn         string
	orgs       []string
	usage      x509.ExtKeyUsage
	dns        []string
	ips        []net.IP
}

// Ensure creates or refreshes every file of the PKI and returns their paths.
// What exists and still matches spec is reused, so when nothing changed it
// only reads and checks files.
func Ensure(spec Spec) (*Paths, error) {
	if err := spec.validate(); err != nil {
		return nil, fmt.Errorf("validate pki spec: %w", err)
	}
	p := Layout(spec.Dir)
	if err := ensure(spec, p, time.Now()); err != nil {
		return nil, fmt.Errorf("ensure pki in %s: %w", spec.Dir, err)
	}
	return p, nil
}

func ensure(spec Spec, p *Paths, now time.Time) error {
	if err := os.MkdirAll(p.Dir, dirMode); err != nil {
		return fmt.Errorf("create directory: %w", err)
	}
	// MkdirAll keeps the mode of an existing directory; private keys live here.
	if err := fixMode(p.Dir, dirMode); err != nil {
		return err
	}

	ca, caNew, err := ensureCA(p.CACert, p.CAKey, caCN, now)
	if err != nil {
		return err
	}
	fp, fpNew, err := ensureCA(p.FrontProxyCACert, p.FrontProxyCAKey, frontProxyCACN, now)
	if err != nil {
		return err
	}
	if err := ensureSA(p.SAKey, p.SAPub); err != nil {
		return err
	}
	for _, l := range leaves(spec, p) {
		signer, force := ca, caNew
		if l.frontProxy {
			signer, force = fp, fpNew
		}
		if err := ensureLeaf(signer, force, l, now); err != nil {
			return err
		}
	}
	return nil
}

// nodeName follows the DNS-1123 subdomain rule Kubernetes applies to node
// names; it also keeps path separators out of file names.
var nodeName = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`)

func (s Spec) validate() error {
	if s.Dir == "" {
		return errors.New("directory is empty")
	}
	for i, ip := range s.APIServerIPs {
		if ip == nil {
			return fmt.Errorf("apiserver IP %d is empty", i)
		}
	}
	seen := map[string]bool{}
	for _, n := range s.Nodes {
		if len(n.Name) > 253 || !nodeName.MatchString(n.Name) {
			return fmt.Errorf("node name %q is not a valid DNS subdomain", n.Name)
		}
		if seen[n.Name] {
			return fmt.Errorf("node %q is listed twice", n.Name)
		}
		seen[n.Name] = true
		if n.IP == nil {
			return fmt.Errorf("node %q has no IP", n.Name)
		}
	}
	return nil
}

// leaves lists every certificate signed by a CA, in a fixed order. SANs are
// deduplicated here so the certificate and the check agree.
func leaves(spec Spec, p *Paths) []leaf {
	ls := []leaf{
		{cert: p.FrontProxyClientCert, key: p.FrontProxyClientKey, frontProxy: true,
			cn: "front-proxy-client", usage: x509.ExtKeyUsageClientAuth},
		{cert: p.APIServerCert, key: p.APIServerKey,
			cn: "kube-apiserver", usage: x509.ExtKeyUsageServerAuth,
			dns: dedupe(spec.APIServerDNS), ips: dedupeIPs(spec.APIServerIPs)},
		{cert: p.APIServerKubeletClientCert, key: p.APIServerKubeletClientKey,
			cn: "kube-apiserver-kubelet-client", orgs: []string{"system:masters"}, usage: x509.ExtKeyUsageClientAuth},
		{cert: p.AdminCert, key: p.AdminKey,
			cn: "minik-admin", orgs: []string{"system:masters"}, usage: x509.ExtKeyUsageClientAuth},
		{cert: p.ControllerManagerCert, key: p.ControllerManagerKey,
			cn: "system:kube-controller-manager", usage: x509.ExtKeyUsageClientAuth},
		{cert: p.SchedulerCert, key: p.SchedulerKey,
			cn: "system:kube-scheduler", usage: x509.ExtKeyUsageClientAuth},
	}
	for _, n := range spec.Nodes {
		ls = append(ls,
			leaf{cert: p.KubeletClientCert(n.Name), key: p.KubeletClientKey(n.Name),
				cn: "system:node:" + n.Name, orgs: []string{"system:nodes"}, usage: x509.ExtKeyUsageClientAuth},
			leaf{cert: p.KubeletServingCert(n.Name), key: p.KubeletServingKey(n.Name),
				cn: n.Name, usage: x509.ExtKeyUsageServerAuth,
				dns: []string{n.Name, "localhost"}, ips: []net.IP{n.IP}},
		)
	}
	return ls
}

// ensureCA loads the CA or creates a new one, reporting whether it did, since
// everything the old CA signed must then be reissued.
func ensureCA(certPath, keyPath, cn string, now time.Time) (*authority, bool, error) {
	cert, err := loadCert(certPath)
	if err != nil {
		return nil, false, err
	}
	key, err := loadKey(keyPath)
	if err != nil {
		return nil, false, err
	}
	if cert != nil && key != nil && caValid(cert, key, cn, now) {
		if err := fixModes(certPath, keyPath); err != nil {
			return nil, false, err
		}
		return &authority{cert: cert, key: key}, false, nil
	}

	// A new CA always gets a new key so nothing signed by the old one can
	// verify against it.
	ca, err := newCA(cn, now.Add(-clockSkew), now.AddDate(10, 0, 0))
	if err != nil {
		return nil, false, err
	}
	// Key first: a crash in between leaves a mismatched pair, which the next
	// run detects and replaces.
	if err := writeKey(keyPath, ca.key); err != nil {
		return nil, false, err
	}
	if err := writeCert(certPath, ca.cert.Raw); err != nil {
		return nil, false, err
	}
	return ca, true, nil
}

func newCA(cn string, notBefore, notAfter time.Time) (*authority, error) {
	key, err := newKey()
	if err != nil {
		return nil, err
	}
	serial, err := newSerial()
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: cn},
		NotBefore:             notBefore,
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("create CA certificate %s: %w", cn, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("parse CA certificate %s: %w", cn, err)
	}
	return &authority{cert: cert, key: key}, nil
}

func caValid(cert *x509.Certificate, key crypto.Signer, cn string, now time.Time) bool {
	return cert.IsCA && cert.BasicConstraintsValid &&
		cert.KeyUsage&x509.KeyUsageCertSign != 0 &&
		cert.Subject.CommonName == cn &&
		matchesKey(cert, key) &&
		fresh(cert, now) &&
		cert.CheckSignatureFrom(cert) == nil
}

// ensureSA keeps the service-account key: replacing it invalidates every
// issued token, so only a missing or unreadable key is regenerated.
func ensureSA(keyPath, pubPath string) error {
	key, err := loadKey(keyPath)
	if err != nil {
		return err
	}
	if key == nil {
		if key, err = newKey(); err != nil {
			return err
		}
		if err := writeKey(keyPath, key); err != nil {
			return err
		}
	} else if err := fixMode(keyPath, keyMode); err != nil {
		return err
	}

	pub, err := loadPub(pubPath)
	if err != nil {
		return err
	}
	if eq, ok := pub.(interface{ Equal(crypto.PublicKey) bool }); ok && eq.Equal(key.Public()) {
		return fixMode(pubPath, certMode)
	}
	return writePub(pubPath, key.Public())
}

// ensureLeaf reuses the leaf when it still fits l and ca, otherwise reissues
// it. A parseable key is kept, so only the certificate file changes.
func ensureLeaf(ca *authority, force bool, l leaf, now time.Time) error {
	cert, err := loadCert(l.cert)
	if err != nil {
		return err
	}
	key, err := loadKey(l.key)
	if err != nil {
		return err
	}
	if !force && cert != nil && key != nil && leafValid(cert, key, ca, l, now) {
		return fixModes(l.cert, l.key)
	}

	if key == nil {
		if key, err = newKey(); err != nil {
			return err
		}
		if err := writeKey(l.key, key); err != nil {
			return err
		}
	} else if err := fixMode(l.key, keyMode); err != nil {
		return err
	}
	return issueLeaf(ca, l, key, now.Add(-clockSkew), now.AddDate(1, 0, 0))
}

// issueLeaf signs key's public half for l and writes the certificate.
func issueLeaf(ca *authority, l leaf, key crypto.Signer, notBefore, notAfter time.Time) error {
	serial, err := newSerial()
	if err != nil {
		return err
	}
	// A leaf outliving its CA would fail verification anyway.
	if notAfter.After(ca.cert.NotAfter) {
		notAfter = ca.cert.NotAfter
	}
	usage := x509.KeyUsageDigitalSignature
	if _, ok := key.Public().(*rsa.PublicKey); ok {
		usage |= x509.KeyUsageKeyEncipherment
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: l.cn, Organization: l.orgs},
		NotBefore:             notBefore,
		NotAfter:              notAfter,
		KeyUsage:              usage,
		ExtKeyUsage:           []x509.ExtKeyUsage{l.usage},
		BasicConstraintsValid: true,
		DNSNames:              l.dns,
		IPAddresses:           l.ips,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, key.Public(), ca.key)
	if err != nil {
		return fmt.Errorf("sign %s: %w", l.cert, err)
	}
	return writeCert(l.cert, der)
}

func leafValid(cert *x509.Certificate, key crypto.Signer, ca *authority, l leaf, now time.Time) bool {
	return !cert.IsCA &&
		matchesKey(cert, key) &&
		fresh(cert, now) &&
		bytes.Equal(cert.RawIssuer, ca.cert.RawSubject) &&
		cert.CheckSignatureFrom(ca.cert) == nil &&
		cert.Subject.CommonName == l.cn &&
		sameSet(cert.Subject.Organization, l.orgs) &&
		sameSet(cert.ExtKeyUsage, []x509.ExtKeyUsage{l.usage}) &&
		sameSet(cert.DNSNames, l.dns) &&
		sameSet(ipStrings(cert.IPAddresses), ipStrings(l.ips))
}

// fresh reports whether cert is valid now and for at least RenewBefore.
func fresh(cert *x509.Certificate, now time.Time) bool {
	return !now.Before(cert.NotBefore) && now.Add(RenewBefore).Before(cert.NotAfter)
}

func matchesKey(cert *x509.Certificate, key crypto.Signer) bool {
	pub, ok := cert.PublicKey.(interface{ Equal(crypto.PublicKey) bool })
	return ok && pub.Equal(key.Public())
}

func fixModes(certPath, keyPath string) error {
	if err := fixMode(certPath, certMode); err != nil {
		return err
	}
	return fixMode(keyPath, keyMode)
}

func newKey() (crypto.Signer, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate key: %w", err)
	}
	return key, nil
}

func newSerial() (*big.Int, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return nil, fmt.Errorf("generate serial number: %w", err)
	}
	return serial, nil
}

func sameSet[T comparable](a, b []T) bool {
	set := func(s []T) map[T]bool {
		m := make(map[T]bool, len(s))
		for _, v := range s {
			m[v] = true
		}
		return m
	}
	sa, sb := set(a), set(b)
	if len(sa) != len(sb) {
		return false
	}
	for v := range sa {
		if !sb[v] {
			return false
		}
	}
	return true
}

func dedupe(s []string) []string {
	var out []string
	seen := map[string]bool{}
	for _, v := range s {
		if v != "" && !seen[v] {
			seen[v] = true
			out = append(out, v)
		}
	}
	return out
}

func dedupeIPs(ips []net.IP) []net.IP {
	var out []net.IP
	seen := map[string]bool{}
	for _, ip := range ips {
		if k := ip.String(); !seen[k] {
			seen[k] = true
			out = append(out, ip)
		}
	}
	return out
}

// ipStrings normalises IPs so 4- and 16-byte forms of an IPv4 address compare
// equal.
func ipStrings(ips []net.IP) []string {
	out := make([]string, len(ips))
	for i, ip := range ips {
		out[i] = ip.String()
	}
	return out
}
