package hyperv

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

func golden(t *testing.T, s Script) {
	t.Helper()
	path := filepath.Join("testdata", s.Name+".ps1")
	if *update {
		require.NoError(t, os.WriteFile(path, []byte(s.Text), 0o644))
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err, "run go test ./drivers/hyperv -update to write it")
	assert.Equal(t, string(want), s.Text)
}

// A user whose name has an apostrophe and a non-ASCII letter: every value
// the scripts get from minik goes through Quote.
const nodeDir = `C:\Users\Zoë O'Brien\.minik\profiles\dev\nodes\dev-m02`

var (
	testNode  = Labels{Cluster: "dev", Kind: "node", Node: "dev-m02", Role: "worker"}.Notes()
	allScript = []Script{
		HealthScript(),
		EnsureSwitchScript(SwitchSpec{Cluster: "dev", Name: "minik-dev", Notes: Labels{Cluster: "dev", Kind: "network"}.Notes(), HostIP: "172.30.0.1", PrefixLength: 16}),
		CreateVMScript(VMSpec{Name: "dev-m02", Notes: testNode, Switch: "minik-dev", MAC: MAC("dev", "dev-m02"),
			Dir: nodeDir + `\hyperv`, SourceVHD: nodeDir + `\boot.vhd`, BootDisk: nodeDir + `\hyperv\boot.vhdx`,
			DataDisk: nodeDir + `\hyperv\data.vhdx`, DataDiskGiB: 20,
			MemoryMiB: 2048, CPUs: 2, ComPipe: `\\.\pipe\minik-dev-m02`}),
		VMStateScript("dev-m02", testNode),
		StartVMScript("dev-m02", testNode, nodeDir+`\boot.vhd`, nodeDir+`\hyperv\boot.vhdx`),
		StopVMScript("dev-m02", testNode),
		DeleteVMScript("dev", "dev-m02", testNode, nodeDir+`\hyperv`, "minik-dev"),
		DeleteClusterScript("dev"),
		ListVMsScript(),
		HostNetworksScript(),
	}
)

func TestScriptsGolden(t *testing.T) {
	seen := map[string]bool{}
	for _, s := range allScript {
		t.Run(s.Name, func(t *testing.T) {
			require.False(t, seen[s.Name], "two scripts named %s", s.Name)
			seen[s.Name] = true
			golden(t, s)
		})
	}
	files, err := filepath.Glob("testdata/*.ps1")
	require.NoError(t, err)
	assert.Len(t, files, len(allScript), "a golden file for each script, and no stale ones")
}

// TestScriptsShape checks what PowerShell's -Command - needs of a script
// read from standard input, and what the driver relies on.
func TestScriptsShape(t *testing.T) {
	for _, s := range allScript {
		t.Run(s.Name, func(t *testing.T) {
			assert.True(t, strings.HasPrefix(s.Text, "# minik: "+s.Name+"\n"))
			for i, r := range s.Text {
				if r > 0x7e || (r < 0x20 && r != '\n') {
					t.Fatalf("not printable ASCII at %d: %q", i, r)
				}
			}
			body, ok := strings.CutSuffix(s.Text, "}\n\n")
			require.True(t, ok, "an empty line ends the script")
			assert.NotContains(t, body, "\n\n", "no empty line inside the try/catch statement: it would end it early")
			assert.Equal(t, strings.Count(s.Text, "{"), strings.Count(s.Text, "}"), "braces balance")
			assert.Contains(t, s.Text, "ConvertTo-Json -Compress -Depth 6 -InputObject @{ result = $result }")
			assert.NotContains(t, s.Text, "\t")
			// Hyper-V's cmdlets are named with their module: VMware's
			// PowerCLI has a Get-VM too.
			for _, line := range strings.Split(s.Text, "\n") {
				for _, c := range []string{"Get-VM ", "New-VM ", "Start-VM ", "Stop-VM ", "Remove-VM ", "Get-VMSwitch ", "New-VMSwitch "} {
					if i := strings.Index(line, c); i >= 0 {
						assert.True(t, strings.HasSuffix(line[:i], `Hyper-V\`), "%s: %s", c, line)
					}
				}
			}
		})
	}
}
