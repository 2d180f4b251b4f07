package kvm

import (
	"flag"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		require.NoError(t, os.WriteFile(path, []byte(got+"\n"), 0o644))
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err, "run go test ./drivers/kvm -update to write it")
	assert.Equal(t, string(want), got+"\n")
}

func nodeSpec(accel string) DomainSpec {
	return DomainSpec{
		Labels:    Labels{Cluster: "dev", Node: "dev-m02", Role: "worker"},
		Name:      "dev-m02",
		MemoryMiB: 2048, CPUs: 2, Accel: accel,
		Kernel: "/home/u/.minik/cache/kernel/boot/vmlinuz-6.1.0-57-cloud-amd64", Initrd: "/home/u/.minik/profiles/dev/nodes/dev-m02/initrd.gz",
		Cmdline:  "console=ttyS0 panic=-1 ip=172.30.0.3::172.30.0.1:255.255.0.0:dev-m02:eth0:off",
		DataDisk: "/home/u/.minik/profiles/dev/nodes/dev-m02/data.img",
		Network:  "minik-dev", MAC: MAC("dev", "dev-m02"),
		ConsoleLog: "/home/u/.minik/profiles/dev/nodes/dev-m02/console.log",
	}
}

func TestDomainXML(t *testing.T) {
	for _, accel := range []string{AccelTCG, AccelKVM} {
		t.Run(accel, func(t *testing.T) {
			got, err := DomainXML(nodeSpec(accel))
			require.NoError(t, err)
			golden(t, "domain-"+accel+".xml", got)
			l, ok := DomainLabels(got)
			require.True(t, ok)
			assert.Equal(t, Labels{XMLName: l.XMLName, Cluster: "dev", Node: "dev-m02", Role: "worker"}, l)
		})
	}
	_, err := DomainXML(nodeSpec("hvf"))
	require.ErrorContains(t, err, `accelerator "hvf"`)

	t.Run("efi", func(t *testing.T) {
		s := nodeSpec(AccelTCG)
		s.Kernel, s.Initrd, s.Cmdline = "", "", ""
		s.Firmware, s.BootDisk = DefaultOVMF, "/home/u/.minik/profiles/dev/nodes/dev-m02/vm/boot.vhd"
		got, err := DomainXML(s)
		require.NoError(t, err)
		golden(t, "domain-efi.xml", got)

		s.Kernel = "/boot/vmlinuz"
		_, err = DomainXML(s)
		require.ErrorContains(t, err, "firmware boots a boot disk, not a kernel")
	})
}

func TestNetworkXML(t *testing.T) {
	got, err := NetworkXML(NetworkSpec{Cluster: "dev", Name: "minik-dev", Subnet: netip.MustParsePrefix("172.30.0.0/16")})
	require.NoError(t, err)
	golden(t, "network.xml", got)
	l, ok := NetworkLabels(got)
	require.True(t, ok)
	assert.Equal(t, "dev", l.Cluster)

	_, err = NetworkXML(NetworkSpec{Cluster: "dev", Name: "minik-dev", Subnet: netip.MustParsePrefix("fd00::/64")})
	require.ErrorContains(t, err, "not IPv4")
}

func TestNotMinik(t *testing.T) {
	for _, x := range []string{
		`<domain type="kvm"><name>someone-elses</name></domain>`,
		`<domain type="kvm"><name>x</name><metadata><app xmlns="https://example.org/app" cluster="dev"/></metadata></domain>`,
		`not xml`,
	} {
		_, ok := DomainLabels(x)
		assert.False(t, ok, x)
	}
	_, ok := NetworkLabels(`<network><name>default</name></network>`)
	assert.False(t, ok)
}

func TestNames(t *testing.T) {
	assert.Equal(t, "mk-dev", BridgeName("dev"))
	long := BridgeName("a-very-long-cluster-name")
	assert.LessOrEqual(t, len(long), 15)
	assert.NotEqual(t, long, BridgeName("a-very-long-other-name"))
	assert.Equal(t, MAC("dev", "dev"), MAC("dev", "dev"), "stable across stop and start")
	assert.NotEqual(t, MAC("dev", "dev"), MAC("dev", "dev-m02"))
	assert.Regexp(t, `^52:54:00(:[0-9a-f]{2}){3}$`, MAC("dev", "dev"))
}

// TestSchemas validates the golden files against libvirt's own schemas
// (Debian's libvirt-clients and libxml2-utils, which .ci/run installs).
func TestSchemas(t *testing.T) {
	validate, err := exec.LookPath("virt-xml-validate")
	if err == nil {
		_, err = exec.LookPath("xmllint")
	}
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("virt-xml-validate or xmllint is missing: .ci/run installs libvirt-clients and libxml2-utils")
		}
		t.Skip("virt-xml-validate and xmllint are not installed")
	}
	for file, schema := range map[string]string{"domain-kvm.xml": "domain", "domain-qemu.xml": "domain", "domain-efi.xml": "domain", "network.xml": "network"} {
		out, err := exec.Command(validate, filepath.Join("testdata", file), schema).CombinedOutput()
		assert.NoError(t, err, "%s: %s", file, out)
	}
}

func TestDomainProfile(t *testing.T) {
	spec := func(lb Labels, disk string) string {
		s := nodeSpec(AccelTCG)
		s.Labels, s.DataDisk = lb, disk
		x, err := DomainXML(s)
		require.NoError(t, err)
		return x
	}
	node := Labels{Cluster: "dev", Node: "dev-m02", Role: "worker"}
	labelled := node
	labelled.Profile = "/home/u/.minik/profiles/dev"
	for _, tc := range []struct {
		name, xml, want string
	}{
		{"labelled", spec(labelled, "/elsewhere/data.img"), "/home/u/.minik/profiles/dev"},
		{"made before the label: its disk's profile", spec(node, "/tmp/ha/profiles/dev/nodes/dev-m02/vm/data.img"), "/tmp/ha/profiles/dev"},
		{"a disk of another node's folder", spec(node, "/tmp/ha/profiles/dev/nodes/dev/vm/data.img"), ""},
		{"a disk outside any profile", spec(node, "/var/lib/images/data.img"), ""},
		{"not minik's", `<domain type="kvm"><name>x</name></domain>`, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, DomainProfile(tc.xml))
		})
	}

	got, err := NetworkXML(NetworkSpec{Cluster: "dev", Profile: "/tmp/ha/profiles/dev", Name: "minik-dev", Subnet: netip.MustParsePrefix("172.30.0.0/16")})
	require.NoError(t, err)
	l, ok := NetworkLabels(got)
	require.True(t, ok)
	assert.Equal(t, "/tmp/ha/profiles/dev", l.Profile)
}

func TestOtherProfile(t *testing.T) {
	for _, tc := range []struct {
		label, ours string
		want        bool
	}{
		{"/a/profiles/dev", "/a/profiles/dev", false},
		{"/a/profiles/dev/", "/a/profiles/dev", false},
		{"/b/profiles/dev", "/a/profiles/dev", true},
		{"", "/a/profiles/dev", false},
		{"/b/profiles/dev", "", false},
	} {
		assert.Equal(t, tc.want, otherProfile(tc.label, tc.ours), "%q against %q", tc.label, tc.ours)
	}
	assert.Equal(t, "libvirt already has a cluster named dev from another minik home (its domain dev belongs to MINIK_HOME=/tmp/ha): choose another profile name with -p, or delete that cluster from its home",
		takenError("dev", "its domain dev", "/tmp/ha/profiles/dev").Error())
}
