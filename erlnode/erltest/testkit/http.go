// HTTP requests from tests, and addresses to serve them on.

package testkit

import (
	"io"
	"net"
	"net/http"
	"testing"
)

// Get GETs u with the given header name, value pairs and returns the status
// and body; 0 when the request failed. It reports failures with t.Error,
// not t.Fatal, so that other goroutines may call it.
func Get(t testing.TB, u string, header ...string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		t.Error(err)
		return 0, ""
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Error(err)
		return 0, ""
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// FreeAddr returns a loopback address whose port is free right now, for a
// server the test starts in another process.
func FreeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}
