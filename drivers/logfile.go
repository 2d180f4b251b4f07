package drivers

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"
)

// followInterval is how often a followed log file is checked for more.
const followInterval = 200 * time.Millisecond

// StreamLogFile copies a log file to w as NodeLogStreamer does: its last
// o.Tail lines (all with Tail <= 0) and, with o.Follow, what is appended
// until ctx is done. A file truncated meanwhile is read again from its start.
func StreamLogFile(ctx context.Context, path string, o NodeLogOptions, w io.Writer) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("open node log: %w", err)
	}
	defer f.Close()
	offset := int64(0)
	if o.Tail > 0 {
		if offset, err = tailOffset(f, o.Tail); err != nil {
			return fmt.Errorf("read node log %s: %w", path, err)
		}
	}
	for {
		offset, err = copyFrom(f, offset, w)
		if err != nil {
			return fmt.Errorf("read node log %s: %w", path, err)
		}
		if !o.Follow {
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(followInterval):
		}
		if fi, err := f.Stat(); err == nil && fi.Size() < offset {
			offset = 0
		}
	}
}

// copyFrom copies f from offset to its current end and returns the new offset.
func copyFrom(f *os.File, offset int64, w io.Writer) (int64, error) {
	n, err := io.Copy(w, io.NewSectionReader(f, offset, 1<<62))
	return offset + n, err
}

// tailOffset is where the last lines of f begin: it reads backwards in
// blocks, so a large log costs only its end.
func tailOffset(f *os.File, lines int) (int64, error) {
	fi, err := f.Stat()
	if err != nil {
		return 0, err
	}
	const block = 32 << 10
	end := fi.Size()
	pos := end
	seen := 0
	buf := make([]byte, block)
	for pos > 0 {
		n := int64(block)
		if pos < n {
			n = pos
		}
		pos -= n
		if _, err := f.ReadAt(buf[:n], pos); err != nil && !errors.Is(err, io.EOF) {
			return 0, err
		}
		chunk := buf[:n]
		for i := len(chunk) - 1; i >= 0; i-- {
			if chunk[i] != '\n' {
				continue
			}
			// A newline that ends the file ends the last line; it does not
			// start another.
			if pos+int64(i) == end-1 {
				continue
			}
			seen++
			if seen == lines {
				return pos + int64(i) + 1, nil
			}
		}
	}
	return 0, nil
}
