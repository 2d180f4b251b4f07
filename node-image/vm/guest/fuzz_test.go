package guest

import "testing"

// The kernel command line comes from the VM's boot disk or domain.
func FuzzParseCmdline(f *testing.F) {
	f.Add("console=ttyS0 minik.ip=172.20.0.3/16 minik.gateway=172.20.0.1 minik.hostname=n minik.bridge=minik0")
	f.Add("minik.ip=::1/128 minik.gateway=300.1.1.1")
	f.Add("minik.ip=10.0.0.1/8 minik.gateway=11.0.0.1")
	f.Fuzz(func(t *testing.T, cmdline string) {
		n, ok, err := ParseCmdline(cmdline)
		if err != nil || !ok {
			return
		}
		again, ok, err := ParseCmdline(n.Cmdline())
		if err != nil || !ok || again != n {
			t.Fatalf("%q -> %+v does not read back: %+v %v", cmdline, n, again, err)
		}
	})
}
