package engine

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/client"
)

// podFilesVolume is the name, among a pod's volumes, of the one that holds
// the files the node makes for the pod: its /etc/hosts and its
// containers' termination-message files. No volume of a pod spec can be
// named so.
const podFilesVolume = ".files"

// hostsFile is the pod's /etc/hosts in that volume; container names,
// the other files' names, have no dot.
const hostsFile = "etc.hosts"

// resolvFile is the pod's /etc/resolv.conf in that volume, for a pod
// whose DNS the kubelet sets (ContainerSpec.ManagedDNS).
const resolvFile = "etc.resolv.conf"

// MaxTerminationMessage is how much of a termination-message file is read,
// the kubelet's limit.
const MaxTerminationMessage = 4096

func podFilesVolumeName(podUID string) string {
	return fmt.Sprintf("k8s_%s_%s", podFilesVolume, podUID)
}

// writePodFile writes one file into the pod's files volume, through the
// sandbox that mounts it.
func (e *Engine) writePodFile(ctx context.Context, sandboxID, podUID, name string, data []byte, mode int64) error {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: mode, Size: int64(len(data))}); err != nil {
		return err
	}
	if _, err := tw.Write(data); err != nil {
		return err
	}
	if err := tw.Close(); err != nil {
		return err
	}
	_, err := e.cli.CopyToContainer(ctx, sandboxID, client.CopyToContainerOptions{
		DestinationPath: "/volumes/" + podFilesVolumeName(podUID), Content: &buf,
	})
	return err
}

// podFileMount binds one file of the pod's files volume at target.
func (e *Engine) podFileMount(ctx context.Context, podUID, name, target string) (mount.Mount, error) {
	info, err := e.cli.VolumeInspect(ctx, podFilesVolumeName(podUID), client.VolumeInspectOptions{})
	if err != nil {
		return mount.Mount{}, err
	}
	return mount.Mount{Type: mount.TypeBind, Source: path.Join(info.Volume.Mountpoint, name), Target: target}, nil
}

// HostsFile is a pod's /etc/hosts as the kubelet writes it: its header,
// the loopback and IPv6 names, the pod's own address with its names, and
// its hostAliases (ExtraHosts, "names:ip" with names separated by tabs).
func HostsFile(ip, hostname string, spec SandboxSpec) []byte {
	var b strings.Builder
	b.WriteString("# Kubernetes-managed hosts file.\n" +
		"127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n" +
		"fe00::0\tip6-localnet\nfe00::0\tip6-mcastprefix\nfe00::1\tip6-allnodes\nfe00::2\tip6-allrouters\n")
	if ip != "" {
		if spec.Domainname != "" {
			fmt.Fprintf(&b, "%s\t%s.%s\t%s\n", ip, hostname, spec.Domainname, hostname)
		} else {
			fmt.Fprintf(&b, "%s\t%s\n", ip, hostname)
		}
	}
	if len(spec.ExtraHosts) > 0 {
		b.WriteString("\n# Entries added by HostAliases.\n")
		for _, h := range spec.ExtraHosts {
			// Names have no colon; an IPv6 address does.
			if names, ip, ok := strings.Cut(h, ":"); ok {
				fmt.Fprintf(&b, "%s\t%s\n", ip, names)
			}
		}
	}
	return []byte(b.String())
}

// ResolvConf is a pod's /etc/resolv.conf as the kubelet has it written:
// its search domains, DNS servers and resolver options; nil when the pod
// has none of them, and the node's resolver serves it.
func ResolvConf(spec SandboxSpec) []byte {
	if len(spec.DNS) == 0 && len(spec.DNSSearch) == 0 && len(spec.DNSOptions) == 0 {
		return nil
	}
	var b strings.Builder
	if len(spec.DNSSearch) > 0 {
		fmt.Fprintf(&b, "search %s\n", strings.Join(spec.DNSSearch, " "))
	}
	for _, s := range spec.DNS {
		fmt.Fprintf(&b, "nameserver %s\n", s)
	}
	if len(spec.DNSOptions) > 0 {
		fmt.Fprintf(&b, "options %s\n", strings.Join(spec.DNSOptions, " "))
	}
	return []byte(b.String())
}

// terminationMount makes the container's empty termination-message file,
// writable by any user as the kubelet makes it, in the pod's volume
// through the sandbox that mounts it, and returns the bind of that file at
// the container's terminationMessagePath. A restarted container gets it
// empty again.
func (e *Engine) terminationMount(ctx context.Context, spec ContainerSpec) (mount.Mount, error) {
	if err := e.writePodFile(ctx, spec.SandboxID, spec.PodUID, spec.Name, nil, 0o666); err != nil {
		return mount.Mount{}, fmt.Errorf("termination message file: %w", err)
	}
	m, err := e.podFileMount(ctx, spec.PodUID, spec.Name, spec.TerminationMessagePath)
	if err != nil {
		return mount.Mount{}, fmt.Errorf("termination message file: %w", err)
	}
	return m, nil
}

// TerminationMessage reads what a container of the pod wrote to its
// termination-message file (at most MaxTerminationMessage bytes); a
// container without one has an empty message.
func (e *Engine) TerminationMessage(ctx context.Context, sandboxID, podUID, container string) (string, error) {
	res, err := e.cli.CopyFromContainer(ctx, sandboxID, client.CopyFromContainerOptions{
		SourcePath: "/volumes/" + podFilesVolumeName(podUID) + "/" + container,
	})
	if cerrdefs.IsNotFound(err) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("read termination message of %s: %w", container, err)
	}
	defer res.Content.Close()
	tr := tar.NewReader(res.Content)
	if _, err := tr.Next(); err != nil {
		if errors.Is(err, io.EOF) {
			return "", nil
		}
		return "", fmt.Errorf("read termination message of %s: %w", container, err)
	}
	b, err := io.ReadAll(io.LimitReader(tr, MaxTerminationMessage))
	if err != nil {
		return "", fmt.Errorf("read termination message of %s: %w", container, err)
	}
	return string(b), nil
}
