// Tests of the allocators collector against real nodes: a fragmented binary allocator.

package collector

import (
	"math"
	"testing"
)

// binaryMBCUtilization is what the node itself computes from one
// allocator_sizes reading: multiblock blocks over multiblock carriers of
// binary_alloc, the carrier pool included, summed over instances.
const binaryMBCUtilization = `
S = erlang:system_info({allocator_sizes, binary_alloc}),
{C, B} = lists:foldl(fun({instance, _, Ps}, Acc) ->
    lists:foldl(fun({K, L}, {C0, B0}) when K =:= mbcs; K =:= mbcs_pool ->
                        {blocks, BL} = lists:keyfind(blocks, 1, L),
                        {C0 + element(2, lists:keyfind(carriers_size, 1, L)),
                         B0 + lists:sum([element(2, lists:keyfind(size, 1, St)) || {_, St} <- BL])};
                   (_, A) -> A
                end, Acc, Ps)
  end, {0, 0}, S),
B / C.`

// fill allocates 30,000 binaries of 1,000 bytes in one process, which
// keeps every tenth and hands the others to a holder, so that the binary
// allocator's multiblock carriers are packed with live blocks; the process
// waits, registered, for the word to fragment them.
const fill = `
Self = self(),
Holder = spawn(fun() -> receive stop -> ok end end),
Filler = spawn(fun() ->
    Keep = lists:foldl(fun(I, Acc) ->
                           B = binary:copy(<<7>>, 1000),
                           case I rem 10 of 0 -> [B | Acc]; _ -> Holder ! B, Acc end
                       end, [], lists:seq(1, 30000)),
    Self ! filled,
    receive {fragment, From} -> ok end,
    Ref = monitor(process, Holder),
    exit(Holder, kill),
    receive {'DOWN', Ref, _, _, _} -> ok end,
    erlang:garbage_collect(),
    From ! fragmented,
    receive stop -> Keep end
  end),
register(beam_exporter_test_filler, Filler),
receive filled -> ok end.`

// fragment has the holder die: nine binaries in ten are freed, and the
// carriers stay, about a tenth full.
const fragment = `
beam_exporter_test_filler ! {fragment, self()},
receive fragmented -> ok end.`

func TestLiveAllocators(t *testing.T) {
	forEachRelease(t, func(t *testing.T, otp string) {
		node := startNode(t, otp)
		l := connect(t, node, liveOptions{collectors: []string{"allocators"}})
		utilization := func() float64 {
			fams := l.scrape(t)
			if v := value(t, fams, "beam_scrape_collector_success", "collector", "allocators"); v != 1 {
				t.Fatalf("allocators collector success = %v", v)
			}
			if n := len(fams["beam_allocator_carriers_bytes"].GetMetric()) + len(fams["beam_allocator_blocks_bytes"].GetMetric()); n > 60 || n < 4 {
				t.Errorf("%d allocator series, want 4 to 60", n)
			}
			return value(t, fams, "beam_allocator_blocks_bytes", "allocator", "binary_alloc", "carrier", "mbcs") /
				value(t, fams, "beam_allocator_carriers_bytes", "allocator", "binary_alloc", "carrier", "mbcs")
		}
		// Measured on carriers the test has packed, not on a fresh node's,
		// whose utilization depends on what starting it left behind (0.18
		// in one OTP 25 run, below what fragmenting then gave).
		node.Eval(t, fill)
		before := utilization()
		if before < 0.5 {
			t.Fatalf("binary_alloc mbcs utilization %.3f with 30 MB of live binaries, want at least 0.5", before)
		}
		node.Eval(t, fragment)
		// A block freed by another scheduler than the one that allocated it
		// goes back through that scheduler's queue of delayed frees, so the
		// carriers empty a little after the holder has died (on OTP 29 the
		// node read 0.67 right after it and 0.31 a moment later).
		waitFor(t, "the node's own utilization to drop below 0.3", func() bool {
			return evalFloat(t, node, binaryMBCUtilization) < 0.3
		})
		onNode := evalFloat(t, node, binaryMBCUtilization)
		after := utilization()
		onNodeAfter := evalFloat(t, node, binaryMBCUtilization)
		t.Logf("OTP %s binary_alloc mbcs utilization: %.3f before, %.3f after (node: %.3f, %.3f)", otp, before, after, onNode, onNodeAfter)
		if after >= before || after > 0.3 {
			t.Errorf("utilization %.3f after fragmenting, %.3f before: want a drop below 0.3", after, before)
		}
		lo, hi := math.Min(onNode, onNodeAfter), math.Max(onNode, onNodeAfter)
		if after < lo*0.98 || after > hi*1.02 {
			t.Errorf("exported utilization %.4f, the node computes %.4f and %.4f from its own readings: more than 2%% apart", after, onNode, onNodeAfter)
		}
	})
}
