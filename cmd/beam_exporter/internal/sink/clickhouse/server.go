// ClickHouse's HTTP interface: one statement per request, and what its failures mean.

package clickhouse

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
)

// failure is why a request to ClickHouse failed; its name is the reason
// label of beam_exporter_sink_insert_failures_total.
type failure int

const (
	unreachable   failure = iota // no answer: refused, unknown host, reset, a proxy's 502-504
	timedOut                     // no answer within --sink.clickhouse.timeout
	badAuth                      // ClickHouse refused the user, the password or the privilege
	badTable                     // the database or table is missing, or of the wrong shape
	notClickHouse                // something other than ClickHouse's HTTP interface answers at the URL
	rejected                     // ClickHouse refused the request for another reason
)

var failureNames = [...]string{"unreachable", "timeout", "auth", "table", "not_clickhouse", "rejected"}

func (f failure) String() string { return failureNames[f] }

// fatalAtStart reports whether a failure of the start-up check is one of
// configuration, which no waiting mends: the exporter then exits 2.
func (f failure) fatalAtStart() bool { return f == badAuth || f == badTable || f == notClickHouse }

// requestError is a failed request, classified.
type requestError struct {
	kind failure
	err  error
}

func (e *requestError) Error() string { return e.err.Error() }
func (e *requestError) Unwrap() error { return e.err }

// kindOf classifies err; an error not from a request is rejected.
func kindOf(err error) failure {
	var re *requestError
	if errors.As(err, &re) {
		return re.kind
	}
	return rejected
}

// ClickHouse's error codes that say the credentials or privileges are wrong
// (UNKNOWN_USER, WRONG_PASSWORD, REQUIRED_PASSWORD, ACCESS_DENIED,
// AUTHENTICATION_FAILED) or the table is (NO_SUCH_COLUMN_IN_TABLE,
// UNKNOWN_TABLE, UNKNOWN_DATABASE). Codes are stable across releases.
var (
	authCodes  = map[int]bool{192: true, 193: true, 194: true, 497: true, 516: true}
	tableCodes = map[int]bool{16: true, 60: true, 81: true}
)

// exceptionCode finds "Code: N" at the start of an answer, as every
// ClickHouse release writes its exceptions over HTTP.
var exceptionCode = regexp.MustCompile(`^Code: (\d+)`)

// server sends statements to ClickHouse's HTTP interface.
type server struct {
	base     *url.URL
	user     string
	password string
	client   *http.Client
}

// query runs one statement (SELECT, CREATE) and returns its answer.
func (s *server) query(ctx context.Context, statement string) (string, error) {
	return s.post(ctx, nil, []byte(statement))
}

// insert sends rows, in JSONEachRow, to INSERT statement.
func (s *server) insert(ctx context.Context, statement string, settings url.Values, rows []byte) error {
	params := url.Values{"query": {statement}}
	for k, v := range settings {
		params[k] = v
	}
	_, err := s.post(ctx, params, rows)
	return err
}

func (s *server) post(ctx context.Context, params url.Values, body []byte) (string, error) {
	u := *s.base
	q := u.Query()
	for k, v := range params {
		q[k] = v
	}
	u.RawQuery = q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), bytes.NewReader(body))
	if err != nil {
		return "", &requestError{rejected, err}
	}
	req.Header.Set("Content-Type", "text/plain; charset=utf-8")
	if s.user != "" {
		// Basic auth: every release from 18.16 on reads it, and it keeps
		// the password out of the URL and so out of any log of it.
		req.SetBasicAuth(s.user, s.password)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return "", transportError(err)
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return "", transportError(err)
	}
	text := strings.TrimSpace(string(answer))
	if resp.StatusCode == http.StatusOK {
		return text, nil
	}
	return "", answerError(resp.StatusCode, text)
}

// transportError classifies a request that got no answer. The URL is left
// out: it is in the flags, and the logs say which sink failed.
func transportError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	var ne net.Error
	if errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()) {
		return &requestError{timedOut, fmt.Errorf("ClickHouse did not answer in time: %w", err)}
	}
	return &requestError{unreachable, fmt.Errorf("cannot reach ClickHouse: %w", err)}
}

// mayHaveWritten reports whether a failed request may still have been
// carried out: it got no answer, and it was not refused before it was sent
// (a dial that failed sent nothing).
func mayHaveWritten(err error) bool {
	if k := kindOf(err); k != unreachable && k != timedOut {
		return false
	}
	var op *net.OpError
	return !errors.As(err, &op) || op.Op != "dial"
}

// answerError classifies an answer other than 200 OK.
func answerError(status int, text string) error {
	if len(text) > 500 {
		text = text[:500] + "..."
	}
	m := exceptionCode.FindStringSubmatch(text)
	if m == nil {
		switch status {
		case http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
			return &requestError{unreachable, fmt.Errorf("ClickHouse is unavailable behind a proxy (HTTP %d): %s", status, text)}
		}
		return &requestError{notClickHouse, fmt.Errorf("the URL does not answer as ClickHouse's HTTP interface does (HTTP %d): %q", status, text)}
	}
	code, _ := strconv.Atoi(m[1])
	err := fmt.Errorf("ClickHouse refused the request: %s", text)
	switch {
	case authCodes[code]:
		return &requestError{badAuth, err}
	case tableCodes[code]:
		return &requestError{badTable, err}
	}
	return &requestError{rejected, err}
}
