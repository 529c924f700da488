// Reading the distribution cookie without ever exposing it.

package erlnode

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// CookieEnv names the environment variable that may carry the cookie. There
// is no flag for the cookie itself: it would show in ps.
const CookieEnv = "BEAM_EXPORTER_ERLANG_COOKIE"

// maxCookieLen guards against pointing the flag at a large file by mistake.
const maxCookieLen = 4096

// DefaultCookieFile is $HOME/.erlang.cookie, where erl itself looks.
func DefaultCookieFile() string {
	home, err := os.UserHomeDir()
	if err != nil {
		return ".erlang.cookie"
	}
	return filepath.Join(home, ".erlang.cookie")
}

// Cookie is what LoadCookie found, and whether the file it came from can be
// read by others than its owner.
type Cookie struct {
	Value  string
	Source string // "environment" or the file's path, for log lines
	// Exposed is set when the file is readable by its group or by everyone.
	Exposed bool
}

// LoadCookie takes the cookie from the environment variable when it is set,
// else from path. Errors name the file and the problem, never the cookie.
func LoadCookie(path string) (Cookie, error) {
	if v, ok := os.LookupEnv(CookieEnv); ok {
		v = strings.TrimSpace(v)
		if v == "" {
			return Cookie{}, fmt.Errorf("%s is set but empty", CookieEnv)
		}
		if err := CheckCookie(v); err != nil {
			return Cookie{}, fmt.Errorf("%s: %w", CookieEnv, err)
		}
		return Cookie{Value: v, Source: "environment"}, nil
	}
	return ReadCookieFile(path)
}

// ReadCookieFile reads and checks a cookie file, whatever the environment says.
func ReadCookieFile(path string) (Cookie, error) {
	f, err := os.Open(path)
	if err != nil {
		return Cookie{}, fmt.Errorf("reading the cookie file: %w", err)
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return Cookie{}, fmt.Errorf("reading the cookie file: %w", err)
	}
	if !info.Mode().IsRegular() {
		return Cookie{}, fmt.Errorf("cookie file %s is not a regular file", path)
	}
	if info.Size() > maxCookieLen {
		return Cookie{}, fmt.Errorf("cookie file %s is %d bytes, more than a cookie can be (%d)", path, info.Size(), maxCookieLen)
	}
	buf := make([]byte, maxCookieLen+1)
	n, err := f.Read(buf)
	if err != nil && n == 0 {
		return Cookie{}, fmt.Errorf("cookie file %s is empty", path)
	}
	v := strings.TrimSpace(string(buf[:n]))
	if v == "" {
		return Cookie{}, fmt.Errorf("cookie file %s is empty", path)
	}
	if err := CheckCookie(v); err != nil {
		return Cookie{}, fmt.Errorf("cookie file %s: %w", path, err)
	}
	return Cookie{Value: v, Source: path, Exposed: info.Mode().Perm()&0o077 != 0}, nil
}

// CheckCookie rejects what erl would not accept as a cookie: it becomes an
// atom, so it is at most 255 characters on one line.
func CheckCookie(v string) error {
	switch {
	case len(v) > 255:
		return errors.New("the cookie is longer than 255 bytes")
	case strings.ContainsAny(v, "\r\n"):
		return errors.New("the cookie spans more than one line")
	}
	return nil
}
