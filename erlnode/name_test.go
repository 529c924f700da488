package erlnode

import (
	"strings"
	"testing"
)

func TestSplitNodeName(t *testing.T) {
	for _, tc := range []struct {
		in          string
		alive, host string
		wantErr     string
	}{
		{"app@host", "app", "host", ""},
		{"app-1.x_y@host.example.com", "app-1.x_y", "host.example.com", ""},
		{"app", "", "", "no @host"},
		{"@host", "", "", "non-empty"},
		{"app@", "", "", "non-empty"},
		{"a@b@c", "", "", "more than one @"},
		{"a b@c", "", "", "not allowed in the name part"},
		{"app@10.0.0.1", "app", "10.0.0.1", ""},
		{"app@::1", "app", "::1", ""},
		{"a@my host", "", "", "not allowed in the host part"},
		{"a@host/x", "", "", "not allowed in the host part"},
		{strings.Repeat("a", 256) + "@h", "", "", "longer than 255"},
	} {
		alive, host, err := SplitNodeName(tc.in)
		if tc.wantErr == "" {
			if err != nil || alive != tc.alive || host != tc.host {
				t.Errorf("SplitNodeName(%q) = %q, %q, %v", tc.in, alive, host, err)
			}
		} else if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
			t.Errorf("SplitNodeName(%q): error %v, want one mentioning %q", tc.in, err, tc.wantErr)
		}
	}
}

func TestDefaultLocalNameFollowsTheTargetsStyle(t *testing.T) {
	if short := defaultLocalName("app@host"); strings.Contains(strings.SplitN(short, "@", 2)[1], ".") {
		t.Errorf("short target got long local name %q", short)
	}
	if long := defaultLocalName("app@host.example.com"); !strings.Contains(strings.SplitN(long, "@", 2)[1], ".") {
		t.Errorf("long target got short local name %q", long)
	}
}
