package hyperv

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"minik.dev/minik/drivers"
	vmimage "minik.dev/minik/node-image/vm"
)

// fakeExec answers each script by its name (its first line) with the
// next answer queued for that name, else {"result":{}}; it records the
// scripts it ran.
type fakeExec struct {
	mu      sync.Mutex
	answers map[string][]string
	ran     []Script
}

func (f *fakeExec) answer(name string, out ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.answers == nil {
		f.answers = map[string][]string{}
	}
	f.answers[name] = append(f.answers[name], out...)
}

func (f *fakeExec) Run(ctx context.Context, text string) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	first, _, _ := strings.Cut(text, "\n")
	name := strings.TrimPrefix(first, "# minik: ")
	f.mu.Lock()
	defer f.mu.Unlock()
	f.ran = append(f.ran, Script{Name: name, Text: text})
	if q := f.answers[name]; len(q) > 0 {
		f.answers[name] = q[1:]
		return []byte(q[0] + "\r\n"), nil
	}
	return []byte(`{"result":{}}` + "\r\n"), nil
}

func (f *fakeExec) names() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, s := range f.ran {
		out = append(out, s.Name)
	}
	return out
}

func (f *fakeExec) script(name string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, s := range f.ran {
		if s.Name == name {
			return s.Text
		}
	}
	return ""
}

var node = drivers.Node{Cluster: "dev", Name: "dev-m02", Role: "worker", Dir: nodeDir, IP: "172.30.0.3", Subnet: "172.30.0.0/16"}

func newDriver(ex Executor, boot func(context.Context, BootDiskRequest) error) *Driver {
	return New(Config{Exec: ex, GOOS: "windows", BootDisk: boot, MemoryMiB: 2047, CPUs: 2})
}

func TestStartNodeCreates(t *testing.T) {
	ex := &fakeExec{}
	ex.answer("vm-state", `{"result":{"exists":false,"state":""}}`)
	var got BootDiskRequest
	d := newDriver(ex, func(_ context.Context, r BootDiskRequest) error { got = r; return nil })
	require.NoError(t, d.StartNode(context.Background(), node))

	assert.Equal(t, []string{"ensure-switch", "vm-state", "create-vm", "start-vm"}, ex.names())
	assert.Equal(t, nodeDir+`\hyperv\boot.vhd`, got.Path)
	assert.Equal(t, node, got.Node)
	sw := ex.script("ensure-switch")
	assert.Contains(t, sw, "$switchName = 'minik-dev'\n")
	assert.Contains(t, sw, "$hostIP = '172.30.0.1'\n")
	assert.Contains(t, sw, "$prefixLength = 16\n")
	assert.Contains(t, sw, `$notes = '{"dev.minik.cluster":"dev","dev.minik.kind":"network"}'`)
	vm := ex.script("create-vm")
	assert.Contains(t, vm, "$memoryBytes = 2147483648\n", "rounded up to whole 2 MiB")
	assert.Contains(t, vm, "$mac = '"+MAC("dev", "dev-m02")+"'\n")
	assert.Contains(t, vm, "$dataBytes = 21474836480\n")
	assert.Contains(t, vm, `$bootDisk = ('C:\Users\Zo'+[char]0x00EB+' O''Brien\.minik\profiles\dev\nodes\dev-m02\hyperv\boot.vhdx')`)
}

func TestStartNodeExisting(t *testing.T) {
	t.Run("off: a new boot disk for this start", func(t *testing.T) {
		ex := &fakeExec{}
		ex.answer("vm-state", `{"result":{"exists":true,"state":"Off"}}`)
		wrote := 0
		d := newDriver(ex, func(_ context.Context, r BootDiskRequest) error {
			wrote++
			assert.Equal(t, nodeDir+`\hyperv\boot.vhd`, r.Path)
			return nil
		})
		require.NoError(t, d.StartNode(context.Background(), node))
		assert.Equal(t, 1, wrote)
		assert.Equal(t, []string{"ensure-switch", "vm-state", "start-vm"}, ex.names())
		assert.Contains(t, ex.script("start-vm"), `$sourceVhd = ('C:\Users\Zo'+[char]0x00EB+' O''Brien\.minik\profiles\dev\nodes\dev-m02\hyperv\boot.vhd')`)
	})
	t.Run("running: left alone", func(t *testing.T) {
		ex := &fakeExec{}
		ex.answer("vm-state", `{"result":{"exists":true,"state":"Running"}}`)
		d := newDriver(ex, func(context.Context, BootDiskRequest) error {
			t.Error("no boot disk for a running VM")
			return nil
		})
		require.NoError(t, d.StartNode(context.Background(), node))
		assert.Equal(t, []string{"ensure-switch", "vm-state"}, ex.names())
	})
}

func TestStartNodeErrors(t *testing.T) {
	psErr := func(category, id string) string {
		return `{"error":{"category":"` + category + `","fullyQualifiedErrorId":"` + id + `","exception":"System.Exception","message":"m","target":"t"}}`
	}
	for _, tc := range []struct {
		name   string
		script string
		answer string
		want   error
	}{
		{"vm name in use", "create-vm", psErr("ResourceExists", "MinikVMNameInUse"), ErrVMNameInUse},
		{"switch missing", "create-vm", psErr("ObjectNotFound", "MinikSwitchMissing"), ErrSwitchMissing},
		{"access denied", "ensure-switch", psErr("PermissionDenied", "AccessDenied,Microsoft.HyperV.PowerShell.Commands.NewVMSwitch"), ErrAccessDenied},
		{"switch of another type", "ensure-switch", psErr("InvalidType", "MinikSwitchNotInternal"), ErrSwitchNotInternal},
		{"module missing", "ensure-switch", psErr("NotInstalled", "MinikHyperVModuleMissing"), ErrHyperVModuleMissing},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ex := &fakeExec{}
			ex.answer("vm-state", `{"result":{"exists":false,"state":""}}`)
			ex.answer(tc.script, tc.answer)
			d := newDriver(ex, func(context.Context, BootDiskRequest) error { return nil })
			err := d.StartNode(context.Background(), node)
			require.ErrorIs(t, err, tc.want)
			assert.Contains(t, err.Error(), "start node dev-m02: hyperv "+tc.script+": m")
			assert.Equal(t, tc.script, ex.names()[len(ex.names())-1], "nothing runs after the failed script")
		})
	}

	bad := node
	bad.IP = "10.0.0.3"
	err := newDriver(&fakeExec{}, nil).StartNode(context.Background(), bad)
	require.ErrorContains(t, err, "not in the cluster network 172.30.0.0/16")
	bad.IP = "172.30.0.1"
	require.ErrorContains(t, newDriver(&fakeExec{}, nil).StartNode(context.Background(), bad), "the host's")

	ex := &fakeExec{}
	ex.answer("vm-state", `{"result":{"exists":false,"state":""}}`)
	require.ErrorContains(t, newDriver(ex, nil).StartNode(context.Background(), node), "no cache folder")
	ex = &fakeExec{}
	ex.answer("vm-state", `{"result":{"exists":false,"state":""}}`)
	err = newDriver(ex, func(context.Context, BootDiskRequest) error { return errors.New("disk full") }).StartNode(context.Background(), node)
	require.ErrorContains(t, err, "boot disk: disk full")
	assert.NotContains(t, ex.names(), "create-vm")
}

func TestStopDeleteState(t *testing.T) {
	ex := &fakeExec{}
	d := newDriver(ex, nil)
	ctx := context.Background()
	require.NoError(t, d.StopNode(ctx, node))
	require.NoError(t, d.DeleteNode(ctx, node))
	require.NoError(t, d.DeleteCluster(ctx, drivers.Cluster{Name: "dev"}))
	assert.Equal(t, []string{"stop-vm", "delete-vm", "delete-cluster"}, ex.names())
	assert.Contains(t, ex.script("delete-vm"), `\.minik\profiles\dev\nodes\dev-m02\hyperv')`)

	for state, want := range map[string]string{"Running": drivers.StateRunning, "Starting": drivers.StateRunning, "Off": drivers.StateStopped, "Saved": drivers.StateStopped, "": drivers.StateStopped} {
		ex.answer("vm-state", `{"result":{"exists":`+map[bool]string{true: "true", false: "false"}[state != ""]+`,"state":"`+state+`"}}`)
		got, err := d.NodeState(ctx, node)
		require.NoError(t, err)
		assert.Equal(t, want, got, state)
	}
	ex.answer("stop-vm", `{"error":{"category":"PermissionDenied","fullyQualifiedErrorId":"AccessDenied,Microsoft.HyperV.PowerShell.Commands.GetVM","exception":"x","message":"m","target":""}}`)
	require.ErrorIs(t, d.StopNode(ctx, node), ErrAccessDenied)

	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	require.ErrorIs(t, d.DeleteNode(cancelled, node), context.Canceled)
}

func TestList(t *testing.T) {
	ex := &fakeExec{}
	ex.answer("list-vms", `{"result":[`+
		`{"name":"dev","id":"1","state":"Running","notes":"{\"dev.minik.cluster\":\"dev\",\"dev.minik.kind\":\"node\",\"dev.minik.node\":\"dev\",\"dev.minik.role\":\"control-plane\"}"},`+
		`{"name":"dev-m02","id":"2","state":"Off","notes":"{\"dev.minik.cluster\":\"dev\",\"dev.minik.kind\":\"node\",\"dev.minik.node\":\"dev-m02\",\"dev.minik.role\":\"worker\"}"},`+
		`{"name":"mine","id":"3","state":"Off","notes":"my notes mention dev.minik.cluster but are not JSON"},`+
		`{"name":"json","id":"4","state":"Off","notes":"{\"dev.minik.cluster\":\"\"}"}]}`)
	vms, err := newDriver(ex, nil).List(context.Background())
	require.NoError(t, err)
	require.Len(t, vms, 2)
	assert.Equal(t, VM{Name: "dev", ID: "1", State: drivers.StateRunning, HyperVState: "Running", Labels: Labels{Cluster: "dev", Kind: "node", Node: "dev", Role: "control-plane"}}, vms[0])
	assert.Equal(t, "worker", vms[1].Labels.Role)
	assert.Equal(t, drivers.StateStopped, vms[1].State)

	ex.answer("list-vms", `{"result":[]}`)
	vms, err = newDriver(ex, nil).List(context.Background())
	require.NoError(t, err)
	assert.Empty(t, vms)
}

func TestLabels(t *testing.T) {
	l := Labels{Cluster: "dev", Kind: "node", Node: "dev-m02", Role: "worker"}
	got, ok := ParseNotes(l.Notes())
	require.True(t, ok)
	assert.Equal(t, l, got)
	for _, notes := range []string{"", "hello", `{"dev.minik.kind":"node"}`, `["dev.minik.cluster"]`} {
		_, ok := ParseNotes(notes)
		assert.False(t, ok, notes)
	}
	assert.Equal(t, "minik-dev", SwitchName("dev"))
	assert.Regexp(t, `^026D6B[0-9A-F]{6}$`, MAC("dev", "dev"))
	assert.NotEqual(t, MAC("dev", "dev"), MAC("dev", "dev-m02"))
}

func TestHealth(t *testing.T) {
	ctx := context.Background()
	err := New(Config{Exec: &fakeExec{}, GOOS: "linux"}).Health(ctx)
	var he *drivers.HealthError
	require.ErrorAs(t, err, &he)
	assert.Equal(t, "Hyper-V runs only on Windows, and this is linux", he.Problem)
	assert.Equal(t, "docs/drivers/hyperv.md", he.Doc)

	for _, tc := range []struct {
		name, report, problem, fix string
	}{
		{"ok, administrator", `{"administrator":true,"hyperVAdministrator":false,"module":true,"service":"Running"}`, "", ""},
		{"ok, Hyper-V Administrators", `{"administrator":false,"hyperVAdministrator":true,"module":true,"service":"Running"}`, "", ""},
		{"feature off", `{"administrator":true,"hyperVAdministrator":false,"module":false,"service":""}`, "the Hyper-V feature is not enabled", "Microsoft-Hyper-V-All"},
		{"module missing", `{"administrator":true,"hyperVAdministrator":false,"module":false,"service":"Running"}`, "PowerShell module is not installed", "Microsoft-Hyper-V-Management-PowerShell"},
		{"not allowed", `{"administrator":false,"hyperVAdministrator":false,"module":true,"service":"Running"}`, "may not manage Hyper-V", "S-1-5-32-578"},
		{"service stopped", `{"administrator":true,"hyperVAdministrator":false,"module":true,"service":"Stopped"}`, "(vmms) is Stopped", "Start-Service vmms"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ex := &fakeExec{}
			ex.answer("health", `{"result":`+tc.report+`}`)
			err := New(Config{Exec: ex, GOOS: "windows"}).Health(ctx)
			assert.Equal(t, []string{"health"}, ex.names())
			if tc.problem == "" {
				require.NoError(t, err)
				return
			}
			var he *drivers.HealthError
			require.ErrorAs(t, err, &he)
			assert.Contains(t, he.Problem, tc.problem)
			assert.Contains(t, he.Fix, tc.fix)
		})
	}

	err = New(Config{Exec: fakeRun{err: errors.New(`exec: "powershell.exe": executable file not found in %PATH%`)}, GOOS: "windows"}).Health(ctx)
	require.ErrorAs(t, err, &he)
	assert.Contains(t, he.Problem, "executable file not found")
	assert.Contains(t, he.Fix, "powershell.exe")
	assert.Equal(t, Name, New(Config{}).Info().Name)
}

func TestChooseSubnet(t *testing.T) {
	ex := &fakeExec{}
	ex.answer("host-networks", `{"result":["127.0.0.0/8","172.20.5.1/24","172.21.0.0/16","192.168.1.10/24","0.0.0.0/0","fe80::/64","garbage"]}`)
	got, err := newDriver(ex, nil).ChooseSubnet(context.Background(), []string{"172.22.0.0/16"})
	require.NoError(t, err)
	assert.Equal(t, "172.23.0.0/16", got, "skips the host's networks, the default route aside, and taken ones")

	var all []string
	for _, c := range drivers.CandidateSubnets() {
		all = append(all, c.String())
	}
	ex.answer("host-networks", `{"result":[]}`)
	_, err = newDriver(ex, nil).ChooseSubnet(context.Background(), all)
	require.ErrorContains(t, err, "every candidate")
	ex.answer("host-networks", `{"error":{"category":"PermissionDenied","fullyQualifiedErrorId":"x","exception":"x","message":"m","target":""}}`)
	_, err = newDriver(ex, nil).ChooseSubnet(context.Background(), nil)
	require.ErrorIs(t, err, ErrAccessDenied)
}

func TestPrepareErrors(t *testing.T) {
	exe, err := os.Executable()
	require.NoError(t, err)
	notELF := filepath.Join(t.TempDir(), "minik-node.exe")
	require.NoError(t, os.WriteFile(notELF, []byte("MZ"), 0o755))
	stub := filepath.Join(t.TempDir(), "linuxx64.efi.stub")
	require.NoError(t, os.WriteFile(stub, []byte("stub"), 0o644))

	for _, tc := range []struct {
		name     string
		goos     string
		firmware string
		env      map[string]string
		want     string
	}{
		{"direct boot", "windows", "direct", nil, "boot through UEFI only"},
		{"no kernel", "windows", "", map[string]string{EnvEFIStub: stub}, "no kernel for VM nodes"},
		{"windows build of minik-node", "windows", "", map[string]string{EnvEFIStub: stub, EnvNodeBinary: notELF}, EnvNodeBinary},
		{"no runc on windows", "windows", "", map[string]string{EnvEFIStub: stub, EnvNodeBinary: exe}, EnvRunc},
		{"runc not for linux", "windows", "", map[string]string{EnvEFIStub: stub, EnvNodeBinary: exe, EnvRunc: notELF}, "runc for the VMs"},
		{"a runc folder without packages", "windows", "", map[string]string{EnvEFIStub: stub, EnvNodeBinary: exe, EnvRunc: filepath.Dir(stub)}, "holds no .deb"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cache := t.TempDir()
			if tc.name != "no kernel" {
				// A kernel unpacked before, as from a Debian package.
				require.NoError(t, os.MkdirAll(filepath.Join(cache, "lib", "modules", "6.1.0-57-cloud-amd64"), 0o755))
				require.NoError(t, os.MkdirAll(filepath.Join(cache, "boot"), 0o755))
				require.NoError(t, os.WriteFile(filepath.Join(cache, "boot", "vmlinuz-6.1.0-57-cloud-amd64"), []byte("kernel"), 0o644))
			}
			d := New(Config{Exec: &fakeExec{}, GOOS: tc.goos,
				CacheDir:   func() (string, error) { return cache, nil },
				FindBinary: func() (string, error) { return notELF, nil },
				Getenv:     func(k string) string { return tc.env[k] }})
			d.ConfigureVMs(drivers.VMOptions{Firmware: tc.firmware})
			err := d.Prepare(context.Background(), nil)
			require.ErrorContains(t, err, tc.want)
		})
	}
}

// TestPrepareFromPackages builds the VM image as on a Windows host, which
// has no runc, kernel or EFI stub of its own: everything comes from
// Debian packages (.ci/run downloads them), unpacked in Go.
func TestPrepareFromPackages(t *testing.T) {
	if testing.Short() {
		t.Skip("unpacks a kernel package and writes a 150 MB initramfs")
	}
	debs, kernel, bin := os.Getenv("MINIK_TEST_RUNC_DEBS"), os.Getenv("MINIK_TEST_KERNEL_DEB"), os.Getenv("MINIK_NODE_BINARY")
	if debs == "" || kernel == "" || bin == "" {
		if os.Getenv("CI") != "" {
			t.Fatal("MINIK_TEST_RUNC_DEBS, MINIK_TEST_KERNEL_DEB and MINIK_NODE_BINARY must be set: .ci/run and make test set them")
		}
		t.Skip("MINIK_TEST_RUNC_DEBS, MINIK_TEST_KERNEL_DEB or MINIK_NODE_BINARY is not set")
	}
	if _, err := os.Stat(vmimage.EFIStubPath); err != nil {
		t.Skip("no systemd EFI stub (Debian's systemd-boot-efi)")
	}
	cache := t.TempDir()
	env := map[string]string{EnvKernel: kernel, EnvEFIStub: vmimage.EFIStubPath, EnvNodeBinary: bin, EnvRunc: debs}
	d := New(Config{Exec: &fakeExec{}, GOOS: "windows",
		CacheDir:   func() (string, error) { return cache, nil },
		FindBinary: func() (string, error) { return "", errors.New("minik-node.exe is no VM's init") },
		Getenv:     func(k string) string { return env[k] }})
	require.NoError(t, d.Prepare(context.Background(), nil))
	img, err := d.image(context.Background(), nil)
	require.NoError(t, err)
	initramfs, err := os.ReadFile(img.Initramfs)
	require.NoError(t, err)
	for _, want := range []string{"usr/sbin/runc", "libseccomp.so.2", "ld-linux-x86-64.so.2", "libc.so.6", "hv_netvsc.ko", "hv_storvsc.ko"} {
		assert.True(t, bytes.Contains(initramfs, []byte(want)), "the initramfs holds %s", want)
	}
}
