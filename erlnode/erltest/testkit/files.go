// Files a test writes into its own directory.

package testkit

import (
	"os"
	"path/filepath"
	"testing"
)

// WriteFile writes text to dir/name, creating the directories on the way,
// and returns the path. The file gets exactly perm, whatever the umask:
// tests of cookie and config files depend on their permissions.
func WriteFile(t testing.TB, dir, name, text string, perm os.FileMode) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(text), perm); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, perm); err != nil {
		t.Fatal(err)
	}
	return path
}
