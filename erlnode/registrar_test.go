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
