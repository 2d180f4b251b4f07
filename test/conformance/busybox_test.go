package conformance

import (
	"context"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestDebSrcLines(t *testing.T) {
	for _, tc := range []struct{ name, in, want string }{
		{"plain", "deb http://archive.example/debian bookworm main contrib\n",
			"Types: deb-src\nURIs: http://archive.example/debian\nSuites: bookworm\nComponents: main contrib\n\n"},
		{"options", "deb [arch=amd64 signed-by=/k.gpg] http://archive.example/debian bookworm main\n",
			"Types: deb-src\nURIs: http://archive.example/debian\nSuites: bookworm\nComponents: main\nArchitectures: amd64\nSigned-By: /k.gpg\n\n"},
		{"flat repository", "deb http://archive.example/flat ./\n",
			"Types: deb-src\nURIs: http://archive.example/flat\nSuites: ./\n\n"},
		{"comments, deb-src and blanks are left out", "# deb http://archive.example/debian bookworm main\ndeb-src http://archive.example/debian bookworm main\n\n", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, string(debSrcLines([]byte(tc.in))))
		})
	}
}

func TestDebSrc822(t *testing.T) {
	in := "Types: deb\nURIs: http://archive.example/debian\nSuites: bookworm\nComponents: main\n\nTypes: deb deb-src\nURIs: http://security.example/debian\nSuites: bookworm-security\n"
	want := "Types: deb-src\nURIs: http://archive.example/debian\nSuites: bookworm\nComponents: main\n\nTypes: deb-src\nURIs: http://security.example/debian\nSuites: bookworm-security\n"
	assert.Equal(t, want, string(debSrc822([]byte(in))))
}

// TestBuildBusybox builds busybox from Debian's source (minutes, once per
// version and machine) and checks what the rebuild is for: the shell
// passes on a variable whose name is no shell identifier.
func TestBuildBusybox(t *testing.T) {
	if testing.Short() {
		t.Skip("builds busybox from source")
	}
	if _, err := exec.LookPath("dpkg-query"); err != nil && os.Getenv("CI") == "" {
		t.Skip("not a Debian machine; CI runs this")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	cache, err := CacheDir()
	require.NoError(t, err)
	bin, err := BuildBusybox(ctx, cache)
	require.NoError(t, err)

	cmd := exec.CommandContext(ctx, bin, "sh", "-c", "env")
	cmd.Env = []string{"data-1=value-1", "PATH=/bin"}
	out, err := cmd.Output()
	require.NoError(t, err)
	assert.Contains(t, string(out), "data-1=value-1\n")

	again, err := BuildBusybox(ctx, cache)
	require.NoError(t, err)
	assert.Equal(t, bin, again, "built once per version")
}
