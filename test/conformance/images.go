package conformance

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/moby/moby/client"
)

// Registry is the first part of every image name the suite asks for: the
// repo list (KUBE_TEST_REPO_LIST) points each of the suite's registries
// below it. The .invalid domain never resolves, so a spec that asks for an
// image minik did not build fails to pull it, as without a network.
const Registry = "e2e.minik.invalid"

// RepoList is the KUBE_TEST_REPO_LIST file's content.
func RepoList() string {
	return strings.Join([]string{
		"promoterE2eRegistry: " + Registry + "/e2e-test-images",
		"buildImageRegistry: " + Registry + "/build-image",
		"gcEtcdRegistry: " + Registry,
		"gcRegistry: " + Registry,
		"sigStorageRegistry: " + Registry + "/sig-storage",
		"privateRegistry: " + Registry + "/private",
		"dockerLibraryRegistry: " + Registry + "/library",
		"cloudProviderGcpRegistry: " + Registry + "/cloud-provider-gcp",
		"invalidRegistry: invalid." + Registry + "/invalid",
	}, "\n") + "\n"
}

// labelContent records the sha256 of an image's file tree and settings, so
// an image is rebuilt only when what goes into it changes.
const labelContent = "dev.minik.conformance.sha256"

// Inputs are what the images are made of besides Debian's packages.
type Inputs struct {
	// Agnhost, SampleAPIServer, Nonewprivs and Etcd are static binaries
	// built from the Kubernetes module and what it requires (see
	// BuildSuite).
	Agnhost, SampleAPIServer, Nonewprivs, Etcd string
	// KubernetesDir is the k8s.io/kubernetes module's source folder, for the
	// files test/images puts into images.
	KubernetesDir string
	// Busybox is the static busybox of every image that has a shell
	// (BuildBusybox).
	Busybox string
}

// imageSpec is one image: its names and how its tree is made.
type imageSpec struct {
	names   []string
	changes []string
	build   func(r *rootfs, in Inputs) error
}

const defaultPath = "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

func e2eImage(name string) string { return Registry + "/e2e-test-images/" + name }

// images are the suite's images that its conformance specs use, each with
// the user, files and entrypoint its upstream Dockerfile gives it where
// specs depend on them (test/images/*/Dockerfile).
var images = []imageSpec{
	{
		names:   []string{e2eImage("agnhost:2.66.1"), e2eImage("agnhost:2.55")},
		changes: []string{`ENTRYPOINT ["/agnhost"]`, `CMD ["pause"]`, "EXPOSE 80 8080 8081 9376 5000"},
		build:   agnhostTree,
	},
	{
		names:   []string{e2eImage("kitten:1.8")},
		changes: []string{`ENTRYPOINT ["/agnhost"]`, `CMD ["test-webserver"]`},
		build:   webserverTree("kitten"),
	},
	{
		names:   []string{e2eImage("nautilus:1.8")},
		changes: []string{`ENTRYPOINT ["/agnhost"]`, `CMD ["test-webserver"]`},
		build:   webserverTree("nautilus"),
	},
	{
		// agnhost's pause waits for a signal and exits as the pause program does.
		names:   []string{Registry + "/pause:3.10.2"},
		changes: []string{`ENTRYPOINT ["/agnhost", "pause"]`},
		build: func(r *rootfs, in Inputs) error {
			return r.hostFile("/agnhost", in.Agnhost, 0o755)
		},
	},
	{
		names:   []string{e2eImage("busybox:1.37.0-2")},
		changes: []string{`CMD ["sh"]`},
		// busybox's own shell: specs match its messages word for word,
		// and print variables named "data-1" with `sh -c env`
		// (BuildBusybox).
		build: func(r *rootfs, in Inputs) error {
			r.users(nil, nil)
			return r.busybox(in.Busybox)
		},
	},
	{
		names:   []string{e2eImage("nonroot:1.5")},
		changes: []string{"USER 1234"},
		build: func(r *rootfs, in Inputs) error {
			r.users(nil, nil)
			return r.busybox(in.Busybox)
		},
	},
	{
		// nnp prints its effective user: set-user-ID root, it shows
		// whether the container may gain privileges.
		names:   []string{e2eImage("nonewprivs:1.4")},
		changes: []string{`CMD ["nnp"]`},
		build: func(r *rootfs, in Inputs) error {
			r.users(nil, nil)
			if err := r.busybox(in.Busybox); err != nil {
				return err
			}
			r.dir("/usr/local/bin", 0o755)
			return r.hostFile("/usr/local/bin/nnp", in.Nonewprivs, 0o4755)
		},
	},
	{
		names:   []string{e2eImage("glibc-dns-testing:2.1.1")},
		changes: []string{`CMD ["sh"]`},
		build: func(r *rootfs, in Inputs) error {
			r.users(nil, nil)
			if err := r.busybox(in.Busybox); err != nil {
				return err
			}
			if err := r.binary("/bin/bash", "/bin/bash"); err != nil {
				return err
			}
			r.symlink("/bin/sh", "bash")
			return dnsTools(r)
		},
	},
	{
		names:   []string{e2eImage("nginx:1.27.0-2"), e2eImage("nginx:1.28.0-2")},
		changes: []string{`CMD ["nginx", "-g", "daemon off;"]`, "EXPOSE 80"},
		build:   nginxTree,
	},
	{
		names:   []string{e2eImage("sample-apiserver:1.29.2")},
		changes: []string{`ENTRYPOINT ["/sample-apiserver"]`},
		build: func(r *rootfs, in Inputs) error {
			r.users(nil, nil)
			if err := r.busybox(in.Busybox); err != nil {
				return err
			}
			return r.hostFile("/sample-apiserver", in.SampleAPIServer, 0o755)
		},
	},
	{
		// The etcd that the sample-apiserver's pod runs beside it, at the
		// version Kubernetes requires; the spec names its path.
		names:   []string{Registry + "/etcd:3.7.0-0"},
		changes: []string{`CMD ["/usr/local/bin/etcd"]`},
		build: func(r *rootfs, in Inputs) error {
			r.dir("/tmp", 0o1777)
			return r.hostFile("/usr/local/bin/etcd", in.Etcd, 0o755)
		},
	},
}

// agnhostTree is agnhost's image: the binary, a shell and the network tools
// specs exec in it (curl, dig, nslookup, nc), its users and files.
func agnhostTree(r *rootfs, in Inputs) error {
	r.users([]string{"user-defined-in-image:x:1000:1000::/home/user-defined-in-image:/bin/sh"},
		[]string{"user-defined-in-image:x:1000:", "group-defined-in-image:x:50000:user-defined-in-image"})
	if err := r.busybox(in.Busybox); err != nil {
		return err
	}
	for _, b := range []struct{ at, host string }{
		{"/usr/bin/curl", "/usr/bin/curl"},
		{"/usr/bin/nc", "/bin/nc.openbsd"},
		{"/bin/bash", "/bin/bash"},
	} {
		if err := r.binary(b.at, b.host); err != nil {
			return err
		}
	}
	if err := dnsTools(r); err != nil {
		return err
	}
	// Debian's static busybox runs its own applets before PATH (nc among
	// them, without the options specs use); bash is the shell, as the
	// upstream images' shells find programs on PATH.
	r.symlink("/bin/sh", "bash")
	if err := r.hostFile("/etc/ssl/certs/ca-certificates.crt", "/etc/ssl/certs/ca-certificates.crt", 0o644); err != nil {
		return err
	}
	if err := r.hostFile("/agnhost", in.Agnhost, 0o755); err != nil {
		return err
	}
	r.symlink("/agnhost-2", "agnhost")
	r.dir("/uploads", 0o755)
	porter := filepath.Join(in.KubernetesDir, "test", "images", "agnhost", "porter")
	for _, f := range []string{"localhost.crt", "localhost.key"} {
		if err := r.hostFile("/"+f, filepath.Join(porter, f), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// webserverTree is kitten's and nautilus's image: agnhost serving a picture.
func webserverTree(name string) func(r *rootfs, in Inputs) error {
	return func(r *rootfs, in Inputs) error {
		if err := agnhostTree(r, in); err != nil {
			return err
		}
		html := filepath.Join(in.KubernetesDir, "test", "images", name, "html")
		for _, f := range []string{name + ".jpg", "data.json"} {
			if err := r.hostFile("/"+f, filepath.Join(html, f), 0o644); err != nil {
				return err
			}
		}
		return nil
	}
}

// dnsTools adds dig, nslookup and getent with glibc's resolver.
func dnsTools(r *rootfs) error {
	for _, b := range []string{"/usr/bin/dig", "/usr/bin/nslookup", "/usr/bin/host", "/usr/bin/getent"} {
		if err := r.binary(b, b); err != nil {
			return err
		}
	}
	r.file("/etc/nsswitch.conf", []byte("passwd: files\ngroup: files\nhosts: files dns\n"), 0o644)
	return nil
}

// nginxTree is Debian's nginx, serving the upstream image's page on port
// 80 and logging to the container's output.
func nginxTree(r *rootfs, in Inputs) error {
	r.users([]string{"nginx:x:101:101:nginx:/nonexistent:/bin/false"}, []string{"nginx:x:101:"})
	if err := r.busybox(in.Busybox); err != nil {
		return err
	}
	if err := r.binary("/usr/sbin/nginx", "/usr/sbin/nginx"); err != nil {
		return err
	}
	if err := r.hostFile("/etc/nginx/mime.types", "/etc/nginx/mime.types", 0o644); err != nil {
		return err
	}
	r.file("/etc/nginx/nginx.conf", []byte(nginxConf), 0o644)
	r.file("/usr/share/nginx/html/index.html", []byte(nginxIndex), 0o644)
	r.dir("/var/lib/nginx", 0o755)
	r.dir("/var/cache/nginx", 0o755)
	r.dir("/run", 0o755)
	r.symlink("/var/log/nginx/access.log", "/dev/stdout")
	r.symlink("/var/log/nginx/error.log", "/dev/stderr")
	return nil
}

const nginxConf = `user nginx;
worker_processes 1;
error_log /dev/stderr notice;
pid /run/nginx.pid;
events { worker_connections 1024; }
http {
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    access_log /dev/stdout;
    sendfile on;
    keepalive_timeout 65;
    server {
        listen 80;
        listen [::]:80;
        server_name localhost;
        location / {
            root /usr/share/nginx/html;
            index index.html index.htm;
        }
    }
}
`

const nginxIndex = `<!DOCTYPE html>
<html>
<head><title>Welcome to nginx!</title></head>
<body><h1>Welcome to nginx!</h1></body>
</html>
`

// ImageAPI is the part of the Engine API the image builder uses.
type ImageAPI interface {
	ImageInspect(ctx context.Context, image string, options ...client.ImageInspectOption) (client.ImageInspectResult, error)
	ImageImport(ctx context.Context, source client.ImageImportSource, ref string, options client.ImageImportOptions) (client.ImageImportResult, error)
	ImageTag(ctx context.Context, options client.ImageTagOptions) (client.ImageTagResult, error)
}

// BuildImages puts every image the conformance specs use into the engine's
// store, under the names the suite asks for, rebuilding only what changed.
// It returns the names it built (not those already up to date).
func BuildImages(ctx context.Context, api ImageAPI, in Inputs) ([]string, error) {
	if runtime.GOOS != "linux" {
		return nil, errNotLinux
	}
	var built []string
	for _, spec := range images {
		r := newRootfs()
		if err := spec.build(r, in); err != nil {
			return built, fmt.Errorf("image %s: %w", spec.names[0], err)
		}
		var tree bytes.Buffer
		if err := r.writeTar(&tree); err != nil {
			return built, fmt.Errorf("image %s: %w", spec.names[0], err)
		}
		sum := sha256.New()
		sum.Write(tree.Bytes())
		for _, c := range spec.changes {
			sum.Write([]byte(c))
		}
		digest := hex.EncodeToString(sum.Sum(nil))
		changes := append([]string{defaultPath, "LABEL " + labelContent + "=" + digest}, spec.changes...)
		for i, name := range spec.names {
			if current(ctx, api, name, digest) {
				continue
			}
			if i > 0 && current(ctx, api, spec.names[0], digest) {
				if _, err := api.ImageTag(ctx, client.ImageTagOptions{Source: spec.names[0], Target: name}); err != nil {
					return built, fmt.Errorf("tag %s: %w", name, err)
				}
				built = append(built, name)
				continue
			}
			res, err := api.ImageImport(ctx, client.ImageImportSource{Source: bytes.NewReader(tree.Bytes()), SourceName: "-"}, name,
				client.ImageImportOptions{Changes: changes, Message: "minik conformance image"})
			if err != nil {
				return built, fmt.Errorf("import %s: %w", name, err)
			}
			out, err := io.ReadAll(res)
			res.Close()
			if err != nil {
				return built, fmt.Errorf("import %s: %w", name, err)
			}
			if bytes.Contains(out, []byte(`"error"`)) {
				return built, fmt.Errorf("import %s: %s", name, strings.TrimSpace(string(out)))
			}
			built = append(built, name)
		}
	}
	return built, nil
}

// current reports whether name is in the store and holds digest.
func current(ctx context.Context, api ImageAPI, name, digest string) bool {
	img, err := api.ImageInspect(ctx, name)
	if err != nil || img.Config == nil {
		return false
	}
	return img.Config.Labels[labelContent] == digest
}

// ImageNames lists every image BuildImages makes.
func ImageNames() []string {
	var names []string
	for _, spec := range images {
		names = append(names, spec.names...)
	}
	return names
}
