%%% Paired runs of the probe's scan without and with process groups, in one
%%% node, alternately, so that the machine's load weighs on both alike:
%%%
%%%   erlc -o /tmp cmd/beam_bench/internal/bench/groups_paired.erl
%%%   erl +P 2000000 -noshell -pa /tmp -pa erlnode/probe -run groups_paired run 100000 31
%%%
%%% The node holds N idle processes (spawned from one fun, so one group) and
%%% its own; the scan is top_processes(10, 0, 0, 1, Groups, Deadline) with
%%% Groups 0 and 20, in turn first. It prints the medians and the median of the paired
%%% ratios (with / without), which is the figure observability.md quotes.
-module(groups_paired).
-export([run/1]).

run([NText, RoundsText]) ->
    N = list_to_integer(NText),
    Rounds = list_to_integer(RoundsText),
    Idle = [spawn(fun() -> receive stop -> ok end end) || _ <- lists:seq(1, N)],
    erlang:garbage_collect(),
    timer:sleep(500),
    Scan = fun(Groups) ->
                   Deadline = erlang:monotonic_time(millisecond) + 60000,
                   {Us, {ok, _}} = timer:tc(beam_exporter_probe_v6, top_processes, [10, 0, 0, 1, Groups, Deadline]),
                   Us
           end,
    _ = [Scan(G) || G <- [0, 20]],  % loads and warms both paths
    %% Which goes first alternates: a scan leaves the processes it read (and
    %% the allocators) a little different for the next one.
    Pairs = [case I rem 2 of
                 0 -> A = Scan(0), {A, Scan(20)};
                 1 -> B = Scan(20), {Scan(0), B}
             end || I <- lists:seq(1, Rounds)],
    Median = fun(L) -> lists:nth(length(L) div 2 + 1, lists:sort(L)) end,
    io:format("OTP ~s, ~b processes, ~b pairs: scan median ~.1f ms without groups, ~.1f ms with; "
              "median paired ratio ~.3f~n",
              [erlang:system_info(otp_release), N, Rounds,
               Median([A || {A, _} <- Pairs]) / 1000, Median([B || {_, B} <- Pairs]) / 1000,
               Median([B / A || {A, B} <- Pairs])]),
    [P ! stop || P <- Idle],
    halt().
