package tui

import "charm.land/lipgloss/v2"

// Styles is how the dashboard looks. Selection never depends on colour
// alone: the selected row also carries a "›" marker.
type Styles struct {
	Title     lipgloss.Style
	Tab       lipgloss.Style
	ActiveTab lipgloss.Style
	Header    lipgloss.Style // table header
	Selected  lipgloss.Style
	Section   lipgloss.Style // overview section titles
	OK        lipgloss.Style
	Warn      lipgloss.Style
	Bad       lipgloss.Style
	Dim       lipgloss.Style
	Banner    lipgloss.Style
	StatusBar lipgloss.Style
	Dialog    lipgloss.Style
	HelpKey   lipgloss.Style
	HelpDesc  lipgloss.Style
}

// ColorStyles is for colour terminals.
func ColorStyles() Styles {
	return Styles{
		Title:     lipgloss.NewStyle().Bold(true).Foreground(lipgloss.BrightCyan),
		Tab:       lipgloss.NewStyle().Foreground(lipgloss.White),
		ActiveTab: lipgloss.NewStyle().Bold(true).Reverse(true),
		Header:    lipgloss.NewStyle().Bold(true).Foreground(lipgloss.BrightBlue),
		Selected:  lipgloss.NewStyle().Reverse(true),
		Section:   lipgloss.NewStyle().Bold(true).Foreground(lipgloss.BrightWhite),
		OK:        lipgloss.NewStyle().Foreground(lipgloss.Green),
		Warn:      lipgloss.NewStyle().Foreground(lipgloss.Yellow),
		Bad:       lipgloss.NewStyle().Foreground(lipgloss.BrightRed).Bold(true),
		Dim:       lipgloss.NewStyle().Foreground(lipgloss.BrightBlack),
		Banner:    lipgloss.NewStyle().Foreground(lipgloss.Black).Background(lipgloss.Yellow),
		StatusBar: lipgloss.NewStyle().Foreground(lipgloss.White).Background(lipgloss.BrightBlack),
		Dialog:    lipgloss.NewStyle().Border(lipgloss.RoundedBorder()).BorderForeground(lipgloss.BrightCyan).Padding(0, 1),
		HelpKey:   lipgloss.NewStyle().Bold(true).Foreground(lipgloss.BrightCyan),
		HelpDesc:  lipgloss.NewStyle(),
	}
}

// MonoStyles honour NO_COLOR in the terminal UI: attributes (bold,
// reverse), no colours.
func MonoStyles() Styles {
	b := lipgloss.NewStyle().Bold(true)
	return Styles{
		Title:     b,
		ActiveTab: lipgloss.NewStyle().Reverse(true),
		Header:    b,
		Selected:  lipgloss.NewStyle().Reverse(true),
		Section:   b,
		Bad:       b,
		Banner:    lipgloss.NewStyle().Reverse(true),
		Dialog:    lipgloss.NewStyle().Border(lipgloss.NormalBorder()).Padding(0, 1),
		HelpKey:   b,
	}
}

// PlainStyles emit no escape sequence at all: `--once` output for CI logs
// and NO_COLOR, and the golden files.
func PlainStyles() Styles {
	return Styles{
		Dialog: lipgloss.NewStyle().Border(lipgloss.NormalBorder()).Padding(0, 1),
	}
}
