package integration

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"minik.dev/minik/drivers/kvm"
	"minik.dev/minik/drivers/kvm/kvmtest"
	vmimage "minik.dev/minik/node-image/vm"
	"minik.dev/minik/node-image/vm/efidisk"
)

// TestKVMEFI boots every node of a 2-node cluster through UEFI (Debian's
// OVMF) from the boot disk the hyperv driver gives its Generation 2 VMs
// (efidisk.WriteBootDisk: a fixed VHD, GPT, an EFI system partition whose
// BOOTX64.EFI is a unified kernel image holding the node's initramfs and
// command line). The nodes coming up Ready prove the disk, the EFI boot
// path and the hand-off of the node's identity and config through it. As
// in TestKVM, libvirtd and its network live in a namespace the test makes.
func TestKVMEFI(t *testing.T) {
	lv := kvmtest.StartLibvirtd(t)
	deb := kvmtest.KernelDeb(t)
	kvmtest.Need(t, "qemu-system-x86_64", "mkfs.ext4")
	for _, f := range []string{kvm.DefaultOVMF, vmimage.EFIStubPath} {
		if _, err := os.Stat(f); err != nil {
			if os.Getenv("CI") != "" {
				t.Fatalf("%s is missing: .ci/run installs Debian's ovmf and systemd-boot-efi", f)
			}
			t.Skipf("%s is not installed", f)
		}
	}
	h := newHarness(t)
	h.wrap = []string{"ip", "netns", "exec", lv.Netns}
	h.env = append(h.env, "MINIK_LIBVIRT_SOCKET="+lv.Socket, "MINIK_DRIVER=kvm")
	t.Cleanup(func() { showConsoleLogs(t, h) })
	virsh := func(args ...string) string {
		out, err := exec.Command("virsh", append([]string{"-c", "qemu:///system?socket=" + lv.Socket}, args...)...).CombinedOutput()
		require.NoError(t, err, "%s", out)
		return string(out)
	}

	r := h.run(time.Minute, "start", "-p", "bios", "--vm-firmware", "bios")
	assert.Equal(t, 2, r.code, r.stderr)
	assert.Contains(t, r.stderr, "--vm-firmware")
	assert.NoDirExists(t, filepath.Join(h.home, "profiles", "bios"))

	out := h.ok(10*time.Minute, "start", "-p", "efi", "--nodes", "2", "--vm-kernel", deb, "--vm-accel", "tcg", "--vm-firmware", "efi")
	t.Log(out)

	for _, node := range []string{"efi", "efi-m02"} {
		dir := filepath.Join(h.home, "profiles", "efi", "nodes", node, "vm")
		disk := filepath.Join(dir, "boot.vhd")
		fi, err := os.Stat(disk)
		require.NoError(t, err)
		assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm(), "the boot disk holds the profile's keys")
		f, err := os.Open(disk)
		require.NoError(t, err)
		footer, err := efidisk.ReadVHDFooterFrom(f, fi.Size())
		f.Close()
		require.NoError(t, err, "a fixed VHD, as Hyper-V takes it")
		assert.True(t, footer.Fixed)
		assert.Equal(t, fi.Size()-efidisk.FooterSize, footer.Size)
		assert.NoFileExists(t, filepath.Join(dir, "initrd.cpio"), "no kernel or initramfs is handed to QEMU")
		assert.Contains(t, virsh("dumpxml", node), "OVMF.fd")
	}

	kubectl := func(args ...string) string {
		return h.ok(2*time.Minute, append([]string{"kubectl", "-p", "efi", "--"}, args...)...)
	}
	kubectl("wait", "--for", "condition=Ready", "node/efi", "node/efi-m02", "--timeout", "3m")
	kernels := kubectl("get", "nodes", "-o", "jsonpath={range .items[*]}{.status.nodeInfo.kernelVersion} {end}")
	assert.Equal(t, 2, strings.Count(kernels, "-cloud-amd64"), "the nodes run the kernel of the disk's unified image: %s", kernels)
	addresses := kubectl("get", "nodes", "-o", "jsonpath={range .items[*]}{.metadata.name}={.status.addresses[?(@.type==\"InternalIP\")].address} {end}")
	st := h.status("efi")
	for _, n := range st.Nodes {
		assert.Contains(t, addresses, n.Name+"="+n.IP, "the node took the address on its disk's command line")
	}

	// The disk is written again at each start; the data disk keeps etcd.
	kubectl("create", "configmap", "kept", "--from-literal", "k=v")
	h.ok(5*time.Minute, "stop", "-p", "efi")
	h.ok(10*time.Minute, "start", "-p", "efi")
	assert.Equal(t, "v", kubectl("get", "configmap", "kept", "-o", "jsonpath={.data.k}"))
	kubectl("wait", "--for", "condition=Ready", "node/efi-m02", "--timeout", "3m")

	h.ok(5*time.Minute, "delete", "-p", "efi")
	assert.NoDirExists(t, filepath.Join(h.home, "profiles", "efi"))
	assert.NotContains(t, virsh("list", "--all", "--name"), "efi")
	assert.NotContains(t, virsh("net-list", "--all", "--name"), "minik-efi")
}
