package kubeconfig

import (
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// existing is a kubeconfig a user might already have: entries of other
// tools, extensions, preferences and a current context.
const existing = `apiVersion: v1
kind: Config
preferences:
  colors: true
clusters:
- name: prod
  cluster:
    server: https://prod.example:6443
    certificate-authority: /etc/prod/ca.crt
    extensions:
    - name: example.com/meta
      extension:
        region: eu
- name: kind-dev
  cluster:
    server: https://127.0.0.1:39999
    insecure-skip-tls-verify: true
users:
- name: prod-admin
  user:
    token: s3cr3t
- name: kind-dev
  user:
    exec:
      apiVersion: client.authentication.k8s.io/v1
      command: get-token
      args: ["--cluster", "dev"]
      interactiveMode: Never
contexts:
- name: prod
  context:
    cluster: prod
    user: prod-admin
    namespace: payments
- name: kind-dev
  context:
    cluster: kind-dev
    user: kind-dev
current-context: prod
extensions:
- name: example.com/top
  extension:
    hello: world
`

func entry(name string, port int) Entry {
	return Entry{
		Name:       name,
		Server:     "https://127.0.0.1:" + strconv.Itoa(port),
		CAData:     []byte("-----BEGIN CERTIFICATE-----\nCA-" + name + "\n-----END CERTIFICATE-----\n"),
		ClientCert: []byte("-----BEGIN CERTIFICATE-----\nCERT-" + name + "\n-----END CERTIFICATE-----\n"),
		ClientKey:  []byte("-----BEGIN PRIVATE KEY-----\nKEY-" + name + "\n-----END PRIVATE KEY-----\n"),
	}
}

func load(t *testing.T, path string) *clientcmdapi.Config {
	t.Helper()
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	cfg, err := clientcmd.Load(data)
	require.NoError(t, err)
	return cfg
}

// requireEntry checks that cfg holds exactly e under e.Name.
func requireEntry(t *testing.T, cfg *clientcmdapi.Config, e Entry) {
	t.Helper()
	require.Contains(t, cfg.Clusters, e.Name)
	require.Contains(t, cfg.AuthInfos, e.Name)
	require.Contains(t, cfg.Contexts, e.Name)
	assert.Equal(t, e.Server, cfg.Clusters[e.Name].Server)
	assert.Equal(t, e.CAData, cfg.Clusters[e.Name].CertificateAuthorityData)
	assert.Equal(t, e.ClientCert, cfg.AuthInfos[e.Name].ClientCertificateData)
	assert.Equal(t, e.ClientKey, cfg.AuthInfos[e.Name].ClientKeyData)
	assert.Equal(t, e.Name, cfg.Contexts[e.Name].Cluster)
	assert.Equal(t, e.Name, cfg.Contexts[e.Name].AuthInfo)
}

// requireOthersKept checks that everything of the existing kubeconfig except
// current-context survived.
func requireOthersKept(t *testing.T, before, after *clientcmdapi.Config) {
	t.Helper()
	for name, c := range before.Clusters {
		assert.Equal(t, c, after.Clusters[name], "cluster %s", name)
	}
	for name, u := range before.AuthInfos {
		assert.Equal(t, u, after.AuthInfos[name], "user %s", name)
	}
	for name, c := range before.Contexts {
		assert.Equal(t, c, after.Contexts[name], "context %s", name)
	}
	assert.Equal(t, before.Preferences, after.Preferences)
	assert.Equal(t, before.Extensions, after.Extensions)
}

func requireMode(t *testing.T, path string, want fs.FileMode) {
	t.Helper()
	st, err := os.Stat(path)
	require.NoError(t, err)
	assert.Equal(t, want, st.Mode().Perm(), path)
}

// requireOnly checks that dir holds just the named files: no temp or lock
// files are left behind.
func requireOnly(t *testing.T, dir string, names ...string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	var got []string
	for _, e := range entries {
		got = append(got, e.Name())
	}
	assert.ElementsMatch(t, names, got)
}

func TestPath(t *testing.T) {
	sep := string(filepath.ListSeparator)
	home := filepath.Join("/home", "u")
	def := filepath.Join(home, ".kube", "config")
	tests := []struct {
		name, env, want string
	}{
		{"unset", "", def},
		{"single", "/k/one", "/k/one"},
		{"first of list", "/k/one" + sep + "/k/two", "/k/one"},
		{"leading empty entries", sep + sep + "/k/two", "/k/two"},
		{"only separators", sep + sep, def},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, Path(tt.env, home))
		})
	}
}

func TestMergeCreatesFile(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "home", ".kube")
	path := filepath.Join(dir, "config")
	e := entry("minik", 40001)

	require.NoError(t, Merge(path, e, true))

	requireMode(t, path, 0o600)
	requireMode(t, dir, 0o700)
	requireOnly(t, dir, "config")
	cfg := load(t, path)
	requireEntry(t, cfg, e)
	assert.Equal(t, "minik", cfg.CurrentContext)
	assert.Len(t, cfg.Clusters, 1)
	assert.Len(t, cfg.AuthInfos, 1)
	assert.Len(t, cfg.Contexts, 1)
}

func TestMergeKeepsOtherEntries(t *testing.T) {
	tests := []struct {
		makeCurrent bool
		wantCurrent string
	}{
		{false, "prod"},
		{true, "minik"},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("makeCurrent=%v", tt.makeCurrent), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "config")
			require.NoError(t, os.WriteFile(path, []byte(existing), 0o600))
			before := load(t, path)
			e := entry("minik", 40001)

			require.NoError(t, Merge(path, e, tt.makeCurrent))

			after := load(t, path)
			requireOthersKept(t, before, after)
			requireEntry(t, after, e)
			assert.Equal(t, tt.wantCurrent, after.CurrentContext)
			assert.Len(t, after.Clusters, 3)
			assert.Len(t, after.AuthInfos, 3)
			assert.Len(t, after.Contexts, 3)
		})
	}
}

func TestMergeReplaces(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config")
	require.NoError(t, os.WriteFile(path, []byte(existing), 0o600))
	before := load(t, path)

	require.NoError(t, Merge(path, entry("minik", 40001), false))
	second := entry("minik", 40002)
	second.ClientCert = []byte("renewed")
	require.NoError(t, Merge(path, second, false))

	after := load(t, path)
	requireEntry(t, after, second)
	assert.Equal(t, "https://127.0.0.1:40002", after.Clusters["minik"].Server)
	requireOthersKept(t, before, after)
	assert.Equal(t, "prod", after.CurrentContext)
	assert.Len(t, after.Clusters, 3)
}

func TestMergeKeepsContextNamespace(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config")
	require.NoError(t, Merge(path, entry("minik", 40001), true))
	cfg := load(t, path)
	cfg.Contexts["minik"].Namespace = "team-a"
	require.NoError(t, clientcmd.WriteToFile(*cfg, path))

	require.NoError(t, Merge(path, entry("minik", 40002), true))
	assert.Equal(t, "team-a", load(t, path).Contexts["minik"].Namespace)
}

func TestMergeUnchangedLeavesFileAlone(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config")
	require.NoError(t, Merge(path, entry("minik", 40001), true))
	before, err := os.Stat(path)
	require.NoError(t, err)

	require.NoError(t, Merge(path, entry("minik", 40001), true))
	after, err := os.Stat(path)
	require.NoError(t, err)
	// A rewrite would rename a new file into place.
	assert.True(t, os.SameFile(before, after))
}

func TestMergeFollowsSymlink(t *testing.T) {
	dir := t.TempDir()
	real := filepath.Join(dir, "dotfiles-kubeconfig")
	require.NoError(t, os.WriteFile(real, []byte(existing), 0o600))
	link := filepath.Join(dir, "config")
	require.NoError(t, os.Symlink(real, link))

	require.NoError(t, Merge(link, entry("minik", 40001), false))

	st, err := os.Lstat(link)
	require.NoError(t, err)
	assert.Equal(t, fs.ModeSymlink, st.Mode().Type(), "link must stay a link")
	requireEntry(t, load(t, real), entry("minik", 40001))
}

func TestMergeRejectsInvalidEntry(t *testing.T) {
	tests := []struct {
		name string
		e    Entry
	}{
		{"no name", Entry{Server: "https://127.0.0.1:1"}},
		{"no server", Entry{Name: "minik"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "config")
			require.Error(t, Merge(path, tt.e, true))
			assert.NoFileExists(t, path)
		})
	}
}

func TestRemove(t *testing.T) {
	tests := []struct {
		name        string
		makeCurrent bool
		wantCurrent string
	}{
		{"minik current", true, ""},
		{"other current", false, "prod"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "config")
			require.NoError(t, os.WriteFile(path, []byte(existing), 0o600))
			before := load(t, path)
			require.NoError(t, Merge(path, entry("minik", 40001), tt.makeCurrent))
			require.NoError(t, Merge(path, entry("minik-2", 40002), false))

			require.NoError(t, Remove(path, "minik"))

			after := load(t, path)
			assert.NotContains(t, after.Clusters, "minik")
			assert.NotContains(t, after.AuthInfos, "minik")
			assert.NotContains(t, after.Contexts, "minik")
			requireEntry(t, after, entry("minik-2", 40002))
			requireOthersKept(t, before, after)
			assert.Equal(t, tt.wantCurrent, after.CurrentContext)
			requireMode(t, path, 0o600)
		})
	}
}

func TestRemoveMissing(t *testing.T) {
	t.Run("file", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "missing", "config")
		require.NoError(t, Remove(path, "minik"))
		assert.NoFileExists(t, path)
		assert.NoDirExists(t, filepath.Dir(path))
	})
	t.Run("entries", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "config")
		require.NoError(t, os.WriteFile(path, []byte(existing), 0o600))
		require.NoError(t, Remove(path, "minik"))
		data, err := os.ReadFile(path)
		require.NoError(t, err)
		assert.Equal(t, existing, string(data), "nothing to remove, nothing rewritten")
	})
}

func TestCorruptFileIsLeftAlone(t *testing.T) {
	contents := []struct {
		name, data string
	}{
		{"broken yaml", "clusters: [\n"},
		{"wrong type", "apiVersion: v1\nkind: Config\nclusters: notalist\n"},
		{"not a kubeconfig", "apiVersion: v1\nkind: Pod\n"},
	}
	ops := []struct {
		name string
		run  func(path string) error
	}{
		{"merge", func(path string) error { return Merge(path, entry("minik", 40001), true) }},
		{"remove", func(path string) error { return Remove(path, "minik") }},
	}
	for _, c := range contents {
		for _, op := range ops {
			t.Run(c.name+"/"+op.name, func(t *testing.T) {
				dir := t.TempDir()
				path := filepath.Join(dir, "config")
				require.NoError(t, os.WriteFile(path, []byte(c.data), 0o644))

				err := op.run(path)
				require.Error(t, err)
				assert.Contains(t, err.Error(), "parse kubeconfig "+path+": ")
				assert.Contains(t, err.Error(), "; fix or move the file")

				data, err := os.ReadFile(path)
				require.NoError(t, err)
				assert.Equal(t, c.data, string(data))
				requireMode(t, path, 0o644)
				requireOnly(t, dir, "config")
			})
		}
	}
}

func TestConcurrentMergesAllSurvive(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config")
	require.NoError(t, os.WriteFile(path, []byte(existing), 0o600))

	const n = 10
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			errs[i] = Merge(path, entry(fmt.Sprintf("minik-%d", i), 40000+i), i%2 == 0)
		})
	}
	wg.Wait()

	for _, err := range errs {
		require.NoError(t, err)
	}
	cfg := load(t, path)
	for i := range n {
		requireEntry(t, cfg, entry(fmt.Sprintf("minik-%d", i), 40000+i))
	}
	assert.Len(t, cfg.Contexts, n+2)
	requireOnly(t, filepath.Dir(path), "config")
}

// TestConcurrentMergesAcrossProcesses runs this test binary several times
// at once, each merging its own entries, to exercise the lock between
// processes rather than goroutines.
func TestConcurrentMergesAcrossProcesses(t *testing.T) {
	if path := os.Getenv("MINIK_KUBECONFIG_TEST_PATH"); path != "" {
		proc := os.Getenv("MINIK_KUBECONFIG_TEST_PROC")
		for i := range 5 {
			if err := Merge(path, entry(fmt.Sprintf("p%s-%d", proc, i), 40000+i), true); err != nil {
				fmt.Fprintln(os.Stderr, err)
				os.Exit(1)
			}
		}
		return
	}

	path := filepath.Join(t.TempDir(), "config")
	const procs = 4
	cmds := make([]*exec.Cmd, procs)
	for p := range procs {
		cmd := exec.Command(os.Args[0], "-test.run=^TestConcurrentMergesAcrossProcesses$")
		cmd.Env = append(os.Environ(),
			"MINIK_KUBECONFIG_TEST_PATH="+path,
			"MINIK_KUBECONFIG_TEST_PROC="+strconv.Itoa(p))
		require.NoError(t, cmd.Start())
		cmds[p] = cmd
	}
	for _, cmd := range cmds {
		require.NoError(t, cmd.Wait())
	}

	cfg := load(t, path)
	for p := range procs {
		for i := range 5 {
			requireEntry(t, cfg, entry(fmt.Sprintf("p%d-%d", p, i), 40000+i))
		}
	}
	requireOnly(t, filepath.Dir(path), "config")
}

func TestLockExcludesKubectl(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config")
	unlock, err := lock(path)
	require.NoError(t, err)

	// kubectl's own lock is an O_EXCL create of the same file.
	_, err = os.OpenFile(path+".lock", os.O_CREATE|os.O_EXCL, 0)
	assert.ErrorIs(t, err, fs.ErrExist)

	unlock()
	f, err := os.OpenFile(path+".lock", os.O_CREATE|os.O_EXCL, 0)
	require.NoError(t, err, "kubectl must be able to lock once minik is done")
	require.NoError(t, f.Close())
}

func TestWrite(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "profiles", "minik")
	path := filepath.Join(dir, "admin.conf")
	// Write replaces whatever was there, including other entries.
	require.NoError(t, os.MkdirAll(dir, 0o700))
	require.NoError(t, os.WriteFile(path, []byte(existing), 0o644))
	e := entry("minik", 40001)

	require.NoError(t, Write(path, e))

	requireMode(t, path, 0o600)
	requireOnly(t, dir, "admin.conf")
	cfg := load(t, path)
	requireEntry(t, cfg, e)
	assert.Equal(t, "minik", cfg.CurrentContext)
	assert.Len(t, cfg.Clusters, 1)
	assert.Len(t, cfg.AuthInfos, 1)
	assert.Len(t, cfg.Contexts, 1)

	rc, err := clientcmd.BuildConfigFromFlags("", path)
	require.NoError(t, err)
	assert.Equal(t, e.Server, rc.Host)
	assert.Equal(t, e.CAData, rc.CAData)
	assert.Equal(t, e.ClientCert, rc.CertData)
	assert.Equal(t, e.ClientKey, rc.KeyData)
}

func TestWriteWithFiles(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "new")
	path := filepath.Join(dir, "scheduler.conf")

	require.NoError(t, WriteWithFiles(path, "minik", "https://127.0.0.1:40001",
		"/pki/ca.crt", "/pki/scheduler.crt", "/pki/scheduler.key"))

	requireMode(t, path, 0o600)
	requireMode(t, dir, 0o700)
	cfg := load(t, path)
	assert.Equal(t, "minik", cfg.CurrentContext)
	require.Contains(t, cfg.Clusters, "minik")
	assert.Equal(t, "https://127.0.0.1:40001", cfg.Clusters["minik"].Server)
	assert.Equal(t, "/pki/ca.crt", cfg.Clusters["minik"].CertificateAuthority)
	assert.Empty(t, cfg.Clusters["minik"].CertificateAuthorityData)
	require.Contains(t, cfg.AuthInfos, "minik")
	assert.Equal(t, "/pki/scheduler.crt", cfg.AuthInfos["minik"].ClientCertificate)
	assert.Equal(t, "/pki/scheduler.key", cfg.AuthInfos["minik"].ClientKey)
	require.Contains(t, cfg.Contexts, "minik")
	assert.Equal(t, &clientcmdapi.Context{Cluster: "minik", AuthInfo: "minik", Extensions: cfg.Contexts["minik"].Extensions},
		cfg.Contexts["minik"])

	require.Error(t, WriteWithFiles(path, "", "https://127.0.0.1:1", "a", "b", "c"))
}
