package engine

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestHostsFile(t *testing.T) {
	const header = "# Kubernetes-managed hosts file.\n" +
		"127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n" +
		"fe00::0\tip6-localnet\nfe00::0\tip6-mcastprefix\nfe00::1\tip6-allnodes\nfe00::2\tip6-allrouters\n"
	tests := []struct {
		name string
		spec SandboxSpec
		want string
	}{
		{name: "plain", want: header + "10.0.0.5\tweb\n"},
		{name: "subdomain", spec: SandboxSpec{Domainname: "sub.ns.svc.cluster.local"},
			want: header + "10.0.0.5\tweb.sub.ns.svc.cluster.local\tweb\n"},
		{name: "host aliases", spec: SandboxSpec{ExtraHosts: []string{"foo\tbar:123.45.67.89", "v6:fe80::1"}},
			want: header + "10.0.0.5\tweb\n\n# Entries added by HostAliases.\n123.45.67.89\tfoo\tbar\nfe80::1\tv6\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, string(HostsFile("10.0.0.5", "web", tt.spec)))
		})
	}
}

func TestResolvConf(t *testing.T) {
	tests := []struct {
		name string
		spec SandboxSpec
		want string
	}{
		{name: "none: the node's resolver", want: ""},
		{name: "cluster first", spec: SandboxSpec{DNS: []string{"10.96.0.10"},
			DNSSearch: []string{"ns.svc.cluster.local", "svc.cluster.local", "cluster.local"}, DNSOptions: []string{"ndots:5"}},
			want: "search ns.svc.cluster.local svc.cluster.local cluster.local\nnameserver 10.96.0.10\noptions ndots:5\n"},
		{name: "two servers, no search", spec: SandboxSpec{DNS: []string{"10.0.0.1", "10.0.0.2"}},
			want: "nameserver 10.0.0.1\nnameserver 10.0.0.2\n"},
		{name: "options only", spec: SandboxSpec{DNSOptions: []string{"edns0"}}, want: "options edns0\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, string(ResolvConf(tt.spec)))
		})
	}
}

// A generation given to an fsGroup: files and the folders made for them
// take the group, folders with the set-group-ID bit; the links stay root's.
func TestWriteGenerationGroup(t *testing.T) {
	var buf bytes.Buffer
	require.NoError(t, writeGeneration(&buf, "..1", []File{
		{Path: "dir/b", Data: []byte("bee"), Mode: 0o440, GID: 1234},
		{Path: "a", Data: []byte("a"), Mode: 0o644, GID: 1234},
	}))
	got := map[string]string{}
	tr := tar.NewReader(&buf)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		require.NoError(t, err)
		got[h.Name] = fmt.Sprintf("%o %d", h.Mode, h.Gid)
	}
	assert.Equal(t, map[string]string{
		"..1/":      "2755 1234",
		"..1/dir/":  "2755 1234",
		"..1/dir/b": "440 1234",
		"..1/a":     "644 1234",
		"..data":    "777 0",
		"dir":       "777 0",
		"a":         "777 0",
	}, got)
}
