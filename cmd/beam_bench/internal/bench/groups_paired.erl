%%% Paired runs of the probe's scan without and with process groups, in one
%%% node, alternately, so that the machine's load weighs on both alike:
%%%
%%%   erlc -o /tmp cmd/beam_bench/internal/bench/groups_paired.erl
%%%   erl +P 2000000 +sbwt none +sbwtdcpu none +sbwtdio none -noshell \
%%%       -pa /tmp -pa erlnode/probe -run groups_paired run 100000 61 proc_lib
%%%
%%% A fifth argument, Slices (1 unless given), scans the node in that many
%%% slices as the exporter does above 100,000 processes: pair I scans slice
%%% I rem Slices, both of its scans the same one.
%%%
%%% The node holds N idle processes, all spawned from one fun (plain) or
%%% by proc_lib (proc_lib, as most of a real node's processes are), and its
%%% own. The scan is top_processes(10, 0, Slice, Slices, Groups, Deadline) with Groups
%%% 0 and 20, in turn first. Each is measured in node CPU, the emulator's
%%% statistics(runtime) across the call; schedulers that do not busy-wait
%%% (+sbwt none ...) count only work. It prints the medians and the median
%%% of the paired ratios (with / without), the figure observability.md
%%% quotes, and the first grouping scan's CPU, which learns every group
%%% (the groups cache is empty).
-module(groups_paired).
-export([run/1]).

run([NText, RoundsText, Kind]) ->
    run([NText, RoundsText, Kind, "1"]);
run([NText, RoundsText, Kind, SlicesText]) ->
    N = list_to_integer(NText),
    Slices = list_to_integer(SlicesText),
    Rounds = list_to_integer(RoundsText),
    Spawn = case Kind of
                "plain" -> fun() -> spawn(fun() -> receive stop -> ok end end) end;
                "proc_lib" -> fun() -> proc_lib:spawn(fun() -> receive stop -> ok end end) end
            end,
    Idle = [Spawn() || _ <- lists:seq(1, N)],
    erlang:garbage_collect(),
    timer:sleep(500),
    Scan = fun(Slice, Groups) ->
                   Deadline = erlang:monotonic_time(millisecond) + 60000,
                   {_, _} = statistics(runtime),
                   {ok, _} = beam_exporter_probe_v8:top_processes(10, 0, Slice, Slices, Groups, Deadline),
                   {_, Ms} = statistics(runtime),
                   Ms
           end,
    _ = Scan(0, 0),  % loads and warms the path
    First = Scan(0, 20),
    _ = [Scan(Slice, 20) || Slice <- lists:seq(1, Slices - 1)],
    %% Which goes first alternates: a scan leaves the processes it read (and
    %% the allocators) a little different for the next one.
    Pairs = [case I rem 2 of
                 0 -> A = Scan(I rem Slices, 0), {A, Scan(I rem Slices, 20)};
                 1 -> B = Scan(I rem Slices, 20), {Scan(I rem Slices, 0), B}
             end || I <- lists:seq(1, Rounds)],
    Median = fun(L) -> lists:nth(length(L) div 2 + 1, lists:sort(L)) end,
    io:format("OTP ~s, ~b ~s processes in ~b slices, ~b pairs: scan CPU median ~b ms without groups, "
              "~b ms with; median paired ratio ~.3f; the first grouping scan ~b ms~n",
              [erlang:system_info(otp_release), N, Kind, Slices, Rounds,
               Median([A || {A, _} <- Pairs]), Median([B || {_, B} <- Pairs]),
               Median([B / max(1, A) || {A, B} <- Pairs]), First]),
    [P ! stop || P <- Idle],
    halt().
