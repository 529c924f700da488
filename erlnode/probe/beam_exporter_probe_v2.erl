%%% The part of beam_exporter that runs inside the observed node.
%%%
%%% The exporter loads it with code:load_binary/3 and calls it over RPC. It is
%%% read-only towards the node, except for the two statistics flags session/2
%%% switches on and gives back; each call keeps its memory bounded whatever
%%% the node holds, and arguments outside the contract get {error, badarg}.
%%%
%%% The version in the name keeps it apart from application code and makes a
%%% changed probe a new module: never change the code behind a released name.
%%% Load it only if erlang:module_loaded/1 says it is not loaded: loading it
%%% again purges the older copy, which kills the processes still running that
%%% copy, sessions and the msacc keeper included, and a killed keeper cannot
%%% switch msacc back off.
-module(beam_exporter_probe_v2).
-export([session/2, top_processes/4, ets_tables/1, lock_counters/1]).

-define(KEEPER, beam_exporter_probe_v2_msacc).
-define(NAME_MAX, 120).

%%% ------------------------------------------------------------- sessions

%% Starts an unlinked session process that lives until Owner goes (it is
%% monitored, so a dropped connection ends it with 'DOWN' noconnection) or it
%% gets the atom `stop'. It enables scheduler_wall_time itself because ERTS
%% keeps that flag on only while a process that enabled it lives, and an RPC
%% worker dies right after the call. msacc => true also asks the msacc keeper
%% for microstate accounting. Both are on by the time this returns.
-spec session(Owner :: pid(), Opts :: #{msacc => boolean()}) ->
          {ok, Session :: pid()} | {error, badarg}.
session(Owner, Opts) when is_pid(Owner), is_map(Opts) ->
    case Opts of
        #{msacc := Msacc} when is_boolean(Msacc), map_size(Opts) =:= 1 ->
            start_session(Owner, Msacc);
        #{} when map_size(Opts) =:= 0 -> start_session(Owner, false);
        #{} -> {error, badarg}
    end;
session(_, _) -> {error, badarg}.

start_session(Owner, Msacc) ->
    Caller = self(),
    {Pid, Ref} = spawn_monitor(fun() -> session_init(Owner, Msacc, Caller) end),
    receive
        {Pid, ready} -> demonitor(Ref, [flush]);
        {'DOWN', Ref, process, Pid, _} -> ok  % killed; the owner will notice
    end,
    {ok, Pid}.

%% No cleanup on the way out, however the session ends: ERTS drops its
%% scheduler_wall_time reference and the keeper sees it go.
session_init(Owner, Msacc, Caller) ->
    Ref = monitor(process, Owner),
    erlang:system_flag(scheduler_wall_time, true),
    Msacc andalso msacc_join(),
    Caller ! {self(), ready},
    session_wait(Ref).

session_wait(Ref) ->
    receive
        {'DOWN', Ref, process, _, _} -> ok;
        stop -> ok;
        _ -> session_wait(Ref)  % keep the mailbox empty
    end.

%% microstate_accounting is a plain switch, not counted per process, so one
%% registered keeper monitors the sessions that want it, switches it on for
%% the first and off after the last, but only if it was off before. register/2
%% is atomic: of two sessions racing to start a keeper, the loser kills its
%% idle candidate and joins the winner.
msacc_join() ->
    case whereis(?KEEPER) of
        undefined ->
            K = spawn(fun() -> keeper(#{}, undefined) end),
            try register(?KEEPER, K) catch error:badarg -> exit(K, kill) end,
            msacc_join();
        K ->
            Ref = monitor(process, K),
            K ! {join, self(), Ref},
            receive
                {Ref, joined} -> demonitor(Ref, [flush]);
                {'DOWN', Ref, process, K, _} -> msacc_join()  % it was leaving
            after 5000 -> demonitor(Ref, [flush])  % that name is not a keeper
            end
    end.

%% Mine is undefined until the first join, then whether we switched msacc
%% on. The flag is given back before the keeper exits and frees the name, so
%% a successor cannot switch it on before we switch it off. A candidate that
%% never hears from anyone (its starter died before registering it) leaves.
keeper(Sessions, Mine) ->
    receive
        {join, Pid, Ref} when is_map_key(Pid, Sessions) ->
            Pid ! {Ref, joined},
            keeper(Sessions, Mine);
        {join, Pid, Ref} ->
            Mine1 = case Mine of
                        undefined -> not erlang:system_flag(microstate_accounting, true);
                        _ -> Mine
                    end,
            monitor(process, Pid),
            Pid ! {Ref, joined},
            keeper(Sessions#{Pid => true}, Mine1);
        {'DOWN', _, process, Pid, _} ->
            case maps:remove(Pid, Sessions) of
                Left when map_size(Left) > 0 -> keeper(Left, Mine);
                _ -> Mine =:= true andalso erlang:system_flag(microstate_accounting, false)
            end;
        _ -> keeper(Sessions, Mine)
    after case Mine of undefined -> 10000; _ -> infinity end -> ok
    end.

%%% -------------------------------------------------------- top processes

%% Ranks the processes by memory (bytes), message queue length and
%% reductions done during a window, in two passes over one process list.
%%
%% Reading memory costs a signal round trip per process (the target must be
%% scheduled to answer), about ten times a read of reductions or
%% message_queue_len, which ERTS serves without one. So memory is read only
%% for the processes of one slice of the table (erlang:phash2(Pid, Slices)
%% =:= Slice): with Slices > 1 the caller ranks memory over Slices calls,
%% a huge node costing a bounded number of round trips per call. The first
%% pass ranks memory (in the slice) and mailboxes (all), and keeps each
%% process's reductions as one 64-bit integer in a binary parallel to the
%% list; the second pass reads reductions again. A process's window is the
%% time between its two reads: the first pass's own duration, stretched so
%% that the second starts at least WindowMs after the first. Beyond the
%% bounded top-N sets, the memory that grows with the node is the process
%% list (as processes/0 makes it) and 8 bytes per process, both held for
%% this call only.
%%
%% Each Top is sorted by Value, descending, holds at most N entries and no
%% zeros, and names its processes by pid (pid_to_list/1, as this node's
%% shell reads it back with list_to_pid/1). Processes born during the call
%% are not ranked. details holds, for each winner still alive at the end of
%% the call, what an operator needs to find it: its stable name (name/2),
%% what it runs and its figures at that moment, at one process_info each.
%% window_us is the mean window; processes is how many the first pass read.
%% The caller is left out.
-spec top_processes(N :: 1..1000, WindowMs :: 0..60000, Slice :: 0..63, Slices :: 1..64) ->
          {ok, #{memory := Top, message_queue_len := Top, reductions := Top,
                 details := [Details],
                 window_us := non_neg_integer(), processes := non_neg_integer()}}
        | {error, badarg}
      when Top :: [{Pid :: binary(), Value :: pos_integer()}],
           Details :: #{pid := binary(), name := binary(), registered_name := binary(),
                        current_function := binary(), initial_call := binary(),
                        memory := non_neg_integer(), message_queue_len := non_neg_integer(),
                        reductions := non_neg_integer()}.
top_processes(N, WindowMs, Slice, Slices)
  when is_integer(N), N >= 1, N =< 1000, is_integer(WindowMs), WindowMs >= 0, WindowMs =< 60000,
       is_integer(Slices), Slices >= 1, Slices =< 64, is_integer(Slice), Slice >= 0, Slice < Slices ->
    Ps = erlang:processes(),
    None = {N, 0, gb_sets:empty()},
    T0 = erlang:monotonic_time(microsecond),
    {Count, Before, Mem, Mql} = first_pass(Ps, self(), {Slice, Slices}, 0, <<>>, None, None),
    T1 = erlang:monotonic_time(microsecond),
    Wait = (T0 + WindowMs * 1000 - T1) div 1000,
    Wait > 0 andalso receive after Wait -> ok end,
    T2 = erlang:monotonic_time(microsecond),
    Red = second_pass(Ps, Before, 0, self(), None),
    T3 = erlang:monotonic_time(microsecond),
    [M, Q, R] = Tops = [top_list(T) || T <- [Mem, Mql, Red]],
    Ctx = name_context(),
    Details = lists:append([details(P, Ctx) || P <- lists:usort([P || L <- Tops, {_, P} <- L])]),
    Pids = fun(L) -> [{pid_binary(P), V} || {V, P} <- L] end,
    {ok, #{memory => Pids(M), message_queue_len => Pids(Q), reductions => Pids(R),
           details => Details,
           window_us => max(0, (T2 + T3 - T0 - T1) div 2), processes => Count}};
top_processes(_, _, _, _) -> {error, badarg}.

%% [] for a process that exited since it was ranked.
details(P, Ctx) ->
    Items = [registered_name, current_function, initial_call, memory, message_queue_len, reductions],
    case erlang:process_info(P, Items) of
        [{registered_name, Reg}, {current_function, Fun}, {initial_call, Init0},
         {memory, Mem}, {message_queue_len, Mql}, {reductions, Red}] ->
            Init = initial_call(P, Init0, Ctx),
            [#{pid => pid_binary(P),
               name => name(P, Reg, Init, Ctx),
               registered_name => case Reg of [] -> <<>>; _ -> cap(atom_to_binary(Reg, utf8)) end,
               current_function => cap(mfa(Fun)),
               initial_call => cap(Init),
               memory => Mem, message_queue_len => Mql, reductions => Red}];
        undefined -> []
    end.

pid_binary(P) -> list_to_binary(pid_to_list(P)).

%% One call per process keeps it to at most one signal. Handling that
%% signal costs the process one reduction (on OTP 25, 27 and 29 alike) after
%% it has read its count for us, so its count before the window is R + 1:
%% otherwise every idle process of the slice would rank at one reduction.
%% Every process, the caller and the exited included, gets its 8 bytes, so
%% that the second pass finds them by position; appending to a binary held
%% only here is done in place.
first_pass([P | Ps], Me, {Slice, Slices} = S, Count, Before, Mem, Mql) when P =/= Me ->
    case erlang:phash2(P, Slices) of
        Slice ->
            case erlang:process_info(P, [memory, message_queue_len, reductions]) of
                [{memory, M}, {message_queue_len, Q}, {reductions, R}] ->
                    first_pass(Ps, Me, S, Count + 1, <<Before/binary, (R + 1):64>>,
                               top_add(M, P, Mem), top_add(Q, P, Mql));
                undefined -> first_pass(Ps, Me, S, Count, <<Before/binary, 0:64>>, Mem, Mql)
            end;
        _ ->
            case erlang:process_info(P, [message_queue_len, reductions]) of
                [{message_queue_len, Q}, {reductions, R}] ->
                    first_pass(Ps, Me, S, Count + 1, <<Before/binary, R:64>>, Mem, top_add(Q, P, Mql));
                undefined -> first_pass(Ps, Me, S, Count, <<Before/binary, 0:64>>, Mem, Mql)
            end
    end;
first_pass([_Me | Ps], Me, S, Count, Before, Mem, Mql) ->
    first_pass(Ps, Me, S, Count, <<Before/binary, 0:64>>, Mem, Mql);
first_pass([], _, _, Count, Before, Mem, Mql) -> {Count, Before, Mem, Mql}.

%% A process that exited before the first pass stays exited: pids are not
%% reused that soon. The integers are read with BIFs rather than a binary
%% match, whose instructions as OTP 25 compiles them OTP 29 cannot load.
second_pass([P | Ps], Before, At, Me, Red) when P =/= Me ->
    case erlang:process_info(P, reductions) of
        {reductions, R} ->
            R0 = binary:decode_unsigned(binary_part(Before, At, 8)),
            second_pass(Ps, Before, At + 8, Me, top_add(R - R0, P, Red));
        undefined -> second_pass(Ps, Before, At + 8, Me, Red)
    end;
second_pass([_Me | Ps], Before, At, Me, Red) -> second_pass(Ps, Before, At + 8, Me, Red);
second_pass([], _, _, _, Red) -> Red.

top_list({_, _, Set}) -> lists:reverse(gb_sets:to_list(Set)).

%% A bounded top-N is {Room, Floor, Set of {Value, Pid}}. A value not above
%% Floor is turned away by one comparison, without allocating: the common
%% case by far. Floor is 0 while there is room, then the smallest kept value.
top_add(V, _, {_, Floor, _} = Top) when V =< Floor -> Top;
top_add(V, P, {0, _, Set}) ->
    {_, Rest} = gb_sets:take_smallest(Set),
    top(0, gb_sets:insert({V, P}, Rest));
top_add(V, P, {Room, _, Set}) -> top(Room - 1, gb_sets:insert({V, P}, Set)).

top(0, Set) -> {0, element(1, gb_sets:smallest(Set)), Set};
top(Room, Set) -> {Room, 0, Set}.

%%% ------------------------------------------------------------------ ets

%% The N largest tables by memory, descending. A named table is labelled by
%% its name, an unnamed one by its owner (name/2); tables that share a label
%% are summed first, so labels are unique and the many unnamed tables of one
%% process make one entry. Tables that vanish mid-scan are skipped.
-spec ets_tables(N :: 1..1000) ->
          {ok, [{Name :: binary(), MemoryBytes :: non_neg_integer(),
                 Objects :: non_neg_integer()}]}
        | {error, badarg}.
ets_tables(N) when is_integer(N), N >= 1, N =< 1000 ->
    Word = erlang:system_info(wordsize),
    Ctx = name_context(),
    {Sums, _} = lists:foldl(fun(T, Acc) -> table(T, Word, Ctx, Acc) end, {#{}, #{}}, ets:all()),
    Rows = lists:reverse(lists:keysort(2, [{L, M, O} || {L, {M, O}} <- maps:to_list(Sums)])),
    {ok, lists:sublist(Rows, N)};
ets_tables(_) -> {error, badarg}.

%% Owners caches owner names: a process may own thousands of tables.
table(T, Word, Ctx, {Sums, Owners} = Acc) ->
    case table_label(T, Ctx, Owners) of
        {Label, Owners1} ->
            case {ets:info(T, memory), ets:info(T, size)} of
                {M, O} when is_integer(M), is_integer(O) ->
                    {M0, O0} = maps:get(Label, Sums, {0, 0}),
                    {Sums#{Label => {M0 + M * Word, O0 + O}}, Owners1};
                _ -> Acc
            end;
        gone -> Acc
    end.

%% ets:all/0 lists named tables by name and unnamed ones by reference.
table_label(T, _, Owners) when is_atom(T) -> {cap(atom_to_binary(T, utf8)), Owners};
table_label(T, Ctx, Owners) ->
    case ets:info(T, owner) of
        undefined -> gone;
        Pid when is_map_key(Pid, Owners) -> {map_get(Pid, Owners), Owners};
        Pid -> Name = name(Pid, Ctx), {Name, Owners#{Pid => Name}}
    end.

%%% ---------------------------------------------------------------- locks

%% Lock counters summed per lock class over all instances and locations,
%% the N classes with most collisions first. Only emulators built with lock
%% counting keep them; elsewhere {ok, unavailable}. erts_debug:lcnt_collect/0
%% is internal, so a shape we do not know is reported rather than guessed.
-spec lock_counters(N :: 1..1000) ->
          {ok, unavailable}
        | {ok, [{Class :: binary(), Acquisitions :: non_neg_integer(),
                 Collisions :: non_neg_integer()}]}
        | {error, badarg | unexpected_lcnt_format}.
lock_counters(N) when is_integer(N), N >= 1, N =< 1000 ->
    case erlang:system_info(lock_counting) of
        true ->
            try lcnt_classes(erts_debug:lcnt_collect()) of
                Sums ->
                    Rows = [{C, T, K} || {C, {T, K}} <- maps:to_list(Sums)],
                    Desc = fun({_, T1, K1}, {_, T2, K2}) -> {K1, T1} >= {K2, T2} end,
                    {ok, lists:sublist(lists:sort(Desc, Rows), N)}
            catch _:_ -> {error, unexpected_lcnt_format}
            end;
        _ -> {ok, unavailable}
    end;
lock_counters(_) -> {error, badarg}.

%% As read by lcnt.erl: [{duration, _}, {locks, [{Name, Id, Type, Stats}]}],
%% a stat being {{File, Line}, {Tries, Colls, Timing}} with a histogram
%% appended since OTP 20. Sums are {Tries, Colls} per class.
lcnt_classes(Data) ->
    {locks, Locks} = lists:keyfind(locks, 1, Data),
    lists:foldl(fun({Name, _, _, Stats}, Acc) when is_list(Stats) ->
                        Class = cap(label(Name)),
                        Sum = maps:get(Class, Acc, {0, 0}),
                        Acc#{Class => lists:foldl(fun lcnt_stat/2, Sum, Stats)}
                end, #{}, Locks).

lcnt_stat({_Where, Counts}, Sum) -> lcnt_add(Counts, Sum);
lcnt_stat({_Where, Counts, _Histogram}, Sum) -> lcnt_add(Counts, Sum).

lcnt_add({Tries, Colls, _}, {T, K}) when is_integer(Tries), Tries >= 0,
                                         is_integer(Colls), Colls >= 0 ->
    {T + Tries, K + Colls}.

%%% ---------------------------------------------------------------- names

%% What this node offers, checked once per call rather than per process:
%% proc_lib labels (OTP 27) and reading one dictionary key (OTP 26.2).
name_context() ->
    _ = code:ensure_loaded(proc_lib),
    OneKey = try erlang:process_info(self(), {dictionary, '$initial_call'}) of
                 _ -> true
             catch error:badarg -> false
             end,
    {erlang:function_exported(proc_lib, get_label, 1), OneKey}.

%% A process's name as at most ?NAME_MAX bytes of UTF-8: its registered
%% name, else its proc_lib label, else its initial call (initial_call/3).
%% <<"exited">> if it went before we could tell.
name(P, Ctx) ->
    case erlang:process_info(P, registered_name) of
        {registered_name, Reg} -> name(P, Reg, <<>>, Ctx);
        [] ->
            case erlang:process_info(P, initial_call) of
                {initial_call, Init} -> name(P, [], initial_call(P, Init, Ctx), Ctx);
                undefined -> <<"exited">>
            end;
        undefined -> <<"exited">>
    end.

name(_, Reg, _, _) when is_atom(Reg) -> cap(atom_to_binary(Reg, utf8));
name(P, [], Init, {true, _}) ->
    case proc_lib:get_label(P) of
        undefined -> cap(Init);
        Label -> cap(label(Label))
    end;
name(_, [], Init, _) -> cap(Init).

%% For processes started by proc_lib, the initial call it records as
%% '$initial_call' rather than proc_lib:init_p itself.
initial_call(P, {proc_lib, init_p, _} = MFA, Ctx) ->
    case recorded_initial_call(P, Ctx) of
        undefined -> mfa(MFA);
        Recorded -> mfa(Recorded)
    end;
initial_call(_, MFA, _) -> mfa(MFA).

%% Before OTP 26.2 this copies the whole dictionary, but only for the few
%% processes that made a top list, and only if proc_lib started them.
recorded_initial_call(P, {_, true}) ->
    case erlang:process_info(P, {dictionary, '$initial_call'}) of
        {_, Value} -> Value;
        undefined -> undefined
    end;
recorded_initial_call(P, {_, false}) ->
    case erlang:process_info(P, dictionary) of
        {dictionary, Dict} -> proplists:get_value('$initial_call', Dict);
        undefined -> undefined
    end.

mfa({M, F, A}) when is_atom(M), is_atom(F), is_integer(A) ->
    <<(atom_to_binary(M, utf8))/binary, ":", (atom_to_binary(F, utf8))/binary, "/",
      (integer_to_binary(A))/binary>>;
mfa(Other) -> label(Other).

%% Any term as UTF-8; chars_limit keeps formatting a huge term cheap.
label(A) when is_atom(A) -> atom_to_binary(A, utf8);
label(B) when is_binary(B) ->
    case unicode:characters_to_binary(B) of
        Utf8 when is_binary(Utf8) -> Utf8;
        _ -> format(B)
    end;
label(T) -> format(T).

format(T) ->
    unicode:characters_to_binary(io_lib:format("~0tp", [T], [{chars_limit, ?NAME_MAX}])).

%% Cut on a character boundary: back off while the first byte dropped is a
%% UTF-8 continuation byte (2#10xxxxxx).
cap(B) when byte_size(B) =< ?NAME_MAX -> B;
cap(B) -> cap(B, ?NAME_MAX).

cap(B, K) ->
    case binary:at(B, K) band 2#11000000 of
        2#10000000 -> cap(B, K - 1);
        _ -> binary_part(B, 0, K)
    end.
