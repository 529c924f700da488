//go:build fuzzcorpus

// Regenerates the fuzz targets' seed corpus from a real node:
//
//	go test -tags fuzzcorpus -run TestWriteFuzzCorpus ./collector ./erlnode
//
// Each seed is an Erlang expression evaluated on a fresh OTP node (the probe
// loaded) and encoded with term_to_binary, as the node would send it; a
// "raw " expression evaluates to the bytes themselves.

package collector

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/beam-exporter/beam_exporter/erlnode"
)

// badShapes go to every target: wrong types, missing keys, huge lists,
// deeply nested terms, numbers out of range, and headers that lie.
var badShapes = map[string]string{
	"undefined":       `undefined`,
	"empty_list":      `[]`,
	"refused":         `{error, badarg}`,
	"negative":        `-1`,
	"float":           `1.5`,
	"small_big":       `1 bsl 70`,
	"huge_big":        `1 bsl 2100`,
	"binary":          `<<"10">>`,
	"pid":             `self()`,
	"improper_list":   `[1 | 2]`,
	"long_list":       `lists:seq(1, 300)`,
	"deep_list":       `lists:foldl(fun(_, A) -> [A] end, [], lists:seq(1, 500))`,
	"deep_tuple":      `lists:foldl(fun(_, A) -> {ok, A} end, [], lists:seq(1, 500))`,
	"tuple_key_map":   `{ok, #{{a, b} => 1, memory => []}}`,
	"non_atom_keys":   `[{"total", 1}, {1, 2}]`,
	"list_bomb":       `raw <<131, 108, 255, 255, 255, 254, 106, 106>>`,
	"tuple_bomb":      `raw <<131, 105, 255, 255, 255, 255, 97, 1>>`,
	"bitbinary_bomb":  `raw <<131, 77, 255, 255, 255, 255, 3, 1>>`,
	"atom_overflow":   `raw <<131, 118, 255, 255, 97>>`,
	"cache_ref":       `raw <<131, 82, 0>>`,
	"truncated_tuple": `raw <<131, 104, 3, 97, 1>>`,
}

// seeds are each target's captured replies and near misses.
var seeds = map[string]map[string]string{
	"FuzzParseMemory": {
		"captured":       `erlang:memory()`,
		"missing_total":  `lists:keydelete(total, 1, erlang:memory())`,
		"parts_over":     `lists:keyreplace(total, 1, erlang:memory(), {total, 1})`,
		"string_value":   `lists:keyreplace(ets, 1, erlang:memory(), {ets, "10"})`,
		"huge_total":     `lists:keyreplace(total, 1, erlang:memory(), {total, 1 bsl 2100})`,
		"not_pairs":      `[total, processes]`,
		"as_map":         `maps:from_list(erlang:memory())`,
		"duplicate_keys": `erlang:memory() ++ erlang:memory()`,
	},
	"FuzzParseWallTime": {
		"captured":        `erlang:system_flag(scheduler_wall_time, true), timer:sleep(20), erlang:statistics(scheduler_wall_time_all)`,
		"active_over":     `[{1, 200, 100}, {2, 0, 0}]`,
		"negative_time":   `[{1, -5, 100}]`,
		"huge_times":      `[{1, 1 bsl 2100, 1 bsl 2100}]`,
		"two_tuple":       `[{1, 100}]`,
		"huge_id":         `[{1 bsl 70, 1, 2}]`,
		"float_times":     `[{1, 0.5, 1.0}]`,
		"duplicate_ids":   `[{1, 1, 2}, {1, 3, 4}]`,
		"wall_time_empty": `[]`,
	},
	"FuzzParseMSAcc": {
		"captured":        `msacc:start(), timer:sleep(20), erlang:statistics(microstate_accounting)`,
		"missing_type":    `[#{id => 1, counters => #{emulator => 1}}]`,
		"counters_list":   `[#{type => scheduler, id => 1, counters => [{emulator, 1}]}]`,
		"negative":        `[#{type => scheduler, id => 1, counters => #{emulator => -1}}]`,
		"binary_type":     `[#{type => <<"scheduler">>, id => 1, counters => #{gc => 1}}]`,
		"huge_counter":    `[#{type => scheduler, id => 1, counters => #{gc => 1 bsl 2100}}, #{type => scheduler, id => 2, counters => #{gc => 1 bsl 2100}}]`,
		"string_key":      `[#{type => scheduler, id => 1, counters => #{"gc" => 1}}]`,
		"not_a_map":       `[{type, scheduler}]`,
		"thread_is_tuple": `[{scheduler, 1, #{}}]`,
	},
	"FuzzStatistics": {
		"context_switches":   `erlang:statistics(context_switches)`,
		"io":                 `erlang:statistics(io)`,
		"garbage_collection": `erlang:statistics(garbage_collection)`,
		"runtime":            `erlang:statistics(runtime)`,
		"reductions":         `erlang:statistics(reductions)`,
		"io_swapped":         `{{output, 1}, {input, 2}}`,
		"io_flat":            `{input, 1, output, 2}`,
		"gc_negative":        `{-1, 2, 0}`,
		"pair_of_bigs":       `{1 bsl 70, 1 bsl 2100}`,
	},
	"FuzzParseRunQueues": {
		"captured":   `erlang:statistics(run_queue_lengths_all)`,
		"too_short":  `[0]`,
		"negative":   `[0, 0, -1, 0, 0, 0]`,
		"float":      `[0.5, 0, 0]`,
		"as_string":  `"abc"`,
		"bigs":       `[1 bsl 70, 1 bsl 2100, 1]`,
		"not_a_list": `{0, 0, 0}`,
	},
	"FuzzParseRanking": {
		"ets_tables":    `beam_exporter_probe_v8:ets_tables(10, erlang:monotonic_time(millisecond) + 5000)`,
		"lock_counters": `beam_exporter_probe_v8:lock_counters(10, erlang:monotonic_time(millisecond) + 5000)`,
		"badarg":        `beam_exporter_probe_v8:ets_tables(0, 0)`,
		"atom_names":    `{ok, [{code, 1, 2}, {ac_tab, 3, 4}]}`,
		"charlist_name": `{ok, [{[1000, 1001], 1, 2}]}`,
		"pid_name":      `{ok, [{self(), 1, 2}]}`,
		"not_utf8_name": `{ok, [{<<255, 254>>, 1, 2}]}`,
		"too_many":      `{ok, [{<<"t">>, 1, 1} || _ <- lists:seq(1, 1001)]}`,
		"huge_list":     `{ok, [{<<"t">>, N, N * 1000} || N <- lists:seq(1, 1001)]}`,
		"negative":      `{ok, [{<<"t">>, -1, 1}]}`,
		"short_entry":   `{ok, [{<<"t">>, 1}]}`,
		"error_string":  `{error, "badarg"}`,
	},
	"FuzzParseProcessRankings": {
		"captured":           `beam_exporter_probe_v8:top_processes(10, 50, 0, 1, 20, erlang:monotonic_time(millisecond) + 5000)`,
		"captured_no_groups": `beam_exporter_probe_v8:top_processes(10, 50, 0, 1, 0, erlang:monotonic_time(millisecond) + 5000)`,
		"captured_slice":     `beam_exporter_probe_v8:top_processes(10, 0, 1, 4, 1000, erlang:monotonic_time(millisecond) + 5000)`,
		"captured_labels":    `Ps = [proc_lib:spawn(fun() -> put('$process_label', {worker, N}), receive stop -> ok end end) || N <- lists:seq(1, 50)], timer:sleep(50), R = beam_exporter_probe_v8:top_processes(10, 20, 0, 1, 20, erlang:monotonic_time(millisecond) + 5000), [P ! stop || P <- Ps], R`,
		"missing_groups":     `{ok, #{memory => [], message_queue_len => [], reductions => [], details => [], window_us => 1, error_us => 1, processes => 1, groups_other => {0, 0, 0, 0}}}`,
		"group_twice":        `{ok, #{memory => [], message_queue_len => [], reductions => [], details => [], window_us => 1, error_us => 1, processes => 2, groups => [{<<"a">>, 1, 1, 0, 0}, {<<"a">>, 1, 1, 0, 0}], groups_other => {0, 0, 0, 0}}}`,
		"group_negative":     `{ok, #{memory => [], message_queue_len => [], reductions => [], details => [], window_us => 1, error_us => 1, processes => 1, groups => [{<<"a">>, 1, -1, 0, 0}], groups_other => {0, 0, 0, 0}}}`,
		"group_huge":         `{ok, #{memory => [], message_queue_len => [], reductions => [], details => [], window_us => 1, error_us => 1, processes => 1, groups => [{<<"a">>, 1, 1 bsl 2100, 0, 0}], groups_other => {0, 1 bsl 70, 0, 0}}}`,
		"group_not_utf8":     `{ok, #{memory => [], message_queue_len => [], reductions => [], details => [], window_us => 1, error_us => 1, processes => 1, groups => [{<<255, 254>>, 1, 1, 0, 0}], groups_other => {0, 0, 0, 0}}}`,
		"group_named_other":  `{ok, #{memory => [], message_queue_len => [], reductions => [], details => [], window_us => 1, error_us => 1, processes => 2, groups => [{<<"other">>, 1, 5, 0, 0}], groups_other => {1, 3, 0, 0}}}`,
		"other_short":        `{ok, #{memory => [], message_queue_len => [], reductions => [], details => [], window_us => 1, error_us => 1, processes => 1, groups => [], groups_other => {0, 0, 0}}}`,
		"other_list":         `{ok, #{memory => [], message_queue_len => [], reductions => [], details => [], window_us => 1, error_us => 1, processes => 1, groups => [], groups_other => [0, 0, 0, 0]}}`,
		"too_many_groups":    `{ok, #{memory => [], message_queue_len => [], reductions => [], details => [], window_us => 1, error_us => 1, processes => 21, groups => [{integer_to_binary(N), 1, 1, 0, 0} || N <- lists:seq(1, 21)], groups_other => {0, 0, 0, 0}}}`,
		"badarg":             `beam_exporter_probe_v8:top_processes(0, 50, 0, 1, 0, erlang:monotonic_time(millisecond) + 5000)`,
		"missing_window":     `{ok, #{memory => [], message_queue_len => [], reductions => [], details => [], processes => 1, groups => [], groups_other => {0, 0, 0, 0}}}`,
		"missing_details":    `{ok, #{memory => [], message_queue_len => [], reductions => [], window_us => 1, error_us => 1, processes => 1, groups => [], groups_other => {0, 0, 0, 0}}}`,
		"huge_window":        `{ok, #{memory => [], message_queue_len => [], reductions => [{<<"<0.1.0>">>, 5, 20000}], details => [], window_us => 1 bsl 70, error_us => 1, processes => 1, groups => [], groups_other => {0, 0, 0, 0}}}`,
		"window_overflow":    `{ok, #{memory => [], message_queue_len => [], reductions => [{<<"<0.1.0>">>, 5, 20000}], details => [], window_us => 1 bsl 60 + 1, error_us => 1, processes => 1, groups => [], groups_other => {0, 0, 0, 0}}}`,
		"zero_window":        `{ok, #{memory => [], message_queue_len => [], reductions => [{<<"<0.1.0>">>, 5, 20000}], details => [], window_us => 0, error_us => 1, processes => 1, groups => [], groups_other => {0, 0, 0, 0}}}`,
		"negative_window":    `{ok, #{memory => [], message_queue_len => [], reductions => [], details => [], window_us => -1, error_us => 1, processes => 1, groups => [], groups_other => {0, 0, 0, 0}}}`,
		"proplist":           `{ok, [{memory, []}]}`,
		"too_many":           `{ok, #{memory => [{<<"<0.1.0>">>, 1} || _ <- lists:seq(1, 11)], message_queue_len => [], reductions => [], details => [], window_us => 1, error_us => 1, processes => 1, groups => [], groups_other => {0, 0, 0, 0}}}`,
		"huge_list":          `{ok, #{memory => [], message_queue_len => [{<<"<0.1.0>">>, 1} || _ <- lists:seq(1, 1001)], reductions => [], details => [], window_us => 1, error_us => 1, processes => 1, groups => [], groups_other => {0, 0, 0, 0}}}`,
		"binary_keys":        `{ok, #{<<"memory">> => [], message_queue_len => [], reductions => [], details => [], window_us => 1, error_us => 1, processes => 1, groups => [], groups_other => {0, 0, 0, 0}}}`,
		"wrong_value_type":   `{ok, #{memory => [{<<"<0.1.0>">>, <<"1">>}], message_queue_len => [], reductions => [], details => [], window_us => 1, error_us => 1, processes => 1, groups => [], groups_other => {0, 0, 0, 0}}}`,
		"pid_term":           `{ok, #{memory => [{self(), 1}], message_queue_len => [], reductions => [], details => [], window_us => 1, error_us => 1, processes => 1, groups => [], groups_other => {0, 0, 0, 0}}}`,
		"not_a_pid":          `{ok, #{memory => [{<<"<0.1.0><script>">>, 1}], message_queue_len => [], reductions => [], details => [], window_us => 1, error_us => 1, processes => 1, groups => [], groups_other => {0, 0, 0, 0}}}`,
		"not_utf8_name":      `{ok, #{memory => [{<<"<0.1.0>">>, 1}], message_queue_len => [], reductions => [], details => [#{pid => <<"<0.1.0>">>, name => <<255, 254>>, label => <<>>, registered_name => <<>>, current_function => <<"m:f/0">>, initial_call => <<"m:f/0">>, memory => 1, message_queue_len => 0, reductions => 1}], window_us => 1, error_us => 1, processes => 1, groups => [], groups_other => {0, 0, 0, 0}}}`,
		"described_twice":    `D = #{pid => <<"<0.1.0>">>, name => <<"a">>, label => <<>>, registered_name => <<"a">>, current_function => <<"m:f/0">>, initial_call => <<"m:f/0">>, memory => 1, message_queue_len => 0, reductions => 1}, {ok, #{memory => [], message_queue_len => [], reductions => [], details => [D, D], window_us => 1, error_us => 1, processes => 1, groups => [], groups_other => {0, 0, 0, 0}}}`,
	},
	"FuzzParseDist": {
		"captured":     `{1048576, [{'peer_1@vm', {ok, [{recv_oct, 521}, {recv_cnt, 7}, {send_oct, 518}, {send_cnt, 6}, {send_pend, 25950}]}}, {beam_exporter@vm, {ok, [{recv_oct, 1}, {recv_cnt, 1}, {send_oct, 1}, {send_cnt, 1}, {send_pend, 0}]}}], [{'tls_peer@vm', {ok, [{owner, self()}, {state, up}, {type, normal}, {in, 6}, {out, 5}]}}]}`,
		"gone":         `{1048576, [{'a@vm', {error, einval}}], [{'b@vm', {error, bad_node}}]}`,
		"twice":        `{1, [{'a@vm', {ok, [{recv_oct, 1}, {recv_cnt, 1}, {send_oct, 1}, {send_cnt, 1}, {send_pend, 0}]}}], [{'a@vm', {ok, [{in, 1}, {out, 1}]}}]}`,
		"binary_peer":  `{1, [{<<"a@vm">>, {ok, []}}], []}`,
		"missing_stat": `{1, [{'a@vm', {ok, [{recv_oct, 1}]}}], []}`,
		"negative":     `{1, [{'a@vm', {ok, [{recv_oct, -1}, {recv_cnt, 1}, {send_oct, 1}, {send_cnt, 1}, {send_pend, 0}]}}], []}`,
		"big_counter":  `{1, [{'a@vm', {ok, [{recv_oct, 1 bsl 70}, {recv_cnt, 1}, {send_oct, 1}, {send_cnt, 1}, {send_pend, 0}]}}], []}`,
		"not_a_tuple":  `[1048576, [], []]`,
	},
	"FuzzParseDistEvents": {
		"captured":       `{ok, #{downs => [{<<"disconnect">>, 1}], peers => [{<<"capB@vm">>, 2}]}}`,
		"empty":          `{ok, #{downs => [], peers => []}}`,
		"every_reason":   `{ok, #{downs => [{atom_to_binary(R), 1} || R <- [connection_closed, connection_setup_failed, disconnect, get_status_failed, net_kernel_terminated, net_tick_timeout, no_network, send_net_tick_failed, shutdown, other]], peers => []}}`,
		"unknown_reason": `{ok, #{downs => [{<<"boom">>, 1}], peers => []}}`,
		"peer_twice":     `{ok, #{downs => [], peers => [{<<"a@vm">>, 1}, {<<"a@vm">>, 2}]}}`,
		"not_utf8_peer":  `{ok, #{downs => [], peers => [{<<255>>, 1}]}}`,
		"big_count":      `{ok, #{downs => [], peers => [{<<"a@vm">>, 1 bsl 70}]}}`,
		"refused":        `{error, badarg}`,
	},
	"FuzzParseMnesia": {
		"captured":      `{8, 0, 0, 6, 0, 0, 0, [{live_orders, ram_copies, 3, 329}, {schema, ram_copies, 2, 541}]}`,
		"many_tables":   `{8, 1, 2, 3, 4, 5, 6, [{list_to_atom("t" ++ integer_to_list(N)), disc_copies, N, N * 10} || N <- lists:seq(1, 50)]}`,
		"other_storage": `{8, 0, 0, 0, 0, 0, 0, [{t, rocksdb_copies, 1, 1}, {u, disc_only_copies, 1, 1 bsl 70}]}`,
		"loading":       `{8, 0, 0, 0, 0, 0, 0, [{t, ram_copies, undefined, undefined}]}`,
		"word_size_3":   `{3, 0, 0, 0, 0, 0, 0, []}`,
		"short":         `{8, 0, 0}`,
	},
	"FuzzParseSysmon": {
		"captured": `D = erlang:monotonic_time(millisecond) + 10000,
			{ok, _} = beam_exporter_probe_v8:session(self(), #{sysmon => #{long_gc => 2, long_schedule => 1000,
				large_heap => 8000000, long_message_queue => 100, names => 20}}, D),
			P = spawn(fun() -> register(gc_hog, self()), L = lists:seq(1, 2000000), erlang:garbage_collect(),
				receive stop -> length(L) end end),
			timer:sleep(500), P ! stop,
			{ok, R} = beam_exporter_probe_v8:system_monitor_events(D), R`,
		"other":           `#{owner => other}`,
		"none":            `#{owner => none}`,
		"unknown_owner":   `#{owner => someone}`,
		"bad_histogram":   `#{owner => beam_exporter, events => #{}, names => [], thresholds => #{long_gc => 100}, long_gc_bounds_ms => [5, 1], long_gc_counts => [1, 1, 1], long_gc_sum_ms => 3, long_message_queue => false, overloads => 0, queue => 0, memory => 0}`,
		"huge_counts":     `#{owner => beam_exporter, events => #{long_gc => 1 bsl 70}, names => [{long_gc, <<"x">>, 1 bsl 70}], thresholds => #{long_gc => 1}, long_gc_bounds_ms => [1], long_gc_counts => [1 bsl 60, 1 bsl 60], long_gc_sum_ms => 1 bsl 70, long_message_queue => true, overloads => 1, queue => 0, memory => 0}`,
		"many_names":      `#{owner => beam_exporter, events => #{long_gc => 1}, names => [{long_gc, integer_to_binary(N), 1} || N <- lists:seq(1, 1100)], thresholds => #{long_gc => 1}, long_gc_bounds_ms => [1], long_gc_counts => [0, 1], long_gc_sum_ms => 1, long_message_queue => true, overloads => 1, queue => 0, memory => 0}`,
		"names_of_no_one": `#{owner => beam_exporter, events => #{}, names => [{busy_port, <<"tcp_inet">>, 1}], thresholds => #{long_gc => 1}, long_gc_bounds_ms => [1], long_gc_counts => [0, 0], long_gc_sum_ms => 0, long_message_queue => true, overloads => 1, queue => 0, memory => 0}`,
	},
	"FuzzParseAllocatorSizes": {
		"captured_names":    `erlang:system_info(alloc_util_allocators)`,
		"captured_binary":   `erlang:system_info({allocator_sizes, binary_alloc})`,
		"captured_eheap":    `erlang:system_info({allocator_sizes, eheap_alloc})`,
		"captured_all":      `erlang:system_info({allocator_sizes, erlang:system_info(alloc_util_allocators)})`,
		"all_one_off":       `[{A, false} || A <- erlang:system_info(alloc_util_allocators)]`,
		"switched_off":      `false`,
		"pool_foreign":      `[{instance, 1, [{mbcs, [{blocks, [{eheap_alloc, [{size, 1, 2, 2}]}]}, {carriers_size, 8, 8, 8}]}, {mbcs_pool, [{blocks, [{binary_alloc, [{size, 4}]}]}, {carriers_size, 16}]}]}]`,
		"no_carriers_size":  `[{instance, 0, [{mbcs, [{blocks, []}]}]}]`,
		"huge_size":         `[{instance, 0, [{sbcs, [{blocks, [{a, [{size, 1 bsl 2100}]}]}, {carriers_size, 1}]}]}]`,
		"negative_carriers": `[{instance, 0, [{sbcs, [{blocks, []}, {carriers_size, -1, 0, 0}]}]}]`,
		"unknown_key":       `[{instance, 0, [{mbcs_new, x}, {sbcs, [{blocks, []}, {carriers_size, 0, 0, 0}, {count, 1}]}]}]`,
		"too_many_names":    `[list_to_atom("a" ++ integer_to_list(I)) || I <- lists:seq(1, 16)]`,
		"duplicate_names":   `[binary_alloc, binary_alloc]`,
	},
	"FuzzParseProcStatus": {
		"captured":     `file:read_file("/proc/self/status")`,
		"enoent":       `{error, enoent}`,
		"no_vmrss":     `{ok, <<"Name:\tbeam.smp\n">>}`,
		"pages":        `{ok, <<"VmRSS:\t12 pages\n">>}`,
		"huge_rss":     `{ok, <<"VmRSS:\t99999999999999999999999 kB\n">>}`,
		"negative_rss": `{ok, <<"VmRSS:\t-4 kB\n">>}`,
		"as_charlist":  `{ok, "VmRSS:\t4 kB\n"}`,
		"two_vmrss":    `{ok, <<"VmRSS:\t4 kB\nVmRSS:\t8 kB\n">>}`,
	},
	"FuzzParsePersistentTermInfo": {
		"captured":       `persistent_term:info()`,
		"as_proplist":    `maps:to_list(persistent_term:info())`,
		"missing_memory": `maps:remove(memory, persistent_term:info())`,
		"huge_memory":    `(persistent_term:info())#{memory => 1 bsl 2100}`,
		"negative_count": `(persistent_term:info())#{count => -1}`,
	},
	"FuzzCollectors": {
		"integer":       `8`,
		"lock_on":       `true`,
		"otp_release":   `erlang:system_info(otp_release)`,
		"ok_list":       `{ok, []}`,
		"unavailable":   `{ok, unavailable}`,
		"memory":        `erlang:memory()`,
		"ets_tables":    `beam_exporter_probe_v8:ets_tables(10, erlang:monotonic_time(millisecond) + 5000)`,
		"top_processes": `beam_exporter_probe_v8:top_processes(10, 10, 0, 1, 0, erlang:monotonic_time(millisecond) + 5000)`,
	},
}

// extraArgs are the targets' arguments after the term, in corpus syntax.
var extraArgs = map[string]func(data []byte) []string{
	"FuzzParseRunQueues": func(data []byte) []string {
		// The captured list holds one queue per normal scheduler and two dirty.
		normal := 1
		if term, ok := fuzzTerm(data); ok {
			if l, err := erlnode.List(term); err == nil && len(l) > 2 {
				normal = len(l) - 2
			}
		}
		return []string{fmt.Sprintf("int(%d)", normal)}
	},
	"FuzzParseRanking": func([]byte) []string { return []string{"int(2)", "int(10)"} },
}

// evalScript encodes each {Target, Name, Expr} of the file named by its
// argument and prints "Target Name Hex" lines.
const evalScript = `
[File] = init:get_plain_arguments(),
{ok, Seeds} = file:consult(File),
lists:foreach(fun({Target, Name, Expr}) ->
    {Raw, Src} = case Expr of "raw " ++ E -> {true, E}; E -> {false, E} end,
    {ok, Toks, _} = erl_scan:string(Src ++ "."),
    {ok, Exprs} = erl_parse:parse_exprs(Toks),
    {value, V, _} = erl_eval:exprs(Exprs, []),
    Bin = case Raw of true -> V; false -> term_to_binary(V, [{minor_version, 2}]) end,
    io:format("~s ~s ~s~n", [Target, Name, binary:encode_hex(Bin)])
end, Seeds),
halt().`

func TestWriteFuzzCorpus(t *testing.T) {
	var list bytes.Buffer
	add := func(target, name, expr string) {
		fmt.Fprintf(&list, "{%q, %q, %q}.\n", target, name, expr)
	}
	for target, own := range seeds {
		for name, expr := range own {
			add(target, name, expr)
		}
		for name, expr := range badShapes {
			add(target, name, expr)
		}
	}
	file := filepath.Join(t.TempDir(), "seeds")
	if err := os.WriteFile(file, list.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("erl", "-noshell", "-pa", "../erlnode/probe", "-eval", evalScript, "-extra", file)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("erl: %v\n%s", err, out)
	}
	// The erlnode targets take every seed, once.
	seen := map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(nil, 1<<24)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 3 {
			t.Fatalf("unexpected line %q", sc.Text())
		}
		target, name := f[0], f[1]
		data, err := hex.DecodeString(f[2])
		if err != nil {
			t.Fatal(err)
		}
		args := []string{"[]byte(" + strconv.Quote(string(data)) + ")"}
		if extra := extraArgs[target]; extra != nil {
			args = append(args, extra(data)...)
		}
		writeSeed(t, filepath.Join("testdata", "fuzz", target, name), args)
		if key := string(data); !seen[key] {
			seen[key] = true
			for _, et := range []string{"FuzzTermHelpers", "FuzzCheckTerm"} {
				arg := data
				if et == "FuzzCheckTerm" {
					arg = data[1:] // CheckTerm reads after the version byte
				}
				writeSeed(t, filepath.Join("..", "erlnode", "testdata", "fuzz", et, target+"_"+name),
					[]string{"[]byte(" + strconv.Quote(string(arg)) + ")"})
			}
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
}

func writeSeed(t *testing.T, path string, args []string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	text := "go test fuzz v1\n" + strings.Join(args, "\n") + "\n"
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}
