// Package kubeconfig merges a minik cluster into the user's kubeconfig and
// writes the standalone kubeconfigs of a profile.
package kubeconfig

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"minik.dev/minik/atomicfile"
)

// Entry is what minik adds to a kubeconfig for one cluster.
type Entry struct {
	Name       string // cluster, user and context name, e.g. the profile name
	Server     string // https://127.0.0.1:PORT
	CAData     []byte // PEM
	ClientCert []byte // PEM
	ClientKey  []byte // PEM
}

const (
	fileMode fs.FileMode = 0o600
	dirMode  fs.FileMode = 0o700

	// Holders keep the lock for milliseconds; the timeout only matters when
	// a process hangs while holding it.
	lockTimeout = 30 * time.Second
	lockRetry   = 10 * time.Millisecond
)

// Path returns the kubeconfig minik writes to: the first non-empty entry of
// kubeconfigEnv ($KUBECONFIG), else homeDir/.kube/config. This matches the
// file kubectl writes to, so the merged context shows up there.
func Path(kubeconfigEnv, homeDir string) string {
	for _, p := range filepath.SplitList(kubeconfigEnv) {
		if p != "" {
			return p
		}
	}
	return filepath.Join(homeDir, ".kube", "config")
}

// Merge adds or replaces the cluster, user and context named e.Name in the
// kubeconfig at path, creating the file if needed, and makes the context
// current when makeCurrent. Everything else in the file is kept. A namespace
// the user set on an existing context of that name is kept too, so
// restarting a cluster does not reset it.
func Merge(path string, e Entry, makeCurrent bool) error {
	if err := e.validate(); err != nil {
		return fmt.Errorf("merge into kubeconfig %s: %w", path, err)
	}
	if err := os.MkdirAll(filepath.Dir(path), dirMode); err != nil {
		return fmt.Errorf("create kubeconfig directory: %w", err)
	}
	return update(path, true, func(cfg *clientcmdapi.Config) {
		namespace := ""
		if old, ok := cfg.Contexts[e.Name]; ok {
			namespace = old.Namespace
		}
		cfg.Clusters[e.Name] = e.cluster()
		cfg.AuthInfos[e.Name] = e.authInfo()
		cfg.Contexts[e.Name] = &clientcmdapi.Context{Cluster: e.Name, AuthInfo: e.Name, Namespace: namespace}
		if makeCurrent {
			cfg.CurrentContext = e.Name
		}
	})
}

// Remove deletes the cluster, user and context called name from the
// kubeconfig at path, clearing current-context if it pointed there. A missing
// file or missing entries are fine; the file itself is never deleted.
func Remove(path, name string) error {
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return update(path, false, func(cfg *clientcmdapi.Config) {
		delete(cfg.Clusters, name)
		delete(cfg.AuthInfos, name)
		delete(cfg.Contexts, name)
		if cfg.CurrentContext == name {
			cfg.CurrentContext = ""
		}
	})
}

// Write writes a kubeconfig holding only e, as the current context, with the
// credentials embedded.
func Write(path string, e Entry) error {
	if err := e.validate(); err != nil {
		return fmt.Errorf("write kubeconfig %s: %w", path, err)
	}
	return writeStandalone(path, e.Name, e.cluster(), e.authInfo())
}

// WriteWithFiles writes a kubeconfig like Write that references the
// certificate files instead of embedding them, so components pick up renewed
// certificates without a new kubeconfig. Relative file paths are resolved by
// client-go against the kubeconfig's directory.
func WriteWithFiles(path string, name, server, caFile, certFile, keyFile string) error {
	if name == "" || server == "" {
		return fmt.Errorf("write kubeconfig %s: name and server are required", path)
	}
	return writeStandalone(path, name,
		&clientcmdapi.Cluster{Server: server, CertificateAuthority: caFile},
		&clientcmdapi.AuthInfo{ClientCertificate: certFile, ClientKey: keyFile})
}

func writeStandalone(path, name string, cluster *clientcmdapi.Cluster, user *clientcmdapi.AuthInfo) error {
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters[name] = cluster
	cfg.AuthInfos[name] = user
	cfg.Contexts[name] = &clientcmdapi.Context{Cluster: name, AuthInfo: name}
	cfg.CurrentContext = name
	data, err := clientcmd.Write(*cfg)
	if err != nil {
		return fmt.Errorf("encode kubeconfig %s: %w", path, err)
	}
	if err := os.MkdirAll(filepath.Dir(path), dirMode); err != nil {
		return fmt.Errorf("create kubeconfig directory: %w", err)
	}
	return atomicfile.Write(path, data, fileMode)
}

// update applies change to the kubeconfig at path under the file lock. The
// file is rewritten only if change altered it, and never when it does not
// parse, so a broken file is left for the user to inspect.
func update(path string, create bool, change func(*clientcmdapi.Config)) error {
	unlock, err := lock(path)
	if err != nil {
		return err
	}
	defer unlock()

	// Write through a symlinked kubeconfig (e.g. kept in a dotfiles repo)
	// rather than replacing the link with a regular file.
	target, err := filepath.EvalSymlinks(path)
	if errors.Is(err, fs.ErrNotExist) {
		target = path
	} else if err != nil {
		return fmt.Errorf("resolve kubeconfig %s: %w", path, err)
	}

	old, err := os.ReadFile(target)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if !create {
			return nil
		}
	case err != nil:
		return fmt.Errorf("read kubeconfig %s: %w", path, err)
	}
	cfg, err := clientcmd.Load(old)
	if err != nil {
		return fmt.Errorf("parse kubeconfig %s: %w; fix or move the file", path, err)
	}
	// Compare canonical encodings, not the user's bytes: re-encoding
	// reformats the file, which is pointless when nothing changed.
	before, err := clientcmd.Write(*cfg)
	if err != nil {
		return fmt.Errorf("encode kubeconfig %s: %w", path, err)
	}
	change(cfg)
	data, err := clientcmd.Write(*cfg)
	if err != nil {
		return fmt.Errorf("encode kubeconfig %s: %w", path, err)
	}
	if old != nil && bytes.Equal(before, data) {
		return nil
	}
	return atomicfile.Write(target, data, fileMode)
}

func (e Entry) validate() error {
	if e.Name == "" {
		return errors.New("entry has no name")
	}
	if e.Server == "" {
		return fmt.Errorf("entry %q has no server", e.Name)
	}
	return nil
}

func (e Entry) cluster() *clientcmdapi.Cluster {
	return &clientcmdapi.Cluster{Server: e.Server, CertificateAuthorityData: e.CAData}
}

func (e Entry) authInfo() *clientcmdapi.AuthInfo {
	return &clientcmdapi.AuthInfo{ClientCertificateData: e.ClientCert, ClientKeyData: e.ClientKey}
}
