package conformance

import (
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"
)

// Summary is what a run found: counts in all and per SIG, and each failure.
type Summary struct {
	Driver   string            `json:"driver"`
	Nodes    int               `json:"nodes"`
	Procs    int               `json:"procs,omitempty"`
	Commit   string            `json:"commit,omitempty"`
	Date     time.Time         `json:"date"`
	Focus    string            `json:"focus"`
	Skip     string            `json:"skip,omitempty"`
	Duration time.Duration     `json:"duration"`
	Counts   Counts            `json:"counts"`
	SIGs     map[string]Counts `json:"sigs"`
	Failures []Failure         `json:"failures"`
}

// Counts are spec results.
type Counts struct {
	Passed  int `json:"passed"`
	Failed  int `json:"failed"`
	Skipped int `json:"skipped"`
}

// Failure is one failed spec and the first line of why.
type Failure struct {
	Name    string `json:"name"`
	Message string `json:"message"`
}

type junitSuites struct {
	Suites []junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	Cases []junitCase `xml:"testcase"`
}

type junitCase struct {
	Name    string        `xml:"name,attr"`
	Status  string        `xml:"status,attr"`
	Time    float64       `xml:"time,attr"`
	Failure *junitMessage `xml:"failure"`
	Error   *junitMessage `xml:"error"`
	Skipped *junitMessage `xml:"skipped"`
}

type junitMessage struct {
	Message string `xml:"message,attr"`
	Body    string `xml:",chardata"`
}

var sigPattern = regexp.MustCompile(`\[sig-([a-z0-9-]+)\]`)

// ParseJUnit reads a ginkgo JUnit report into counts, per SIG, and failures.
// The suite's own nodes (BeforeSuite and the like) count only when they
// fail, and specs the selection left out not at all.
func ParseJUnit(r io.Reader) (Summary, error) {
	var doc junitSuites
	if err := xml.NewDecoder(r).Decode(&doc); err != nil {
		return Summary{}, fmt.Errorf("read the JUnit report: %w", err)
	}
	s := Summary{SIGs: map[string]Counts{}}
	for _, suite := range doc.Suites {
		for _, c := range suite.Cases {
			sig := "none"
			if m := sigPattern.FindStringSubmatch(c.Name); m != nil {
				sig = m[1]
			}
			failed := c.Failure != nil || c.Error != nil || c.Status == "failed" || c.Status == "panicked" ||
				c.Status == "timedout" || c.Status == "interrupted" || c.Status == "aborted"
			skipped := !failed && (c.Skipped != nil || c.Status == "skipped" || c.Status == "pending")
			// Specs the selection left out are "skipped" with no reason;
			// only specs that skipped themselves (a reason given) count.
			unselected := skipped && c.Skipped != nil && strings.TrimSpace(c.Skipped.Message) == "skipped"
			setup := !strings.HasPrefix(c.Name, "[It]")
			counts := s.SIGs[sig]
			switch {
			case failed:
				counts.Failed++
				s.Counts.Failed++
				msg := ""
				for _, m := range []*junitMessage{c.Failure, c.Error} {
					if m != nil && msg == "" {
						msg = firstLine(m.Message)
						if msg == "" {
							msg = firstLine(m.Body)
						}
					}
				}
				s.Failures = append(s.Failures, Failure{Name: strings.TrimPrefix(c.Name, "[It] "), Message: msg})
			case setup, unselected:
				continue
			case skipped:
				counts.Skipped++
				s.Counts.Skipped++
			default:
				counts.Passed++
				s.Counts.Passed++
			}
			s.SIGs[sig] = counts
		}
	}
	return s, nil
}

// add counts o's specs in s: a run made of passes.
func (s *Summary) add(o Summary) {
	if s.SIGs == nil {
		s.SIGs = map[string]Counts{}
	}
	s.Counts = s.Counts.plus(o.Counts)
	for sig, c := range o.SIGs {
		s.SIGs[sig] = s.SIGs[sig].plus(c)
	}
	s.Failures = append(s.Failures, o.Failures...)
}

func (c Counts) plus(o Counts) Counts {
	return Counts{Passed: c.Passed + o.Passed, Failed: c.Failed + o.Failed, Skipped: c.Skipped + o.Skipped}
}

func firstLine(s string) string {
	for _, line := range strings.Split(s, "\n") {
		if line = strings.TrimSpace(line); line != "" {
			return line
		}
	}
	return ""
}

// Write saves the summary as summary.json and summary.md in dir.
func (s Summary) Write(dir string) error {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "summary.json"), append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("write the summary: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "summary.md"), []byte(s.Markdown()), 0o644); err != nil {
		return fmt.Errorf("write the summary: %w", err)
	}
	return nil
}

// Markdown renders the summary for docs/conformance.md and a terminal.
func (s Summary) Markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "Driver %s, %d node(s), %s", s.Driver, s.Nodes, s.Date.UTC().Format("2006-01-02"))
	if s.Procs > 1 {
		fmt.Fprintf(&b, ", %d processes (Serial specs alone)", s.Procs)
	}
	if s.Commit != "" {
		fmt.Fprintf(&b, ", commit %s", s.Commit)
	}
	fmt.Fprintf(&b, ", %s.\nFocus `%s`", s.Duration.Round(time.Second), s.Focus)
	if s.Skip != "" {
		fmt.Fprintf(&b, ", skip `%s`", s.Skip)
	}
	fmt.Fprintf(&b, ".\n\n| SIG | passed | failed | skipped |\n|---|---|---|---|\n")
	sigs := make([]string, 0, len(s.SIGs))
	for sig := range s.SIGs {
		sigs = append(sigs, sig)
	}
	sort.Strings(sigs)
	for _, sig := range sigs {
		c := s.SIGs[sig]
		fmt.Fprintf(&b, "| %s | %d | %d | %d |\n", sig, c.Passed, c.Failed, c.Skipped)
	}
	fmt.Fprintf(&b, "| **all** | **%d** | **%d** | **%d** |\n", s.Counts.Passed, s.Counts.Failed, s.Counts.Skipped)
	if len(s.Failures) > 0 {
		b.WriteString("\nFailures:\n\n")
		for _, f := range s.Failures {
			fmt.Fprintf(&b, "- %s: %s\n", f.Name, f.Message)
		}
	}
	return b.String()
}
