package erlnode

import (
	"strings"
	"testing"
	"time"
)

func TestValidateNetTickTime(t *testing.T) {
	for _, tc := range []struct {
		tick time.Duration
		ok   bool
	}{
		{0, true}, // the default, 60 s
		{time.Second, true},
		{4 * time.Second, true},
		{60 * time.Second, true},
		{3 * time.Nanosecond, false}, // a quarter of it is no interval at all
		{999 * time.Millisecond, false},
		{1500 * time.Millisecond, false},
		{-5 * time.Second, false},
	} {
		err := ValidateNetTickTime(tc.tick)
		if (err == nil) != tc.ok {
			t.Errorf("ValidateNetTickTime(%s) = %v, want ok=%t", tc.tick, err, tc.ok)
		}
		if err != nil && !strings.Contains(err.Error(), tc.tick.String()) {
			t.Errorf("the error does not name the value %s: %v", tc.tick, err)
		}
	}
	// New refuses it before anything starts.
	if _, err := New(Config{Target: "app@host", Cookie: "secret", NetTickTime: 3 * time.Nanosecond}); err == nil || !strings.Contains(err.Error(), "whole number of seconds") {
		t.Errorf("New with a 3ns tick time: %v", err)
	}
}
