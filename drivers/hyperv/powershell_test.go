package hyperv

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"unicode/utf16"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// unquote evaluates what Quote writes, as PowerShell would: single-quoted
// literals (a doubled single quote is one) and [char]0xXXXX code units, joined by + in
// parentheses behind a string.
func unquote(t *testing.T, expr string) string {
	t.Helper()
	if strings.HasPrefix(expr, "(") {
		require.True(t, strings.HasSuffix(expr, ")"), expr)
		expr = expr[1 : len(expr)-1]
		require.True(t, strings.HasPrefix(expr, "'"), "a string comes first, so + concatenates: %s", expr)
	}
	var units []uint16
	for i := 0; i < len(expr); {
		switch {
		case expr[i] == '\'':
			i++
			for {
				require.Less(t, i, len(expr), "unterminated literal in %s", expr)
				if expr[i] == '\'' {
					if i+1 < len(expr) && expr[i+1] == '\'' {
						units = append(units, '\'')
						i += 2
						continue
					}
					i++
					break
				}
				units = append(units, uint16(expr[i]))
				i++
			}
		case strings.HasPrefix(expr[i:], "[char]0x"):
			v, err := strconv.ParseUint(expr[i+8:i+12], 16, 16)
			require.NoError(t, err, expr)
			units = append(units, uint16(v))
			i += 12
		default:
			t.Fatalf("unexpected %q in %s", expr[i:], expr)
		}
		if i < len(expr) {
			require.Equal(t, byte('+'), expr[i], expr)
			i++
		}
	}
	return string(utf16.Decode(units))
}

func TestQuote(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", "''"},
		{"dev-m02", "'dev-m02'"},
		{"it's", "'it''s'"},
		{"''", "''''''"},
		{`C:\Users\O'Brien\.minik`, `'C:\Users\O''Brien\.minik'`},
		{"$env:USERPROFILE `whoami` $(Remove-Item x)", "'$env:USERPROFILE `whoami` $(Remove-Item x)'"},
		{"a\u2019b", "('a'+[char]0x2019+'b')"}, // PowerShell ends a '...' at a typographic quote too
		{"\u2018x", "(''+[char]0x2018+'x')"},
		{"Jos\u00e9", "('Jos'+[char]0x00E9)"},
		{"line\nbreak", "('line'+[char]0x000A+'break')"},
		{"\U0001F600", "(''+[char]0xD83D+[char]0xDE00)"},
		{"nul\x00", "('nul'+[char]0x0000)"},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got := Quote(tc.in)
			assert.Equal(t, tc.want, got)
			assert.Equal(t, tc.in, unquote(t, got))
			for _, r := range got {
				assert.True(t, r >= 0x20 && r < 0x7f, "ASCII only: %q", got)
			}
		})
	}
}

func TestQuoteRoundTrip(t *testing.T) {
	alphabet := []rune("a'Z \\$`\"\u2018\u2019\u201a\u201b\u00e9\u4e16\U0001F600\t\n;|&{}()@#")
	for i := range 2000 {
		var b strings.Builder
		for j := range i % 13 {
			b.WriteRune(alphabet[(i*7+j*31)%len(alphabet)])
		}
		s := b.String()
		assert.Equal(t, s, unquote(t, Quote(s)), "%q", s)
	}
}

type fakeRun struct {
	out []byte
	err error
}

func (f fakeRun) Run(context.Context, string) ([]byte, error) { return f.out, f.err }

func TestRunAnswers(t *testing.T) {
	s := Script{Name: "op", Text: "# minik: op\n"}
	var res struct {
		N int `json:"n"`
	}
	// What a cmdlet prints before the answer is ignored; so is a BOM.
	require.NoError(t, run(context.Background(), fakeRun{out: []byte("\xef\xbb\xbfName State\r\n---- -----\r\n{\"result\":{\"n\":3}}\r\n")}, s, &res))
	assert.Equal(t, 3, res.N)

	for _, tc := range []struct {
		name, out string
		kind      error
	}{
		{"vm name in use", `{"error":{"category":"ResourceExists","fullyQualifiedErrorId":"MinikVMNameInUse","exception":"System.Exception","message":"a VM named dev exists and minik did not make it","target":"dev"}}`, ErrVMNameInUse},
		{"switch missing (minik's check)", `{"error":{"category":"ObjectNotFound","fullyQualifiedErrorId":"MinikSwitchMissing","exception":"System.Exception","message":"there is no virtual switch minik-dev","target":"minik-dev"}}`, ErrSwitchMissing},
		{"switch missing (a cmdlet)", `{"error":{"category":"ObjectNotFound","fullyQualifiedErrorId":"InvalidParameter,Microsoft.HyperV.PowerShell.Commands.GetVMSwitch","exception":"Microsoft.HyperV.PowerShell.VirtualizationException","message":"Hyper-V was unable to find a virtual switch with name \"minik-dev\".","target":"minik-dev"}}`, ErrSwitchMissing},
		{"access denied", `{"error":{"category":"PermissionDenied","fullyQualifiedErrorId":"AccessDenied,Microsoft.HyperV.PowerShell.Commands.NewVM","exception":"Microsoft.HyperV.PowerShell.VirtualizationException","message":"You do not have the required permission to complete this task.","target":""}}`, ErrAccessDenied},
		{"access denied (file)", `{"error":{"category":"NotSpecified","fullyQualifiedErrorId":"System.UnauthorizedAccessException","exception":"System.UnauthorizedAccessException","message":"Access to the path is denied.","target":""}}`, ErrAccessDenied},
		{"module missing (minik's check)", `{"error":{"category":"NotInstalled","fullyQualifiedErrorId":"MinikHyperVModuleMissing","exception":"System.Exception","message":"the Hyper-V PowerShell module is not installed","target":"Hyper-V"}}`, ErrHyperVModuleMissing},
		{"module missing (Import-Module)", `{"error":{"category":"ResourceUnavailable","fullyQualifiedErrorId":"Modules_ModuleNotFound,Microsoft.PowerShell.Commands.ImportModuleCommand","exception":"System.IO.FileNotFoundException","message":"...","target":"Hyper-V"}}`, ErrHyperVModuleMissing},
		{"switch not internal", `{"error":{"category":"InvalidType","fullyQualifiedErrorId":"MinikSwitchNotInternal","exception":"System.Exception","message":"the switch minik-dev is External, not Internal","target":"minik-dev"}}`, ErrSwitchNotInternal},
		{"vm missing", `{"error":{"category":"ObjectNotFound","fullyQualifiedErrorId":"MinikVMMissing","exception":"System.Exception","message":"minik has no VM named dev","target":"dev"}}`, ErrVMMissing},
		{"other", `{"error":{"category":"InvalidOperation","fullyQualifiedErrorId":"OperationFailed,Microsoft.HyperV.PowerShell.Commands.StartVM","exception":"Microsoft.HyperV.PowerShell.VirtualizationException","message":"'dev' failed to start.","target":""}}`, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := run(context.Background(), fakeRun{out: []byte(tc.out + "\r\n")}, s, nil)
			var pe *PSError
			require.ErrorAs(t, err, &pe)
			assert.Equal(t, "op", pe.Script)
			assert.Contains(t, err.Error(), "hyperv op: ")
			for _, k := range []error{ErrVMNameInUse, ErrVMMissing, ErrSwitchMissing, ErrSwitchNotInternal, ErrAccessDenied, ErrHyperVModuleMissing} {
				assert.Equal(t, k == tc.kind, errors.Is(err, k), "errors.Is %v", k)
			}
		})
	}

	for _, out := range []string{"", "Get-VM : The term 'Get-VM' is not recognized\r\n", `{"something":"else"}`} {
		err := run(context.Background(), fakeRun{out: []byte(out)}, s, nil)
		require.ErrorContains(t, err, "printed no JSON answer", out)
	}
	err := run(context.Background(), fakeRun{err: fmt.Errorf("exec: \"powershell.exe\": executable file not found")}, s, nil)
	require.ErrorContains(t, err, "hyperv op: exec")
	err = run(context.Background(), fakeRun{out: []byte(`{"result":"not a number"}`)}, s, &res)
	require.ErrorContains(t, err, "decode the result")
}
