package guest

import (
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseCmdline(t *testing.T) {
	n := Network{Address: netip.MustParsePrefix("172.30.0.3/16"), Gateway: netip.MustParseAddr("172.30.0.1"), Hostname: "dev-m02", Bridge: "minik0"}
	got, ok, err := ParseCmdline("console=ttyS0 panic=-1 " + n.Cmdline() + " quiet")
	require.NoError(t, err)
	assert.True(t, ok)
	assert.Equal(t, n, got)

	_, ok, err = ParseCmdline("console=ttyS0 quiet")
	require.NoError(t, err)
	assert.False(t, ok, "no address given")

	for _, bad := range []string{"minik.ip=172.30.0.3", "minik.ip=fd00::3/64", "minik.ip=172.30.0.3/16 minik.gateway=10.0.0.1", "minik.ip=1.2.3.4/8 minik.gateway=x",
		"minik.ip=1.2.3.4/8 minik.bridge=a-name-far-too-long-for-linux", "minik.ip=1.2.3.4/8 minik.bridge="} {
		_, _, err := ParseCmdline(bad)
		assert.Error(t, err, bad)
	}
}

func TestCmdlineValue(t *testing.T) {
	line := "console=ttyS0 minik.config=/minik/nodes/a/config.json quiet"
	assert.Equal(t, "/minik/nodes/a/config.json", CmdlineValue(line, "minik.config"))
	assert.Equal(t, "ttyS0", CmdlineValue(line, "console"))
	assert.Empty(t, CmdlineValue(line, "quiet"), "a flag has no value")
	assert.Empty(t, CmdlineValue(line, "minik.ip"))
}
