// The probe's contract, checked on real nodes: in-contract calls answer
// {ok, _}, everything else {error, badarg}, never an exception.

package erlnode

import (
	"encoding/base64"
	"fmt"
	"strings"
	"testing"

	"github.com/beam-exporter/beam_exporter/erlnode/erltest"
)

// sysmonOpts is the session's system monitor option as the exporter sends it.
const sysmonOpts = "#{long_gc => 100, long_schedule => 100, large_heap => 104857600, long_message_queue => 10000, names => 20}"

func TestProbeContract(t *testing.T) {
	// D is a deadline 20 s away, in the node's clock, as the exporter
	// passes it.
	inContract := []string{
		"top_processes(1, 0, 0, 1, 0, D)",
		"top_processes(1000, 0, 0, 1, 0, D)",
		"top_processes(10, 20, 0, 1, 0, D)",
		"top_processes(10, 0, 63, 64, 0, D)",
		"top_processes(10, 20, 0, 1, 1, D)",
		"top_processes(10, 20, 0, 1, 1000, D)",
		"top_processes(10, 0, 63, 64, 1000, D)",
		"ets_tables(1, D)",
		"ets_tables(1000, D)",
		"lock_counters(1, D)",
		"lock_counters(1000, D)",
		"port_counts(1, D)",
		"port_counts(1000, D)",
		"dist_events(self(), D)",
		"session(self(), #{}, D)",
		"session(self(), #{msacc => false}, D)",
		"session(self(), #{msacc => true}, D)",
		"session(self(), #{sysmon => " + sysmonOpts + "}, D)",
		"session(self(), #{msacc => false, sysmon => " + sysmonOpts + "}, D)",
		"session(self(), #{sysmon => " + strings.ReplaceAll(sysmonOpts, "names => 20", "names => 1000") + "}, D)",
		"system_monitor_events(D)",
	}
	// A deadline already passed answers {error, deadline}, whatever the call.
	pastDeadline := []string{
		"top_processes(10, 20, 0, 1, 20, D - 30000)",
		"ets_tables(10, D - 30000)",
		"lock_counters(10, D - 30000)",
		"port_counts(10, D - 30000)",
		"dist_events(self(), D - 30000)",
		"session(self(), #{}, D - 30000)",
		"system_monitor_events(D - 30000)",
	}
	// Each function's bounded argument, out of bounds and of the wrong type.
	badCounts := []string{"0", "-1", "1001", "1 bsl 64", "-(1 bsl 64)", "10.0", "ten", `"10"`, "<<10>>", "[10]", "{10}", "#{n => 10}", "self()"}
	var outOfContract []string
	for _, n := range badCounts {
		outOfContract = append(outOfContract,
			"top_processes("+n+", 0, 0, 1, 0, D)", "ets_tables("+n+", D)", "lock_counters("+n+", D)", "port_counts("+n+", D)")
	}
	for _, g := range []string{"-1", "1001", "1 bsl 64", "1.0", "all", `"20"`, "[20]"} {
		outOfContract = append(outOfContract, "top_processes(10, 0, 0, 1, "+g+", D)")
	}
	for _, w := range []string{"-1", "60001", "1 bsl 64", "1.5", "infinity", `"10"`, "[]"} {
		outOfContract = append(outOfContract, "top_processes(10, "+w+", 0, 1, 0, D)")
	}
	// The memory slice: Slice within 0..Slices-1, Slices within 1..64.
	for _, sl := range []string{"-1, 1", "1, 1", "0, 0", "64, 64", "0, 65", "0, -1", "a, 2", "0, 2.0"} {
		outOfContract = append(outOfContract, "top_processes(10, 0, "+sl+", 0, D)")
	}
	// The deadline is an integer of the node's clock.
	for _, d := range []string{"infinity", "1.0e12", `"D"`, "{D}"} {
		outOfContract = append(outOfContract, "top_processes(10, 0, 0, 1, 0, "+d+")", "ets_tables(10, "+d+")",
			"lock_counters(10, "+d+")", "port_counts(10, "+d+")", "dist_events(self(), "+d+")", "session(self(), #{}, "+d+")",
			"system_monitor_events("+d+")")
	}
	// The system monitor's thresholds: each one missing, zero, too large or
	// not an integer; an unknown one; and not a map.
	for _, key := range []string{"long_gc", "long_schedule", "large_heap", "long_message_queue", "names"} {
		for _, bad := range []string{"0", "-1", "1 bsl 64", "1.5", "infinity"} {
			outOfContract = append(outOfContract, "session(self(), #{sysmon => maps:put("+key+", "+bad+", "+sysmonOpts+")}, D)")
		}
		outOfContract = append(outOfContract, "session(self(), #{sysmon => maps:remove("+key+", "+sysmonOpts+")}, D)")
	}
	outOfContract = append(outOfContract,
		"session(self(), #{sysmon => maps:put(names, 1001, "+sysmonOpts+")}, D)",
		"session(self(), #{sysmon => maps:put(long_gc, 1 bsl 31, "+sysmonOpts+")}, D)",
		"session(self(), #{sysmon => maps:put(extra, 1, "+sysmonOpts+")}, D)",
		"session(self(), #{sysmon => true}, D)",
		"session(self(), #{sysmon => maps:to_list("+sysmonOpts+")}, D)",
	)
	outOfContract = append(outOfContract,
		"dist_events(not_a_pid, D)",
		"dist_events(<<\"pid\">>, D)",
		"dist_events(node(), D)",
		"session(not_a_pid, #{}, D)",
		"session(<<\"pid\">>, #{}, D)",
		"session(self(), [], D)",
		"session(self(), [{msacc, true}], D)",
		"session(self(), #{msacc => 'maybe'}, D)", // quoted: a keyword since OTP 27
		"session(self(), #{msacc => 1}, D)",
		"session(self(), #{msacc => true, extra => 1}, D)",
		"session(self(), #{other => true}, D)",
		"session(self(), #{\"msacc\" => true}, D)",
	)

	load := fmt.Sprintf(`code:load_binary(%s, "%s.beam", base64:decode("%s"))`,
		ProbeModule, ProbeModule, base64.StdEncoding.EncodeToString(probeBeam))
	for _, otp := range erltest.Releases() {
		t.Run("OTP"+otp, func(t *testing.T) {
			t.Parallel()
			node := erltest.Start(t, erltest.Options{OTP: otp, Name: erltest.UniqueName("contract")})
			if got := node.Eval(t, load); got != "{module,"+ProbeModule+"}" {
				t.Fatalf("loading the probe: %s", got)
			}
			// call runs one probe call and stops any session it started, so
			// that the node is left as it was.
			call := func(c string) string {
				return node.Eval(t, fmt.Sprintf(`D = erlang:monotonic_time(millisecond) + 20000,
					R = %s:%s,
					case R of {ok, S} when is_pid(S) -> S ! stop; _ -> ok end,
					case R of {ok, _} -> ok; _ -> R end`, ProbeModule, c))
			}
			for _, c := range inContract {
				if got := call(c); got != "ok" {
					t.Errorf("%s = %s, want {ok, _}", c, got)
				}
			}
			for _, c := range outOfContract {
				if got := call(c); got != "{error,badarg}" {
					t.Errorf("%s = %s, want {error,badarg}", c, got)
				}
			}
			for _, c := range pastDeadline {
				if got := call(c); got != "{error,deadline}" {
					t.Errorf("%s = %s, want {error,deadline}", c, got)
				}
			}
			// Idle processes do no work: the probe's own read of their
			// memory (a signal that costs each one reduction) must not rank
			// them by reductions. N is above the node's process count, so
			// that every process that did any work is ranked. The first
			// call settles the node.
			idle := node.Eval(t, fmt.Sprintf(`Ps = [spawn(fun() -> receive stop -> ok end end) || _ <- lists:seq(1, 100)],
				timer:sleep(100),
				D = erlang:monotonic_time(millisecond) + 20000,
				{ok, _} = %[1]s:top_processes(1000, 20, 0, 1, 0, D),
				{ok, #{reductions := R}} = %[1]s:top_processes(1000, 20, 0, 1, 0, D),
				Idle = [list_to_binary(pid_to_list(P)) || P <- Ps],
				[P ! stop || P <- Ps],
				[Pid || {Pid, _, _} <- R, lists:member(Pid, Idle)]`, ProbeModule))
			if idle != "[]" {
				t.Errorf("idle processes ranked by reductions: %s", idle)
			}
			// One scan at a time: two callers at once, each scan holding
			// its processes for a 300 ms window, take twice that.
			serial := node.Eval(t, fmt.Sprintf(`D = erlang:monotonic_time(millisecond) + 20000, Self = self(),
				T0 = erlang:monotonic_time(millisecond),
				[spawn(fun() -> Self ! {scanned, %[1]s:top_processes(10, 300, 0, 1, 0, D)} end) || _ <- [1, 2]],
				[receive {scanned, {ok, _}} -> ok end || _ <- [1, 2]],
				erlang:monotonic_time(millisecond) - T0 >= 600`, ProbeModule))
			if serial != "true" {
				t.Error("two top_processes scans ran at once")
			}
			// A scan still running at its deadline answers then: this one
			// would wait a minute between its passes.
			if got := node.Eval(t, fmt.Sprintf(`T0 = erlang:monotonic_time(millisecond),
				R = %s:top_processes(10, 60000, 0, 1, 0, T0 + 200),
				{R, erlang:monotonic_time(millisecond) - T0 < 2000}`, ProbeModule)); got != "{{error,deadline},true}" {
				t.Errorf("a scan past its deadline: %s, want {{error,deadline},true}", got)
			}
			// A session that dies before it is ready is an error, not a pid:
			// here a stand-in keeper kills the session that joins it.
			if got := node.Eval(t, fmt.Sprintf(`Free = fun F() -> case whereis(%[1]s_msacc) of
					undefined -> ok; _ -> timer:sleep(10), F() end end,
				Free(),
				register(%[1]s_msacc, spawn(fun() -> receive {join, P, _, _} -> exit(P, kill) end end)),
				%[1]s:session(self(), #{msacc => true}, erlang:monotonic_time(millisecond) + 5000)`, ProbeModule)); got != "{error,session_died}" {
				t.Errorf("a session killed before it was ready: %s, want {error,session_died}", got)
			}
			// Two sessions asking for the system monitor: the first holds it
			// with its thresholds, the second reads the same monitor and
			// takes over when the first goes; when both have gone, nothing
			// is left.
			if got := node.Eval(t, fmt.Sprintf(`D = erlang:monotonic_time(millisecond) + 10000,
				SM = %[2]s,
				Wait = fun W(F) -> case F() of true -> true; false -> timer:sleep(10), W(F) end end,
				Wait(fun() -> erlang:system_monitor() =:= undefined end),
				[O1, O2] = [spawn(fun() -> receive stop -> ok end end) || _ <- [1, 2]],
				{ok, _} = %[1]s:session(O1, #{sysmon => SM}, D),
				{ok, _} = %[1]s:session(O2, #{sysmon => SM#{long_gc => 7}}, D),
				{M1, Gc1} = erlang:system_monitor(),
				{ok, #{owner := Own1}} = %[1]s:system_monitor_events(D),
				exit(O1, kill),
				Wait(fun() -> case erlang:system_monitor() of {M, _} -> M =/= M1; _ -> false end end),
				{_, Gc2} = erlang:system_monitor(),
				{ok, #{owner := Own2}} = %[1]s:system_monitor_events(D),
				exit(O2, kill),
				Wait(fun() -> {erlang:system_monitor(), whereis(%[1]s_sysmon)} =:= {undefined, undefined} end),
				{Own1, lists:keyfind(long_gc, 1, Gc1), Own2, lists:keyfind(long_gc, 1, Gc2)}`, ProbeModule, sysmonOpts)); got != "{beam_exporter,{long_gc,100},beam_exporter,{long_gc,7}}" {
				t.Errorf("two sessions sharing the system monitor: %s", got)
			}
			// Sanity: the harness tells the two apart, and a missing
			// function is not mistaken for a refusal.
			if got, err := node.TryEval(ProbeModule+":ets_tables(1, 2, 3).", erltest.EvalTimeout); err == nil ||
				!strings.Contains(err.Error(), "undef") {
				t.Errorf("ets_tables/3 = %s, %v; want an undef exception", got, err)
			}
		})
	}
}
