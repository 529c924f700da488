// Polling until something the test waits for has happened.

package testkit

import (
	"testing"
	"time"
)

// WaitFor polls cond every 10 ms until it holds, and fails the test when
// limit passes first. It returns how long the wait took.
func WaitFor(t testing.TB, what string, limit time.Duration, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > limit {
			t.Fatalf("timed out after %s waiting for %s", limit, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return time.Since(start)
}
