package hyperv

import (
	"context"
	"os/exec"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// These run only on Windows, where Windows PowerShell is: what the golden
// tests cannot show, that PowerShell reads the scripts as written. None
// needs Hyper-V or changes anything.

func powerShell(t *testing.T) Executor {
	t.Helper()
	if _, err := exec.LookPath("powershell.exe"); err != nil {
		t.Skip("no powershell.exe")
	}
	return PowerShell{}
}

func TestPowerShellQuote(t *testing.T) {
	ex := powerShell(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for _, s := range []string{"", "dev-m02", "it's", `C:\Users\Zoë O'Brien\.minik`, "a\u2019b\u2018c", "$env:PATH `n $(exit 1)", "line\nbreak", "\U0001F600"} {
		var got string
		require.NoError(t, run(ctx, ex, build("quote", false, []assign{str("value", s)}, "    $result = $value\n"), &got))
		assert.Equal(t, s, got)
	}
}

func TestPowerShellErrorRecord(t *testing.T) {
	ex := powerShell(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err := run(ctx, ex, build("raise", false, nil, "    Stop-Minik 'MinikVMNameInUse' ResourceExists 'in use' 'dev'\n"), nil)
	require.ErrorIs(t, err, ErrVMNameInUse)
	var pe *PSError
	require.ErrorAs(t, err, &pe)
	assert.Equal(t, "ResourceExists", pe.Category)
	assert.Equal(t, "in use", pe.Message)
	assert.Equal(t, "dev", pe.Target)
}

func TestPowerShellHealth(t *testing.T) {
	ex := powerShell(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var r healthReport
	require.NoError(t, run(ctx, ex, HealthScript(), &r))
	t.Logf("health: %+v", r)
}
