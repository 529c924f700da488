package erlnode

import (
	"errors"
	"testing"
)

func TestParsePortReply(t *testing.T) {
	// PORT2_RESP for a node on port 41925: 'w', 0, port, type, proto, versions, name, extra.
	ok := []byte{'w', 0, 0xa3, 0xc5, 77, 0, 0, 6, 0, 6, 0, 3, 'a', 'p', 'p', 0, 0}
	if port, err := parsePortReply(ok); err != nil || port != 41925 {
		t.Fatalf("parsePortReply = %d, %v; want 41925", port, err)
	}
	if _, err := parsePortReply([]byte{'w', 1}); !errors.Is(err, ErrUnknownNode) {
		t.Errorf("unknown name: %v, want ErrUnknownNode", err)
	}
	for _, bad := range [][]byte{nil, {'x', 0}, {'w', 0, 1}} {
		if _, err := parsePortReply(bad); err == nil || errors.Is(err, ErrUnknownNode) {
			t.Errorf("parsePortReply(%v) = %v, want a malformed-answer error", bad, err)
		}
	}
}

func TestParseNamesReply(t *testing.T) {
	resp := append([]byte{0, 0, 0x11, 0x11}, "name app at port 41925\nname other_1 at port 39001\nnot a name line\n"...)
	names, err := parseNamesReply(resp)
	if err != nil || len(names) != 2 || names[0] != "app" || names[1] != "other_1" {
		t.Fatalf("parseNamesReply = %v, %v", names, err)
	}
	if names, err := parseNamesReply([]byte{0, 0, 0x11, 0x11}); err != nil || len(names) != 0 {
		t.Errorf("no nodes: %v, %v", names, err)
	}
	if _, err := parseNamesReply([]byte{0, 0}); err == nil {
		t.Error("a truncated answer parsed")
	}
}

// ergo resolves a node whenever something is sent to it without a
// connection; only the Client's own attempts may dial.
func TestResolveOnlyWhileDialing(t *testing.T) {
	var r resolver
	rt := &route{distPort: 4370}
	r.routes.Store("app@host1", rt)
	if _, err := r.Resolve("other@host1"); err == nil {
		t.Error("a node nobody monitors was resolved")
	}
	if _, err := r.Resolve("app@host1"); err == nil {
		t.Error("the target was resolved with no connection attempt under way")
	}
	rt.dialing.Store(true)
	got, err := r.Resolve("app@host1")
	if err != nil || got.Host != "host1" || got.Port != 4370 {
		t.Errorf("during an attempt: Resolve = %+v, %v; want host1:4370", got, err)
	}
}
