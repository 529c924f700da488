%%% The node side of `make bench`: a workload, the in-VM baseline and the
%%% meters, loaded into the benchmark's own throwaway nodes, never into a
%%% node anyone runs.
-module(beam_exporter_bench).
-export([populate/2, baseline/2, measure/3, node_cost/0, reductions_throughput/2]).

%%% ------------------------------------------------------------- workload

%% Spawns Procs idle processes and Tables ETS tables. Every hundredth
%% process holds a larger heap and every thousandth a few queued messages,
%% so that the rankings have something to rank; the tables belong to one
%% registered holder. Returns the node's process count.
populate(Procs, Tables) ->
    Parent = self(),
    Holder = spawn(fun() -> holder(Parent, Tables) end),
    receive {Holder, ready} -> ok end,
    spawn_idle(Procs),
    {ok, erlang:system_info(process_count)}.

holder(Parent, Tables) ->
    register(beam_exporter_bench_tables, self()),
    [ets:insert(ets:new(t, [set]), [{K, K} || K <- lists:seq(1, I rem 50)])
     || I <- lists:seq(1, Tables)],
    Parent ! {self(), ready},
    receive stop -> ok end.

spawn_idle(0) -> ok;
spawn_idle(I) ->
    P = case I rem 100 of
            0 -> spawn(fun() -> hold(lists:seq(1, I rem 5000)) end);
            _ -> spawn(fun idle/0)
        end,
    I rem 1000 =:= 0 andalso [P ! {noise, K} || K <- lists:seq(1, I rem 7)],
    spawn_idle(I - 1).

idle() -> receive stop -> ok end.

hold(Data) -> receive stop -> Data end.

%%% ------------------------------------------------------------- baseline

%% The usual in-VM way, as recon:proc_count/2 does it: for each attribute
%% its own pass, which reads every process but the caller into a list of
%% {Pid, Value, Info} (processes/0, process_info/2 per process), then keeps
%% the first N of that list in a heap bounded to N entries, as
%% recon_lib:sublist_top_n_attrs/2 does. recon asks for the attribute and
%% three naming items in the same call (recon style); minimal asks for the
%% attribute alone, and is otherwise the same.
baseline(Style, N) ->
    [top(Style, Attr, N) || Attr <- [memory, message_queue_len, reductions]].

top(Style, Attr, N) ->
    Items = case Style of
                recon -> [Attr, registered_name, current_function, initial_call];
                minimal -> [Attr]
            end,
    Rows = [{P, V, Rest} || P <- erlang:processes() -- [self()],
                            [{_, V} | Rest] <- [erlang:process_info(P, Items)]],
    first_n(Rows, N).

%% The N rows of largest value, largest first, through a skew heap ordered
%% by {Value, Pid} whose root is the smallest row kept.
first_n(_, 0) -> [];
first_n(Rows, N) -> first_n(Rows, N, 0, empty).

first_n([], _, _, Heap) -> drain(Heap, []);
first_n([{P, V, _} = Row | Rows], N, Size, Heap) when Size < N ->
    first_n(Rows, N, Size + 1, merge({{V, P}, Row, empty, empty}, Heap));
first_n([{P, V, _} = Row | Rows], N, N, {Min, _, L, R} = Heap) ->
    case {V, P} > Min of
        true -> first_n(Rows, N, N, merge({{V, P}, Row, empty, empty}, merge(L, R)));
        false -> first_n(Rows, N, N, Heap)
    end.

merge(empty, H) -> H;
merge(H, empty) -> H;
merge({K1, V1, L1, R1}, {K2, _, _, _} = H2) when K1 =< K2 -> {K1, V1, merge(R1, H2), L1};
merge(H1, H2) -> merge(H2, H1).

drain(empty, Acc) -> Acc;
drain({_, Row, L, R}, Acc) -> drain(merge(L, R), [Row | Acc]).

%%% --------------------------------------------------------------- meters

%% Runs one top-N refresh in a fresh process: the exporter's probe scan as
%% the processes collector calls it on a node this size (memory read for one
%% slice of Slices, no window beyond the scan's own), or a baseline. Reports its wall
%% time, the node's CPU time and reductions meanwhile, and its peak memory:
%% for it and every process it spawns, the largest heap, old heap, heap
%% fragments and referenced off-heap binaries, from their garbage
%% collection traces, summed over the processes.
measure(What, N, Slices) ->
    Fun = case What of
              probe -> fun() -> beam_exporter_probe_v8:top_processes(N, 0, 0, Slices, 0, erlang:monotonic_time(millisecond) + 600000) end;
              %% As the processes collector asks when process_groups is on (top-k 20).
              probe_groups ->
                  Groups = case Slices of 1 -> 20; _ -> 1000 end,
                  fun() -> beam_exporter_probe_v8:top_processes(N, 0, 0, Slices, Groups, erlang:monotonic_time(millisecond) + 600000) end;
              recon -> fun() -> baseline(recon, N) end;
              minimal -> fun() -> baseline(minimal, N) end
          end,
    Word = erlang:system_info(wordsize),
    Tracer = spawn(fun() -> peak(#{}) end),
    {Pid, Ref} = spawn_monitor(fun() -> receive go -> exit({done, catch Fun()}) end end),
    1 = erlang:trace(Pid, true, [garbage_collection, set_on_spawn, {tracer, Tracer}]),
    {Cpu0, _} = statistics(runtime),
    {Red0, _} = statistics(reductions),
    T0 = erlang:monotonic_time(microsecond),
    Pid ! go,
    Result = receive {'DOWN', Ref, process, Pid, {done, R}} -> R end,
    T1 = erlang:monotonic_time(microsecond),
    {Cpu1, _} = statistics(runtime),
    {Red1, _} = statistics(reductions),
    Tracer ! {self(), peak},
    Peak = receive {Tracer, P} -> P end,
    Ok = case Result of {ok, _} -> ok; [_ | _] -> ok; Other -> Other end,
    #{status => Ok, wall_us => T1 - T0, cpu_ms => Cpu1 - Cpu0,
      reductions => Red1 - Red0, peak_bytes => Peak * Word}.

peak(Max) ->
    receive
        {trace, Pid, Event, Info} when Event =:= gc_minor_start; Event =:= gc_major_start;
                                       Event =:= gc_minor_end; Event =:= gc_major_end ->
            Size = lists:sum([V || {K, V} <- Info,
                                   lists:member(K, [heap_block_size, old_heap_block_size, mbuf_size,
                                                    bin_vheap_size, bin_old_vheap_size])]),
            peak(Max#{Pid => max(Size, maps:get(Pid, Max, 0))});
        {From, peak} -> From ! {self(), lists:sum(maps:values(Max))};
        _ -> peak(Max)
    end.

%% The node's CPU time (ms) and reductions so far, for costs measured
%% around calls the exporter makes.
node_cost() ->
    {Cpu, _} = statistics(runtime),
    {Red, _} = statistics(reductions),
    {Cpu, Red}.

%% A reductions-heavy workload for Ms milliseconds with microstate
%% accounting on or off: per scheduler, one process computing and a pair
%% passing messages, so that the threads change state often. Returns the
%% reductions done and the node's CPU time meanwhile (ms): on a shared
%% machine, reductions per CPU second is the steadier measure.
reductions_throughput(Ms, Msacc) when is_boolean(Msacc) ->
    Was = erlang:system_flag(microstate_accounting, Msacc),
    Workers = lists:append([[spawn(fun() -> spin(0) end) | ping_pong()]
                            || _ <- lists:seq(1, erlang:system_info(schedulers_online))]),
    {Cpu0, _} = statistics(runtime),
    {Red0, _} = statistics(reductions),
    receive after Ms -> ok end,
    {Red1, _} = statistics(reductions),
    {Cpu1, _} = statistics(runtime),
    [exit(W, kill) || W <- Workers],
    erlang:system_flag(microstate_accounting, Was),
    {ok, {Red1 - Red0, Cpu1 - Cpu0}}.

spin(N) -> spin(work(N rem 97, [])).

work(0, Acc) -> length(Acc);
work(K, Acc) -> work(K - 1, [K | Acc]).

ping_pong() ->
    A = spawn(fun pong/0),
    B = spawn(fun pong/0),
    A ! {B, work(50, [])},
    [A, B].

pong() ->
    receive {From, N} -> From ! {self(), work(N rem 50 + 1, [])}, pong() end.
