package gatewayconformance

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/gateway-api/conformance"
	confv1 "sigs.k8s.io/gateway-api/conformance/apis/v1"
	"sigs.k8s.io/gateway-api/conformance/utils/suite"
	gwclient "sigs.k8s.io/gateway-api/pkg/client/clientset/versioned"
	"sigs.k8s.io/gateway-api/pkg/features"

	"minik.dev/minik/gateway"
)

// Supported are the features minik claims beyond the core of the
// GATEWAY-HTTP profile; the suite runs their tests too.
var Supported = []features.FeatureName{
	features.SupportHTTPRouteResponseHeaderModification,
	features.SupportHTTPRouteMethodMatching,
	features.SupportHTTPRouteQueryParamMatching,
	features.SupportHTTPRoutePathRedirect,
	features.SupportHTTPRouteHostRewrite,
	features.SupportHTTPRoutePathRewrite,
	features.SupportHTTPRouteSchemeRedirect,
	features.SupportHTTPRoutePortRedirect,
	features.SupportHTTPRoute303RedirectStatusCode,
	features.SupportHTTPRoute307RedirectStatusCode,
	features.SupportHTTPRoute308RedirectStatusCode,
}

func TestGatewayConformance(t *testing.T) {
	if os.Getenv("MINIK_GATEWAY_CONFORMANCE") == "" {
		t.Skip("set MINIK_GATEWAY_CONFORMANCE=1 (make gateway-conformance) to run the Gateway API conformance suite")
	}
	minik, node := os.Getenv("MINIK_BINARY"), os.Getenv("MINIK_NODE_BINARY")
	require.NotEmpty(t, minik, "MINIK_BINARY names the built minik")
	require.NotEmpty(t, node, "MINIK_NODE_BINARY names the built minik-node")
	report := os.Getenv("MINIK_GATEWAY_REPORT")

	buildEcho(t)
	kubeconfig := startCluster(t, minik, node)
	t.Setenv("KUBECONFIG", kubeconfig)
	waitForClass(t, kubeconfig)

	opts := conformance.DefaultOptions(t)
	opts.GatewayClassName = gateway.ClassName
	opts.ConformanceProfiles = sets.New(suite.GatewayHTTPConformanceProfileName).UnsortedList()
	opts.SupportedFeatures = append([]features.FeatureName{features.SupportGateway, features.SupportHTTPRoute, features.SupportReferenceGrant}, Supported...)
	opts.ReportOutputPath = report
	opts.CleanupBaseResources = true
	opts.ManifestFS = []fs.FS{withoutCoreDNS(t)}
	opts.Implementation = confv1.Implementation{
		Organization: "minik", Project: "minik", URL: "minik.dev",
		Version: "dev", Contact: []string{"minik maintainers"},
	}
	if only := os.Getenv("MINIK_GATEWAY_RUN_TEST"); only != "" {
		opts.RunTest = only
	}
	conformance.RunConformanceWithOptions(t, opts)
}

// withoutCoreDNS is the suite's manifests less the CoreDNS Deployment of
// its base manifests: only UDPRoute tests (not in GATEWAY-HTTP) use it,
// and its image cannot be had here, so it would keep the suite's setup
// waiting for a pod that never starts.
func withoutCoreDNS(t *testing.T) fs.FS {
	t.Helper()
	out := fstest.MapFS{}
	err := fs.WalkDir(conformance.Manifests, ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := fs.ReadFile(conformance.Manifests, path)
		if err != nil {
			return err
		}
		if path == "base/manifests.yaml" {
			docs := strings.Split(string(data), "\n---\n")
			kept := docs[:0]
			for _, doc := range docs {
				if strings.Contains(doc, "kind: Deployment") && strings.Contains(doc, "/coredns/coredns:") {
					continue
				}
				kept = append(kept, doc)
			}
			require.Len(t, kept, len(docs)-1, "the base manifests have one CoreDNS Deployment")
			data = []byte(strings.Join(kept, "\n---\n"))
		}
		out[path] = &fstest.MapFile{Data: data, Mode: 0o644}
		return nil
	})
	require.NoError(t, err)
	return out
}

// waitForClass waits until the control plane has installed the CRDs and
// accepted GatewayClass minik: the suite starts by checking it.
func waitForClass(t *testing.T, kubeconfig string) {
	t.Helper()
	rc, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	require.NoError(t, err)
	gc, err := gwclient.NewForConfig(rc)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	err = wait.PollUntilContextCancel(ctx, time.Second, true, func(ctx context.Context) (bool, error) {
		c, err := gc.GatewayV1().GatewayClasses().Get(ctx, gateway.ClassName, metav1.GetOptions{})
		return err == nil && meta.IsStatusConditionTrue(c.Status.Conditions, "Accepted"), nil
	})
	require.NoError(t, err, "GatewayClass %s accepted", gateway.ClassName)
}

// echoImage matches the echo server's image references in the suite's
// manifests.
var echoImage = regexp.MustCompile(`image:\s*(\S+/echo-basic:\S+)`)

// buildEcho builds the module's echo server into a FROM scratch image
// and tags it with every name the suite's manifests use.
func buildEcho(t *testing.T) {
	t.Helper()
	names := sets.New[string]()
	err := fs.WalkDir(conformance.Manifests, ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".yaml") {
			return err
		}
		data, err := fs.ReadFile(conformance.Manifests, path)
		if err != nil {
			return err
		}
		for _, m := range echoImage.FindAllStringSubmatch(string(data), -1) {
			names.Insert(m[1])
		}
		return nil
	})
	require.NoError(t, err)
	require.NotZero(t, names.Len(), "the suite's manifests name no echo image")
	dir := t.TempDir()
	build := exec.Command("go", "build", "-trimpath", "-o", filepath.Join(dir, "echo-basic"), "sigs.k8s.io/gateway-api/conformance/echo-basic")
	build.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux")
	out, err := build.CombinedOutput()
	require.NoError(t, err, "build echo-basic: %s", out)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte("FROM scratch\nCOPY echo-basic /echo-basic\nENTRYPOINT [\"/echo-basic\"]\n"), 0o644))
	list := sets.List(names)
	sort.Strings(list)
	args := []string{"build", "-q"}
	for _, n := range list {
		args = append(args, "-t", n)
	}
	out, err = exec.Command("docker", append(args, dir)...).CombinedOutput()
	require.NoError(t, err, "docker build: %s", out)
	t.Logf("echo image built as %s", strings.Join(list, ", "))
	t.Cleanup(func() { _ = exec.Command("docker", append([]string{"rmi", "-f"}, list...)...).Run() })
}

// startCluster starts a one-node docker cluster in a private MINIK_HOME
// and returns its kubeconfig; it is deleted when the test ends.
func startCluster(t *testing.T, minik, node string) string {
	t.Helper()
	dir := t.TempDir()
	kubeconfig := filepath.Join(dir, "kubeconfig")
	env := append(os.Environ(), "MINIK_HOME="+filepath.Join(dir, "home"), "KUBECONFIG="+kubeconfig,
		"MINIK_NODE_BINARY="+node, "HOME="+dir)
	run := func(timeout time.Duration, args ...string) error {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		cmd := exec.CommandContext(ctx, minik, args...)
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		if err != nil {
			return fmt.Errorf("minik %s: %w: %s", strings.Join(args, " "), err, out)
		}
		return nil
	}
	t.Cleanup(func() {
		if err := run(5*time.Minute, "delete", "--all"); err != nil {
			t.Logf("delete the cluster: %v", err)
		}
	})
	require.NoError(t, run(10*time.Minute, "start", "-p", "gwconf", "--driver", "docker"))
	return kubeconfig
}
