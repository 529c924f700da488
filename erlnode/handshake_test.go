package erlnode

import (
	"errors"
	"io"
	"net"
	"strings"
	"testing"

	"github.com/beam-exporter/beam_exporter/erlnode/erltest"
)

// TestHandshakeChecksBeforeDigest: a peer that challenges under another
// name, or without the capabilities the exporter needs, gets nothing after
// its challenge, and the failure is counted and logged once under a reason
// of its own.
func TestHandshakeChecksBeforeDigest(t *testing.T) {
	for _, tc := range []struct {
		name    string
		answer  func(target string) string // the name in the challenge
		flags   uint64
		err     error
		reason  string
		logged  []string // words of the one log line, besides the target
		message string   // in the error
	}{
		{
			name:    "another node's name",
			answer:  func(string) string { return "impostor@localhost" },
			flags:   advertisedFlags,
			err:     ErrWrongNode,
			reason:  ReasonWrongNode,
			logged:  []string{"reason=wrong_node", "impostor@localhost"},
			message: `answered as "impostor@localhost"`,
		},
		{
			name: "the same name on another host",
			answer: func(target string) string {
				alive, _, _ := strings.Cut(target, "@")
				return alive + "@localhost.example.com"
			},
			flags:   advertisedFlags,
			err:     ErrWrongNode,
			reason:  ReasonWrongNode,
			logged:  []string{"reason=wrong_node", "@localhost.example.com"},
			message: "@localhost.example.com",
		},
		{
			name:    "a name that is not one",
			answer:  func(string) string { return strings.Repeat("\x00", 4000) },
			flags:   advertisedFlags,
			err:     ErrWrongNode,
			reason:  ReasonWrongNode,
			logged:  []string{"reason=wrong_node", `\\x00\\x00`},
			message: `\x00\x00`,
		},
		{
			name:    "missing capabilities",
			answer:  func(target string) string { return target },
			flags:   advertisedFlags &^ (flagBigCreation | flagHandshake23),
			err:     ErrCapabilities,
			reason:  ReasonProtocol,
			logged:  []string{"reason=protocol", "BIG_CREATION, HANDSHAKE_23"},
			message: "did not offer BIG_CREATION, HANDSHAKE_23",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			target := erltest.UniqueName("wanted") + "@localhost"
			peer := newFakePeer(t)
			type seen struct {
				after []byte
				err   error
			}
			done := make(chan seen, 1)
			go func() {
				conn, err := peer.accept()
				if err == nil {
					_, err = challenge(conn, tc.answer(target), tc.flags, 42)
				}
				if err != nil {
					done <- seen{err: err}
					return
				}
				after, err := io.ReadAll(conn) // until the exporter closes
				done <- seen{after, err}
			}()

			var logs logBuffer
			client, err := New(Config{Target: target, Cookie: "cookie", DistPort: peer.port, Logger: logs.logger()})
			if err != nil {
				t.Fatal(err)
			}
			defer client.Close()
			err = client.EnsureConnected(connectCtx(t))
			if !errors.Is(err, tc.err) || !strings.Contains(err.Error(), tc.message) {
				t.Errorf("error %v; want %v mentioning %q", err, tc.err, tc.message)
			}
			s := waitResult(t, done)
			if s.err != nil {
				t.Fatalf("fake peer: %v", s.err)
			}
			if len(s.after) != 0 {
				t.Errorf("the exporter answered the challenge with %d bytes (%x)", len(s.after), s.after)
			}
			counts := client.ConnectionErrors()
			for _, r := range reasons {
				want := uint64(0)
				if r == tc.reason {
					want = 1
				}
				if counts[r] != want {
					t.Errorf("connection errors %v, want 1 for %s only", counts, tc.reason)
					break
				}
			}
			if lines := logs.Lines(append([]string{target}, tc.logged...)...); len(lines) != 1 {
				t.Errorf("%d log lines with %q, want 1; log:\n%s", len(lines), tc.logged, logs.String())
			}
		})
	}
}

// TestHandshakeChecksNameBeforeFlags: a wrong name is the stronger finding,
// so a peer wrong in both ways counts as wrong_node.
func TestHandshakeChecksNameBeforeFlags(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	go challenge(b, "impostor@localhost", 0, 1)
	h := &hiddenHandshake{name: "beam_exporter@localhost", peer: "wanted@localhost"}
	_, _, err := h.exchange(handshakeFraming{rw: a, header: 2}, a.RemoteAddr(), "cookie")
	if !errors.Is(err, ErrWrongNode) {
		t.Errorf("error %v, want %v", err, ErrWrongNode)
	}
}

func TestQuoteName(t *testing.T) {
	for in, want := range map[string]string{
		"app@host":               `"app@host"`,
		"app@host\n":             `"app@host\n"`,
		strings.Repeat("a", 301): `"` + strings.Repeat("a", 300) + `"...`,
		"\xff@host":              `"\xff@host"`,
		"app@höst.example.com":   `"app@höst.example.com"`,
	} {
		if got := quoteName(in); got != want {
			t.Errorf("quoteName(%q) = %s, want %s", in, got, want)
		}
	}
}
