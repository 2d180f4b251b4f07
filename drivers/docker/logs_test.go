package docker

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestRelativeEntryKeepsCopiedFilesInsideTheExport(t *testing.T) {
	cases := []struct {
		entry string
		rel   string
		ok    bool
	}{
		{"log/minik-node.log", "minik-node.log", true},
		{"log/pods/default_web_uid/app/0.log", "pods/default_web_uid/app/0.log", true},
		{"log/", "", false},
		{"log", "", false},
		{"log/../../etc/passwd", "passwd", true}, // cleaned: it cannot climb out
		{"../../x", "", false},
	}
	for _, tc := range cases {
		rel, ok := relativeEntry(tc.entry)
		assert.Equal(t, tc.ok, ok, tc.entry)
		assert.Equal(t, tc.rel, rel, tc.entry)
	}
}
