package hyperv

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf16"
)

// Executor runs one PowerShell script and returns what it wrote to its
// standard output. The real one (Windows only) runs
// `powershell.exe -NoProfile -NonInteractive -Command -` with the script on
// standard input; tests use a fake.
type Executor interface {
	Run(ctx context.Context, script string) ([]byte, error)
}

// Script is one PowerShell script of the driver.
type Script struct {
	// Name says what it does (ensure-switch, create-vm, ...); the golden
	// file is testdata/NAME.ps1 and the script's first line names it.
	Name string
	// Text is the whole script, ASCII only: every value from the user
	// is a quoted literal (see Quote), assigned before the fixed body.
	Text string
}

// Errors a script's structured error maps to; test them with errors.Is.
var (
	// ErrVMNameInUse: a VM of that name exists that minik did not make.
	ErrVMNameInUse = errors.New("the VM name is in use")
	// ErrVMMissing: no VM of minik has the node's name.
	ErrVMMissing = errors.New("the VM does not exist")
	// ErrSwitchMissing: the cluster's virtual switch does not exist.
	ErrSwitchMissing = errors.New("the virtual switch does not exist")
	// ErrSwitchNotInternal: a switch of the cluster's name is not Internal.
	ErrSwitchNotInternal = errors.New("the virtual switch is not an Internal switch")
	// ErrAccessDenied: the user may not manage Hyper-V.
	ErrAccessDenied = errors.New("access denied")
	// ErrHyperVModuleMissing: the Hyper-V PowerShell module is not installed.
	ErrHyperVModuleMissing = errors.New("the Hyper-V PowerShell module is not installed")
)

// PSError is the error a script caught, as its catch block reports it:
// PowerShell's error record, not its human-readable rendering.
type PSError struct {
	// Script is the Script.Name that failed.
	Script string `json:"-"`
	// Category is the ErrorCategory (ObjectNotFound, PermissionDenied, ...).
	Category string `json:"category"`
	// FullyQualifiedErrorID is the record's ID: "ID,Command" for a
	// cmdlet's error, minik's own ID (MinikVMNameInUse, ...) for the
	// errors the scripts raise.
	FullyQualifiedErrorID string `json:"fullyQualifiedErrorId"`
	// Exception is the .NET type of the exception.
	Exception string `json:"exception"`
	Message   string `json:"message"`
	Target    string `json:"target"`
}

func (e *PSError) Error() string {
	msg := fmt.Sprintf("hyperv %s: %s", e.Script, strings.TrimSpace(e.Message))
	if kind := e.kind(); kind != nil {
		msg += " (" + kind.Error() + ")"
	}
	return msg + " [" + e.FullyQualifiedErrorID + "]"
}

// Unwrap returns the sentinel error the record maps to, if any.
func (e *PSError) Unwrap() error { return e.kind() }

// kind maps the record to one of the sentinel errors by its ID, category
// and exception type; never by its message, which Windows translates.
func (e *PSError) kind() error {
	id, _, _ := strings.Cut(e.FullyQualifiedErrorID, ",")
	switch id {
	case "MinikVMNameInUse":
		return ErrVMNameInUse
	case "MinikVMMissing":
		return ErrVMMissing
	case "MinikSwitchMissing":
		return ErrSwitchMissing
	case "MinikSwitchNotInternal":
		return ErrSwitchNotInternal
	case "MinikHyperVModuleMissing", "Modules_ModuleNotFound":
		return ErrHyperVModuleMissing
	}
	switch {
	case e.Category == "PermissionDenied", id == "AccessDenied", e.Exception == "System.UnauthorizedAccessException":
		return ErrAccessDenied
	case e.Category == "ObjectNotFound" && strings.HasSuffix(e.FullyQualifiedErrorID, "VMSwitch"):
		// A Hyper-V cmdlet that names a switch (Get-VMSwitch, Connect-VMNetworkAdapter)
		return ErrSwitchMissing
	}
	return nil
}

// envelope is the one JSON line every script prints last.
type envelope struct {
	Result json.RawMessage `json:"result"`
	Error  *PSError        `json:"error"`
}

// run runs s and decodes its result into out (nil: ignore it).
func run(ctx context.Context, ex Executor, s Script, out any) error {
	stdout, err := ex.Run(ctx, s.Text)
	if err != nil {
		return fmt.Errorf("hyperv %s: %w", s.Name, err)
	}
	env, err := parseEnvelope(stdout)
	if err != nil {
		return fmt.Errorf("hyperv %s: %w", s.Name, err)
	}
	if env.Error != nil {
		env.Error.Script = s.Name
		return env.Error
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(env.Result, out); err != nil {
		return fmt.Errorf("hyperv %s: decode the result %s: %w", s.Name, env.Result, err)
	}
	return nil
}

// parseEnvelope reads the last non-empty line of a script's output: what
// a cmdlet printed before it is not the answer.
func parseEnvelope(stdout []byte) (envelope, error) {
	stdout = bytes.TrimPrefix(stdout, []byte("\xef\xbb\xbf"))
	lines := bytes.Split(bytes.TrimRight(stdout, "\r\n\t "), []byte("\n"))
	last := bytes.TrimSpace(bytes.TrimPrefix(lines[len(lines)-1], []byte("\xef\xbb\xbf")))
	var env envelope
	if len(last) == 0 || json.Unmarshal(last, &env) != nil || (env.Error == nil && env.Result == nil) {
		return envelope{}, fmt.Errorf("PowerShell printed no JSON answer: %q", tail(stdout, 400))
	}
	return env, nil
}

func tail(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}

// Quote returns a PowerShell expression whose value is exactly s, in
// ASCII only: printable ASCII in single-quoted literals (where only the
// single quote is special, written twice), every other character as
// [char]0xXXXX (UTF-16 code units), joined with + behind a string
// (PowerShell adds two [char]s as numbers). ASCII keeps the script intact
// whatever code page PowerShell reads standard input with, and it leaves
// no room for the typographic quotes (U+2018 to U+201B) that PowerShell
// also takes as single quotes.
func Quote(s string) string {
	if s == "" {
		return "''"
	}
	var parts []string
	var lit strings.Builder
	flush := func() {
		if lit.Len() > 0 {
			parts = append(parts, "'"+lit.String()+"'")
			lit.Reset()
		}
	}
	for _, r := range s {
		switch {
		case r == '\'':
			lit.WriteString("''")
		case r >= 0x20 && r < 0x7f:
			lit.WriteRune(r)
		default:
			flush()
			for _, u := range utf16.Encode([]rune{r}) {
				parts = append(parts, fmt.Sprintf("[char]0x%04X", u))
			}
		}
	}
	flush()
	if len(parts) == 1 && strings.HasPrefix(parts[0], "'") {
		return parts[0]
	}
	if !strings.HasPrefix(parts[0], "'") {
		// [char] + [char] is a number in PowerShell; a string first makes
		// every + a concatenation.
		parts = append([]string{"''"}, parts...)
	}
	return "(" + strings.Join(parts, "+") + ")"
}

// quoteInt writes an integer for a script.
func quoteInt[T ~int | ~int64 | ~uint | ~uint64](v T) string { return strconv.FormatInt(int64(v), 10) }
