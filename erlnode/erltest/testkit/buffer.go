// A buffer that a process or a logger writes while the test reads it.

package testkit

import (
	"bytes"
	"strings"
	"sync"
)

// LockedBuffer is a bytes.Buffer safe for one writer and concurrent readers:
// an exporter's log, or a child process's output.
type LockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *LockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String returns everything written so far.
func (b *LockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Lines returns the lines written so far that contain every one of words.
func (b *LockedBuffer) Lines(words ...string) []string {
	var out []string
	for _, line := range strings.Split(b.String(), "\n") {
		all := line != ""
		for _, w := range words {
			all = all && strings.Contains(line, w)
		}
		if all {
			out = append(out, line)
		}
	}
	return out
}
