package projected

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/tools/record"
	"k8s.io/utils/ptr"
)

// selfSigned is a PEM certificate named cn.
func selfSigned(t *testing.T, cn string) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}

// commonNames are the subjects of the certificates in a PEM bundle.
func commonNames(t *testing.T, bundle []byte) []string {
	t.Helper()
	var out []string
	for {
		var b *pem.Block
		b, bundle = pem.Decode(bundle)
		if b == nil {
			return out
		}
		c, err := x509.ParseCertificate(b.Bytes)
		require.NoError(t, err)
		out = append(out, c.Subject.CommonName)
	}
}

func TestTrustBundle(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	a, b, c := selfSigned(t, "a"), selfSigned(t, "b"), selfSigned(t, "c")
	ctb := func(name, signer, bundle string, labels map[string]string) *certificatesv1.ClusterTrustBundle {
		return &certificatesv1.ClusterTrustBundle{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels},
			Spec: certificatesv1.ClusterTrustBundleSpec{SignerName: signer, TrustBundle: bundle}}
	}
	client := fake.NewClientset(
		ctb("plain", "", a+b, nil),
		ctb("example.com:s:live", "example.com/s", a+c, map[string]string{"live": "true"}),
		ctb("example.com:s:old", "example.com/s", b, map[string]string{"live": "false"}),
		ctb("other.com:s:x", "other.com/s", c, map[string]string{"live": "true"}),
	)
	// The kubelet's manager finds the served version by discovery.
	client.Resources = []*metav1.APIResourceList{{GroupVersion: certificatesv1.SchemeGroupVersion.String(),
		APIResources: []metav1.APIResource{{Name: "clustertrustbundles", Kind: "ClusterTrustBundle"}}}}
	s := New(ctx, client, "n1", record.NewFakeRecorder(10))

	for _, tc := range []struct {
		name    string
		src     corev1.ClusterTrustBundleProjection
		want    []string
		wantErr string
	}{
		{name: "by name", src: corev1.ClusterTrustBundleProjection{Name: ptr.To("plain")}, want: []string{"a", "b"}},
		{name: "missing by name", src: corev1.ClusterTrustBundleProjection{Name: ptr.To("nope")}, wantErr: "not found"},
		{name: "missing by name, optional", src: corev1.ClusterTrustBundleProjection{Name: ptr.To("nope"), Optional: ptr.To(true)}},
		{name: "signer, every bundle", src: corev1.ClusterTrustBundleProjection{SignerName: ptr.To("example.com/s"),
			LabelSelector: &metav1.LabelSelector{}}, want: []string{"a", "b", "c"}},
		{name: "signer and labels", src: corev1.ClusterTrustBundleProjection{SignerName: ptr.To("example.com/s"),
			LabelSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"live": "true"}}}, want: []string{"a", "c"}},
		{name: "signer, nil selector matches none", src: corev1.ClusterTrustBundleProjection{SignerName: ptr.To("example.com/s")},
			wantErr: "matches no ClusterTrustBundle"},
		{name: "signer, labels match none", src: corev1.ClusterTrustBundleProjection{SignerName: ptr.To("example.com/s"),
			LabelSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"live": "maybe"}}}, wantErr: "matched zero"},
		{name: "signer, nil selector, optional", src: corev1.ClusterTrustBundleProjection{SignerName: ptr.To("example.com/s"),
			Optional: ptr.To(true)}},
		{name: "neither", src: corev1.ClusterTrustBundleProjection{}, wantErr: "name or a signerName"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := s.TrustBundle(ctx, &tc.src)
			if tc.wantErr != "" {
				require.ErrorContains(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			assert.ElementsMatch(t, tc.want, commonNames(t, got))
		})
	}
}

// Asking for a pod certificate makes a PodCertificateRequest of the
// pod's node; until it is issued there are no credentials.
func TestPodCertificateRequested(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1", UID: "node-uid"}}
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default", UID: "pod-uid"},
		Spec: corev1.PodSpec{NodeName: "n1", ServiceAccountName: "default", Volumes: []corev1.Volume{{Name: "creds",
			VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{Sources: []corev1.VolumeProjection{
				{PodCertificate: &corev1.PodCertificateProjection{SignerName: "example.com/s", KeyType: "ECDSAP256",
					CredentialBundlePath: "creds.pem"}}}}}}}}}
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default", Namespace: "default", UID: "sa-uid"}}
	client := fake.NewClientset(node, pod, sa)
	s := New(ctx, client, "n1", record.NewFakeRecorder(10))

	_, _, err := s.PodCertificate(ctx, pod, "creds", 0)
	require.Error(t, err, "not issued yet")
	var pcr certificatesv1.PodCertificateRequest
	require.Eventually(t, func() bool {
		list, err := client.CertificatesV1().PodCertificateRequests("default").List(ctx, metav1.ListOptions{})
		if err != nil || len(list.Items) == 0 {
			return false
		}
		pcr = list.Items[0]
		return true
	}, 30*time.Second, 50*time.Millisecond)
	assert.Equal(t, "example.com/s", pcr.Spec.SignerName)
	assert.Equal(t, pod.UID, pcr.Spec.PodUID)
	assert.EqualValues(t, "n1", pcr.Spec.NodeName)
	assert.EqualValues(t, "node-uid", pcr.Spec.NodeUID)
	assert.NotEmpty(t, pcr.Spec.StubPKCS10Request)

	s.ForgetPod(ctx, pod.UID)
	s.mu.Lock()
	assert.Empty(t, s.pods)
	s.mu.Unlock()
}
