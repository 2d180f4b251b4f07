package cluster

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestValidateName(t *testing.T) {
	for name, ok := range map[string]bool{
		"minik": true, "dev-1": true, "a": true, "1a": true,
		"": false, "Dev": false, "-a": false, "a-": false, "a_b": false, "a.b": false,
		"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa": false, // 51 chars
	} {
		err := ValidateName(name)
		if ok {
			assert.NoError(t, err, name)
		} else {
			assert.Error(t, err, name)
		}
	}
}

func testProfile() *Profile {
	return &Profile{
		Name: "dev", Driver: "process", APIServerPort: 40000,
		ServiceCIDR: "10.96.0.0/16", PodCIDR: "10.244.0.0/16",
		Nodes: []ProfileNode{
			{Name: "dev", Role: "control-plane", IP: "127.0.0.2"},
			{Name: "dev-m02", Role: "worker", IP: "127.0.0.3"},
		},
	}
}

func TestStoreRoundTrip(t *testing.T) {
	s := Store{Home: t.TempDir()}
	_, err := s.Load("dev")
	require.ErrorIs(t, err, ErrNotFound)

	p := testProfile()
	require.NoError(t, s.Save(p))
	got, err := s.Load("dev")
	require.NoError(t, err)
	assert.Equal(t, p, got)
	assert.Equal(t, "dev", got.ControlPlane().Name)
	assert.Equal(t, "https://127.0.0.1:40000", got.APIServerURL())

	names, err := s.Names()
	require.NoError(t, err)
	assert.Equal(t, []string{"dev"}, names)

	info, err := os.Stat(filepath.Join(s.ProfileDir("dev"), "profile.json"))
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), info.Mode().Perm())
}

func TestStoreCorrupt(t *testing.T) {
	cases := map[string]string{
		"garbage":        "{nope",
		"other name":     `{"name":"other","driver":"process","apiServerPort":1,"nodes":[{"name":"x","role":"control-plane"}]}`,
		"no nodes":       `{"name":"dev","driver":"process","apiServerPort":1}`,
		"no cp":          `{"name":"dev","driver":"process","apiServerPort":1,"nodes":[{"name":"x","role":"worker"}]}`,
		"port out range": `{"name":"dev","driver":"process","apiServerPort":0,"nodes":[{"name":"x","role":"control-plane"}]}`,
	}
	for name, content := range cases {
		t.Run(name, func(t *testing.T) {
			s := Store{Home: t.TempDir()}
			require.NoError(t, os.MkdirAll(s.ProfileDir("dev"), 0o700))
			require.NoError(t, os.WriteFile(filepath.Join(s.ProfileDir("dev"), "profile.json"), []byte(content), 0o600))
			_, err := s.Load("dev")
			require.ErrorIs(t, err, ErrCorrupt)
		})
	}
	t.Run("missing file", func(t *testing.T) {
		s := Store{Home: t.TempDir()}
		require.NoError(t, os.MkdirAll(s.ProfileDir("dev"), 0o700))
		_, err := s.Load("dev")
		require.ErrorIs(t, err, ErrCorrupt)
	})
}

func TestSaveRefusesInvalid(t *testing.T) {
	s := Store{Home: t.TempDir()}
	p := testProfile()
	p.Nodes = nil
	require.Error(t, s.Save(p))
	assert.False(t, s.Exists("dev"))
}

func TestNodeName(t *testing.T) {
	assert.Equal(t, "minik", nodeName("minik", 0))
	assert.Equal(t, "minik-m02", nodeName("minik", 1))
	assert.Equal(t, "minik-m10", nodeName("minik", 9))
}
