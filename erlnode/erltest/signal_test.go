// Unit test of the /proc parsing behind Signal's wait for a stop.
package erltest

import "testing"

func TestThreadState(t *testing.T) {
	for _, tc := range []struct {
		stat  string
		state byte
		bad   bool
	}{
		{stat: "4242 (beam.smp) S 1 4242 4242 0 -1", state: 'S'},
		{stat: "4243 (1_scheduler) T 1 4242 4242 0 -1", state: 'T'},
		// The command name may hold spaces and parentheses.
		{stat: "4244 (a) b (c) R 1 4242", state: 'R'},
		{stat: "4245 (beam.smp", bad: true},
		{stat: "4246 (beam.smp)", bad: true},
		{stat: "", bad: true},
	} {
		state, err := threadState(tc.stat)
		if tc.bad {
			if err == nil {
				t.Errorf("threadState(%q) = %q, want an error", tc.stat, state)
			}
			continue
		}
		if err != nil || state != tc.state {
			t.Errorf("threadState(%q) = %q, %v; want %q", tc.stat, state, err, tc.state)
		}
	}
}
