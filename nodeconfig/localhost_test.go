package nodeconfig

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestLocalhostPortsRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name  string
		ports []LocalhostPort
		text  string
	}{
		{"none", nil, ""},
		{"same port", []LocalhostPort{{"tcp", 80, 80}}, "80:80"},
		{"sorted by port then protocol", []LocalhostPort{
			{"tcp", 443, 32443}, {"udp", 53, 32053}, {"tcp", 53, 53}, {"tcp", 80, 32080},
		}, "53:53,53/udp:32053,80:32080,443:32443"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			text := FormatLocalhostPorts(tc.ports)
			assert.Equal(t, tc.text, text)
			back, err := ParseLocalhostPorts(text)
			require.NoError(t, err)
			assert.ElementsMatch(t, tc.ports, back)
		})
	}
}

func TestParseLocalhostPorts(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []LocalhostPort
		err  string
	}{
		{in: " ", want: nil},
		{in: "80:32080, 53/UDP:5353", want: []LocalhostPort{{"tcp", 80, 32080}, {"udp", 53, 5353}}},
		{in: "80/tcp:80", want: []LocalhostPort{{"tcp", 80, 80}}},
		{in: "80", err: "is not SERVICEPORT:HOSTPORT"},
		{in: "80/sctp:80", err: "neither tcp nor udp"},
		{in: "0:80", err: "not 1 to 65535"},
		{in: "80:70000", err: "not 1 to 65535"},
		{in: "http:80", err: "not 1 to 65535"},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseLocalhostPorts(tc.in)
			if tc.err != "" {
				require.ErrorContains(t, err, tc.err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
}

func TestLocalhostHostPort(t *testing.T) {
	ports := []LocalhostPort{{"tcp", 80, 32080}, {"udp", 80, 32081}}
	assert.Equal(t, 32080, LocalhostHostPort(ports, "tcp", 80))
	assert.Equal(t, 32081, LocalhostHostPort(ports, "udp", 80))
	assert.Equal(t, 0, LocalhostHostPort(ports, "tcp", 443))
}
