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

func TestProbeContract(t *testing.T) {
	inContract := []string{
		"top_processes(1, 0, 0, 1)",
		"top_processes(1000, 0, 0, 1)",
		"top_processes(10, 20, 0, 1)",
		"top_processes(10, 0, 63, 64)",
		"ets_tables(1)",
		"ets_tables(1000)",
		"lock_counters(1)",
		"lock_counters(1000)",
		"session(self(), #{})",
		"session(self(), #{msacc => false})",
		"session(self(), #{msacc => true})",
	}
	// Each function's bounded argument, out of bounds and of the wrong type.
	badCounts := []string{"0", "-1", "1001", "1 bsl 64", "-(1 bsl 64)", "10.0", "ten", `"10"`, "<<10>>", "[10]", "{10}", "#{n => 10}", "self()"}
	var outOfContract []string
	for _, n := range badCounts {
		outOfContract = append(outOfContract,
			"top_processes("+n+", 0, 0, 1)", "ets_tables("+n+")", "lock_counters("+n+")")
	}
	for _, w := range []string{"-1", "60001", "1 bsl 64", "1.5", "infinity", `"10"`, "[]"} {
		outOfContract = append(outOfContract, "top_processes(10, "+w+", 0, 1)")
	}
	// The memory slice: Slice within 0..Slices-1, Slices within 1..64.
	for _, sl := range []string{"-1, 1", "1, 1", "0, 0", "64, 64", "0, 65", "0, -1", "a, 2", "0, 2.0"} {
		outOfContract = append(outOfContract, "top_processes(10, 0, "+sl+")")
	}
	outOfContract = append(outOfContract,
		"session(not_a_pid, #{})",
		"session(<<\"pid\">>, #{})",
		"session(self(), [])",
		"session(self(), [{msacc, true}])",
		"session(self(), #{msacc => 'maybe'})", // quoted: a keyword since OTP 27
		"session(self(), #{msacc => 1})",
		"session(self(), #{msacc => true, extra => 1})",
		"session(self(), #{other => true})",
		"session(self(), #{\"msacc\" => true})",
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
				return node.Eval(t, fmt.Sprintf(`R = %s:%s,
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
			// Idle processes do no work: the probe's own read of their
			// memory (a signal that costs each one reduction) must not rank
			// them by reductions. N is above the node's process count, so
			// that every process that did any work is ranked. The first
			// call settles the node.
			idle := node.Eval(t, fmt.Sprintf(`Ps = [spawn(fun() -> receive stop -> ok end end) || _ <- lists:seq(1, 100)],
				timer:sleep(100),
				{ok, _} = %[1]s:top_processes(1000, 20, 0, 1),
				{ok, #{reductions := R}} = %[1]s:top_processes(1000, 20, 0, 1),
				Idle = [list_to_binary(pid_to_list(P)) || P <- Ps],
				[P ! stop || P <- Ps],
				[Pid || {Pid, _} <- R, lists:member(Pid, Idle)]`, ProbeModule))
			if idle != "[]" {
				t.Errorf("idle processes ranked by reductions: %s", idle)
			}
			// Sanity: the harness tells the two apart, and a missing
			// function is not mistaken for a refusal.
			if got, err := node.TryEval(ProbeModule+":ets_tables(1, 2).", erltest.EvalTimeout); err == nil ||
				!strings.Contains(err.Error(), "undef") {
				t.Errorf("ets_tables/2 = %s, %v; want an undef exception", got, err)
			}
		})
	}
}
