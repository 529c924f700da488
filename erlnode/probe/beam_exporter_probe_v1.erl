%%% The part of beam_exporter that runs inside the observed node.
%%%
%%% The exporter loads this module with code:load_binary/3 and calls it over
%%% RPC. Everything here is read-only towards the node, except the two
%%% node-global statistics flags that session/2 switches on and gives back.
%%% Every call is cheap and keeps its memory bounded whatever the node holds,
%%% and arguments outside the contract get {error, badarg}, never a crash.
%%%
%%% The name carries a version so that it never clashes with application code
%%% and so that a changed probe is a new module: never change the code behind
%%% a released name. The exporter must load it only when it is not loaded yet
%%% (erlang:module_loaded/1). Loading a loaded module again purges the older
%%% copy, and a purge kills the processes still running it, sessions and the
%%% msacc keeper included; a killed keeper cannot switch msacc back off.
-module(beam_exporter_probe_v1).

-export([session/2, top_processes/2, ets_tables/1, lock_counters/1]).

-define(KEEPER, beam_exporter_probe_v1_msacc).
-define(NAME_MAX, 120).

%%% ---------------------------------------------------------------- sessions

%% session(Owner :: pid(), Opts :: #{msacc => boolean()}) ->
%%     {ok, Session :: pid()} | {error, badarg}.
%%
%% Starts an unlinked session process that lives as long as Owner (monitored,
%% so a dropped connection ends it with 'DOWN' noconnection) or until it
%% receives the atom `stop'. It enables scheduler_wall_time itself because
%% ERTS counts that flag per process: it stays on while a process that enabled
%% it lives, which an RPC worker does not. With msacc => true it also joins
%% the msacc keeper below. When this returns, the flags are on.
session(Owner, Opts) when is_pid(Owner), is_map(Opts) ->
    case Opts of
        #{msacc := Msacc} when is_boolean(Msacc), map_size(Opts) =:= 1 ->
            start_session(Owner, Msacc);
        #{} when map_size(Opts) =:= 0 ->
            start_session(Owner, false);
        #{} ->
            {error, badarg}
    end;
session(_, _) ->
    {error, badarg}.

start_session(Owner, Msacc) ->
    Caller = self(),
    {Pid, Ref} = spawn_monitor(fun() -> session_init(Owner, Msacc, Caller) end),
    receive
        {Pid, ready} -> demonitor(Ref, [flush]);
        {'DOWN', Ref, process, Pid, _} -> ok  % killed: the owner will see it
    end,
    {ok, Pid}.

session_init(Owner, Msacc, Caller) ->
    Ref = monitor(process, Owner),
    erlang:system_flag(scheduler_wall_time, true),
    Msacc andalso msacc_join(),
    Caller ! {self(), ready},
    session_wait(Ref).

%% Nothing to clean up on the way out: ERTS drops our scheduler_wall_time
%% reference and the keeper sees us go, however we end.
session_wait(Ref) ->
    receive
        {'DOWN', Ref, process, _, _} -> ok;
        stop -> ok;
        _ -> session_wait(Ref)  % keep the mailbox empty
    end.

%% The microstate_accounting flag is a plain switch, not counted per process,
%% so one registered keeper monitors every session that wants it. It switches
%% msacc on for the first, and off after the last only if it was off before.
%% register/2 is atomic: of two sessions racing to start a keeper one wins,
%% the other kills its unused candidate and joins the winner.
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
            after 5000 -> demonitor(Ref, [flush])  % the name is not our keeper
            end
    end.

%% Mine is undefined until the first join, then whether we switched msacc on.
%% The flag is given back before the process (and with it the name) goes, so
%% a successor cannot switch it on before we switch it off. A candidate that
%% never gets a join (its starter died before registering it) times out.
keeper(Sessions, Mine) ->
    receive
        {join, Pid, Ref} when is_map_key(Pid, Sessions) ->
            Pid ! {Ref, joined},
            keeper(Sessions, Mine);
        {join, Pid, Ref} ->
            Mine1 = case Mine of
                        undefined ->
                            not erlang:system_flag(microstate_accounting, true);
                        _ -> Mine
                    end,
            monitor(process, Pid),
            Pid ! {Ref, joined},
            keeper(Sessions#{Pid => true}, Mine1);
        {'DOWN', _, process, Pid, _} ->
            case maps:remove(Pid, Sessions) of
                Left when map_size(Left) =:= 0 ->
                    Mine andalso erlang:system_flag(microstate_accounting, false),
                    ok;
                Left ->
                    keeper(Left, Mine)
            end;
        _ ->
            keeper(Sessions, Mine)
    after case Mine of undefined -> 10000; _ -> infinity end ->
        ok
    end.

%%% ----------------------------------------------------------- top processes

%% top_processes(N :: 1..1000, WindowMs :: 0..60000) ->
%%     {ok, #{memory := Top, message_queue_len := Top, reductions := Top,
%%            window_us := non_neg_integer(), processes := non_neg_integer()}}
%%     | {error, badarg}
%%   when Top :: [{Name :: binary(), Value :: pos_integer()}].
%%
%% Ranks all processes by memory (bytes), message queue length and reductions
%% done during a window, in one scan. The first pass remembers each process's
%% reductions (the only per-process memory, one map entry each); after the
%% window the second pass keeps three bounded top-N sets, so nothing else
%% grows with the node. Each Top is sorted by Value, descending, has at most N
%% entries and leaves out zero values. A process born during the window counts
%% its reductions from zero. window_us is the measured time between the
%% midpoints of the passes, which is the mean window of the processes;
%% processes is how many the second pass read. The calling process is left
%% out. Names are only looked up for the winners (see name/2).
top_processes(N, WindowMs) when is_integer(N), N >= 1, N =< 1000,
                                 is_integer(WindowMs), WindowMs >= 0,
                                 WindowMs =< 60000 ->
    T0 = erlang:monotonic_time(microsecond),
    Before = reductions(erlang:processes(), #{}),
    T1 = erlang:monotonic_time(microsecond),
    receive after WindowMs -> ok end,
    T2 = erlang:monotonic_time(microsecond),
    Empty = {N, 0, gb_sets:empty()},
    {Count, Mem, Mql, Red} =
        rank(erlang:processes(), self(), Before, 0, Empty, Empty, Empty),
    T3 = erlang:monotonic_time(microsecond),
    Tops = [top_list(T) || T <- [Mem, Mql, Red]],
    Ctx = name_context(),
    Names = maps:from_list([{P, name(P, Ctx)} || P <- lists:usort(
                                                  [P || L <- Tops, {_, P} <- L])]),
    [M, Q, R] = [[{map_get(P, Names), V} || {V, P} <- L] || L <- Tops],
    {ok, #{memory => M, message_queue_len => Q, reductions => R,
           window_us => max(0, (T2 + T3 - T0 - T1) div 2), processes => Count}};
top_processes(_, _) ->
    {error, badarg}.

reductions([P | Ps], Acc) ->
    case erlang:process_info(P, reductions) of
        {reductions, R} -> reductions(Ps, Acc#{P => R});
        undefined -> reductions(Ps, Acc)
    end;
reductions([], Acc) ->
    Acc.

%% The accumulators are separate arguments rather than a tuple so that a
%% process that wins nothing costs no allocation beyond process_info's reply.
rank([Me | Ps], Me, Before, Count, Mem, Mql, Red) ->
    rank(Ps, Me, Before, Count, Mem, Mql, Red);
rank([P | Ps], Me, Before, Count, Mem, Mql, Red) ->
    case erlang:process_info(P, [memory, message_queue_len, reductions]) of
        [{memory, M}, {message_queue_len, Q}, {reductions, R}] ->
            R0 = case Before of #{P := X} -> X; #{} -> 0 end,
            rank(Ps, Me, Before, Count + 1, top_add(M, P, Mem),
                 top_add(Q, P, Mql), top_add(R - R0, P, Red));
        undefined ->  % exited since erlang:processes/0
            rank(Ps, Me, Before, Count, Mem, Mql, Red)
    end;
rank([], _, _, Count, Mem, Mql, Red) ->
    {Count, Mem, Mql, Red}.

%% A bounded top-N is {Room, Floor, Set of {Value, Pid}}. Values not above
%% Floor are rejected with one comparison, the common case by far. Floor is 0
%% while there is room (zeros never rank) and the smallest kept value after.
top_add(V, _, {_, Floor, _} = Top) when V =< Floor ->
    Top;
top_add(V, P, {0, _, Set}) ->
    {_, Rest} = gb_sets:take_smallest(Set),
    top_full(0, gb_sets:insert({V, P}, Rest));
top_add(V, P, {Room, _, Set}) ->
    top_full(Room - 1, gb_sets:insert({V, P}, Set)).

top_full(0, Set) -> {0, element(1, gb_sets:smallest(Set)), Set};
top_full(Room, Set) -> {Room, 0, Set}.

top_list({_, _, Set}) -> lists:reverse(gb_sets:to_list(Set)).

%%% ---------------------------------------------------------------- ets

%% ets_tables(N :: 1..1000) ->
%%     {ok, [{Name :: binary(), MemoryBytes :: non_neg_integer(),
%%            Objects :: non_neg_integer()}]} | {error, badarg}.
%%
%% The N largest tables by memory, descending. A named table is labelled by
%% its name, an unnamed one by its owner (name/2), and tables sharing a label
%% are summed before ranking, so labels are unique: the many unnamed tables
%% of one process show up as one line. Tables that vanish mid-scan are
%% skipped. Owner names are looked up once per owner.
ets_tables(N) when is_integer(N), N >= 1, N =< 1000 ->
    Word = erlang:system_info(wordsize),
    Ctx = name_context(),
    {Sums, _} = lists:foldl(fun(T, Acc) -> table(T, Word, Ctx, Acc) end,
                            {#{}, #{}}, ets:all()),
    Rows = [{L, M, O} || {L, {M, O}} <- maps:to_list(Sums)],
    {ok, lists:sublist(lists:reverse(lists:keysort(2, Rows)), N)};
ets_tables(_) ->
    {error, badarg}.

table(T, Word, Ctx, {Sums, Owners} = Acc) ->
    case table_label(T, Ctx, Owners) of
        {Label, Owners1} ->
            case {ets:info(T, memory), ets:info(T, size)} of
                {M, O} when is_integer(M), is_integer(O) ->
                    {M0, O0} = maps:get(Label, Sums, {0, 0}),
                    {Sums#{Label => {M0 + M * Word, O0 + O}}, Owners1};
                _ ->
                    Acc
            end;
        gone ->
            Acc
    end.

%% ets:all/0 gives named tables by name and unnamed ones by reference.
table_label(T, _, Owners) when is_atom(T) ->
    {cap(atom_to_binary(T, utf8)), Owners};
table_label(T, Ctx, Owners) ->
    case ets:info(T, owner) of
        undefined -> gone;
        Pid when is_map_key(Pid, Owners) -> {map_get(Pid, Owners), Owners};
        Pid -> Name = name(Pid, Ctx), {Name, Owners#{Pid => Name}}
    end.

%%% ---------------------------------------------------------------- locks

%% lock_counters(N :: 1..1000) ->
%%     {ok, unavailable}
%%     | {ok, [{Class :: binary(), Acquisitions :: non_neg_integer(),
%%              Collisions :: non_neg_integer()}]}
%%     | {error, badarg | unexpected_lcnt_format}.
%%
%% Lock counters summed per lock class (all instances, all locations), the N
%% classes with most collisions first. Only emulators built with lock counting
%% have them; elsewhere {ok, unavailable}. The format of erts_debug:lcnt_collect/0
%% is internal (see lcnt.erl), so anything not as expected is reported rather
%% than guessed at.
lock_counters(N) when is_integer(N), N >= 1, N =< 1000 ->
    case erlang:system_info(lock_counting) of
        true ->
            try lcnt_classes(erts_debug:lcnt_collect()) of
                Classes ->
                    Rows = [{C, T, K} || {C, {T, K}} <- maps:to_list(Classes)],
                    Sorted = lists:sort(fun({_, T1, K1}, {_, T2, K2}) ->
                                                {K1, T1} >= {K2, T2} end, Rows),
                    {ok, lists:sublist(Sorted, N)}
            catch _:_ ->
                {error, unexpected_lcnt_format}
            end;
        _ ->
            {ok, unavailable}
    end;
lock_counters(_) ->
    {error, badarg}.

%% [{duration, _}, {locks, [{Name, Id, Type, Stats}]}], where each stat is
%% {{File, Line}, {Tries, Colls, {S, Ns, Timings}}} with a histogram appended
%% in newer releases.
lcnt_classes(Data) ->
    {locks, Locks} = lists:keyfind(locks, 1, Data),
    lists:foldl(fun({Name, _Id, _Type, Stats}, Acc) when is_list(Stats) ->
                        Class = cap(label(Name)),
                        Sum = lists:foldl(fun lcnt_stat/2,
                                          maps:get(Class, Acc, {0, 0}), Stats),
                        Acc#{Class => Sum}
                end, #{}, Locks).

lcnt_stat(Stat, {T, K}) ->
    {Tries, Colls} = case Stat of
                         {_, {Tr, Co, _}} -> {Tr, Co};
                         {_, {Tr, Co, _}, _} -> {Tr, Co}
                     end,
    true = is_integer(Tries) andalso Tries >= 0
        andalso is_integer(Colls) andalso Colls >= 0,
    {T + Tries, K + Colls}.

%%% ---------------------------------------------------------------- names

%% What this node offers for naming, checked once per call rather than once
%% per process: proc_lib labels (OTP 27) and reading a single dictionary key
%% with process_info/2 (OTP 26.2).
name_context() ->
    {module, proc_lib} = code:ensure_loaded(proc_lib),
    Key = try erlang:process_info(self(), {dictionary, '$initial_call'}) of
              _ -> true
          catch error:badarg -> false
          end,
    {erlang:function_exported(proc_lib, get_label, 1), Key}.

%% A process's UTF-8 name, at most ?NAME_MAX bytes: the registered name, else
%% the proc_lib label, else the initial call, which for processes started by
%% proc_lib is the one it records as '$initial_call' rather than its own
%% proc_lib:init_p. <<"exited">> if it went before we could tell.
name(P, {HasLabel, _} = Ctx) ->
    case erlang:process_info(P, registered_name) of
        {registered_name, Name} -> cap(atom_to_binary(Name, utf8));
        [] when HasLabel -> cap(labelled(P, Ctx));
        [] -> cap(initial_call(P, Ctx));
        undefined -> <<"exited">>
    end.

labelled(P, Ctx) ->
    case proc_lib:get_label(P) of
        undefined -> initial_call(P, Ctx);
        Label -> label(Label)
    end.

initial_call(P, Ctx) ->
    case erlang:process_info(P, initial_call) of
        {initial_call, {proc_lib, init_p, _} = MFA} ->
            case recorded_initial_call(P, Ctx) of
                {M, F, A} = Rec when is_atom(M), is_atom(F), is_integer(A) ->
                    mfa(Rec);
                _ -> mfa(MFA)
            end;
        {initial_call, MFA} -> mfa(MFA);
        undefined -> <<"exited">>
    end.

%% Without the single-key form (before OTP 26.2) this copies the whole
%% dictionary, but only for the few processes that made a top list.
recorded_initial_call(P, {_, true}) ->
    case erlang:process_info(P, {dictionary, '$initial_call'}) of
        {_, Value} -> Value;
        undefined -> undefined
    end;
recorded_initial_call(P, {_, false}) ->
    case erlang:process_info(P, dictionary) of
        {dictionary, Dict} ->
            case lists:keyfind('$initial_call', 1, Dict) of
                {_, Value} -> Value;
                false -> undefined
            end;
        undefined -> undefined
    end.

mfa({M, F, A}) when is_atom(M), is_atom(F), is_integer(A) ->
    <<(atom_to_binary(M, utf8))/binary, ":", (atom_to_binary(F, utf8))/binary,
      "/", (integer_to_binary(A))/binary>>;
mfa(Other) ->
    label(Other).

%% Any term as UTF-8. chars_limit keeps formatting a huge term cheap.
label(A) when is_atom(A) ->
    atom_to_binary(A, utf8);
label(B) when is_binary(B) ->
    case unicode:characters_to_binary(B) of
        Utf8 when is_binary(Utf8) -> Utf8;
        _ -> format(B)
    end;
label(T) ->
    format(T).

format(T) ->
    unicode:characters_to_binary(
      io_lib:format("~0tp", [T], [{chars_limit, ?NAME_MAX}])).

%% Cut at a character boundary: back off while the first byte dropped is a
%% UTF-8 continuation byte (2#10xxxxxx).
cap(B) when byte_size(B) =< ?NAME_MAX -> B;
cap(B) -> cap(B, ?NAME_MAX).

cap(B, K) ->
    case binary:at(B, K) band 2#11000000 of
        2#10000000 -> cap(B, K - 1);
        _ -> binary_part(B, 0, K)
    end.
