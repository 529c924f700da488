package collector

import (
	"strings"
	"testing"
	"time"

	"github.com/alecthomas/kingpin/v2"
)

// parseFlags parses args as the command line, forgetting what an earlier
// parse named.
func parseFlags(t *testing.T, args ...string) {
	t.Helper()
	for _, r := range registry {
		r.named = false
	}
	if _, err := kingpin.CommandLine.Parse(args); err != nil {
		t.Fatal(err)
	}
}

func TestEnabledByFlags(t *testing.T) {
	t.Cleanup(func() { parseFlags(t) })
	const defaults = "allocators dist ets gc locks memory node os_memory persistent_terms ports processes reductions run_queue runtime scheduler system_limits"
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, defaults},
		{[]string{"--collector.msacc", "--no-collector.ets"}, "allocators dist gc locks memory msacc node os_memory persistent_terms ports processes reductions run_queue runtime scheduler system_limits"},
		{[]string{"--collector.disable-defaults"}, ""},
		{[]string{"--collector.disable-defaults", "--collector.memory", "--collector.msacc"}, "memory msacc"},
		// Named, and off: disabling the defaults switches nothing on.
		{[]string{"--collector.disable-defaults", "--no-collector.memory", "--collector.gc"}, "gc"},
	} {
		parseFlags(t, tc.args...)
		got := strings.Join(Enabled(), " ")
		if got != tc.want {
			t.Errorf("%q enables %q, want %q", tc.args, got, tc.want)
		}
	}
}

// Every collector's flags are checked, whether the collector is on or not.
func TestValidateFlags(t *testing.T) {
	t.Cleanup(func() { parseFlags(t) })
	for _, args := range [][]string{
		{"--collector.processes.top-n=0"},
		{"--collector.processes.window=11s"},
		{"--no-collector.ets", "--collector.ets.top-n=1001"},
		{"--collector.disable-defaults", "--collector.locks.top-n=0"},
	} {
		parseFlags(t, args...)
		flag, _, _ := strings.Cut(args[len(args)-1], "=")
		if err := ValidateFlags(); err == nil || !strings.Contains(err.Error(), flag) {
			t.Errorf("%q: ValidateFlags() = %v, want an error naming %s", args, err, flag)
		}
	}
	parseFlags(t)
	if err := ValidateFlags(); err != nil {
		t.Errorf("the defaults: %v", err)
	}
}

// Only the msacc collector needs microstate accounting kept on.
func TestSession(t *testing.T) {
	if Session(Enabled()).MicrostateAccounting || Session(nil).MicrostateAccounting {
		t.Error("the default collectors keep microstate accounting on")
	}
	if !Session([]string{"memory", "msacc"}).MicrostateAccounting {
		t.Error("the msacc collector does not keep microstate accounting on")
	}
	// Only the sysmon collector asks for the system monitor, with the
	// thresholds of its flags.
	if Session(Enabled()).SystemMonitor != nil {
		t.Error("the default collectors install a system monitor")
	}
	sm := Session([]string{"memory", "sysmon"}).SystemMonitor
	if sm == nil || sm.LongGC != 100*time.Millisecond || sm.LongSchedule != 100*time.Millisecond ||
		sm.LargeHeapBytes != 100<<20 || sm.LongMessageQueue != 10000 || sm.Names != 20 {
		t.Errorf("the sysmon collector asks for %+v, not the flags' defaults", sm)
	}
}
