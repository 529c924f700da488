package clickhouse

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"syscall"
	"testing"
	"time"
)

// What each release answers over HTTP, and what the sink makes of it.
func TestAnswerErrors(t *testing.T) {
	for _, tc := range []struct {
		status int
		body   string
		want   failure
	}{
		{500, "Code: 193, e.displayText() = DB::Exception: Wrong password for user sink, e.what() = DB::Exception", badAuth},
		{516, "Code: 516. DB::Exception: sink: Authentication failed: password is incorrect, or there is no user with such name. (AUTHENTICATION_FAILED)", badAuth},
		{500, "Code: 497. DB::Exception: sink: Not enough privileges. (ACCESS_DENIED)", badAuth},
		{404, "Code: 60, e.displayText() = DB::Exception: Table default.nope doesn't exist., e.what() = DB::Exception", badTable},
		{404, "Code: 81, e.displayText() = DB::Exception: Database nosuch doesn't exist, e.what() = DB::Exception", badTable},
		{500, "Code: 27, e.displayText() = DB::Exception: Cannot parse input", rejected},
		{404, "<html><body>Not Found</body></html>", notClickHouse},
		{401, "", notClickHouse},
		{503, "upstream connect error", unreachable},
	} {
		if got := kindOf(answerError(tc.status, tc.body)); got != tc.want {
			t.Errorf("%d %q: %s, want %s", tc.status, tc.body, got, tc.want)
		}
	}
}

func TestTransportErrors(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + l.Addr().String() + "/"
	l.Close()
	// The handler does not read the request, so the server would not see the
	// client go: it waits for the test to end instead.
	release := make(chan struct{})
	stall := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-release }))
	defer stall.Close()
	defer close(release)
	for _, tc := range []struct {
		url  string
		want failure
	}{{closed, unreachable}, {stall.URL, timedOut}} {
		u, _ := url.Parse(tc.url)
		s := &server{base: u, client: &http.Client{Timeout: 100 * time.Millisecond}}
		_, err := s.query(context.Background(), "SELECT 1")
		if kindOf(err) != tc.want {
			t.Errorf("%s: %v (%s), want %s", tc.url, err, kindOf(err), tc.want)
		}
		if strings.Contains(err.Error(), "password") {
			t.Errorf("the error mentions a password: %v", err)
		}
	}
}

// The password goes as basic auth, never in the URL.
func TestCredentialsInHeader(t *testing.T) {
	var gotURL, user, password string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotURL = r.URL.String()
		user, password, _ = r.BasicAuth()
		w.Write([]byte("18.16.1\n"))
	}))
	defer srv.Close()
	u, _ := url.Parse(srv.URL)
	s := &server{base: u, user: "sink", password: "p4ss", client: srv.Client()}
	if v, err := s.query(context.Background(), "SELECT version()"); err != nil || v != "18.16.1" {
		t.Fatalf("%q %v", v, err)
	}
	if user != "sink" || password != "p4ss" || strings.Contains(gotURL, "p4ss") {
		t.Errorf("user %q, password %q, URL %q", user, password, gotURL)
	}
}

// Only a request that went out and got no answer may have been written.
func TestMayHaveWritten(t *testing.T) {
	for name, tc := range map[string]struct {
		err  error
		want bool
	}{
		"refused at dial":                     {transportError(&url.Error{Op: "Post", Err: &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}}), false},
		"dial timed out":                      {transportError(&url.Error{Op: "Post", Err: &net.OpError{Op: "dial", Net: "tcp", Err: context.DeadlineExceeded}}), false},
		"reset after the request went out":    {transportError(&url.Error{Op: "Post", Err: &net.OpError{Op: "read", Net: "tcp", Err: syscall.ECONNRESET}}), true},
		"connection closed before the answer": {transportError(&url.Error{Op: "Post", Err: io.EOF}), true},
		"no answer in time":                   {transportError(&url.Error{Op: "Post", Err: context.DeadlineExceeded}), true},
		"a proxy's 502":                       {answerError(502, "bad gateway"), true},
		"refused by ClickHouse":               {answerError(500, "Code: 27, e.displayText() = DB::Exception: Cannot parse input"), false},
		"wrong password":                      {answerError(516, "Code: 516. DB::Exception: sink: Authentication failed"), false},
	} {
		if got := mayHaveWritten(fmt.Errorf("inserting 3 rows: %w", tc.err)); got != tc.want {
			t.Errorf("%s: mayHaveWritten = %v, want %v", name, got, tc.want)
		}
	}
}
