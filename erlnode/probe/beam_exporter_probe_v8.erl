%%% The part of beam_exporter that runs inside the observed node.
%%%
%%% The exporter loads it with code:load_binary/3 and calls it over RPC. It is
%%% read-only towards the node, except for the two statistics flags session/3
%%% switches on and gives back, the system monitor it may install when no
%%% one else holds it, and the process that keeps what grouping scans learnt
%%% (the groups cache), which exits ten idle minutes after the last such
%%% scan; each call keeps its memory bounded whatever
%%% the node holds, and arguments outside the contract get {error, badarg}.
%%%
%%% Every call takes an absolute Deadline, in this node's
%%% erlang:monotonic_time(millisecond): the exporter gives up then, so the
%%% call does too, answering {error, deadline} and leaving nothing behind.
%%%
%%% The version in the name keeps it apart from application code and makes a
%%% changed probe a new module: never change the code behind a released name.
%%% Load it only if erlang:module_loaded/1 says it is not loaded: loading it
%%% again purges the older copy, which kills the processes still running that
%%% copy, sessions and the msacc keeper included.
-module(beam_exporter_probe_v8).
-export([session/3, top_processes/6, ets_tables/2, lock_counters/2]).
-export([port_counts/2, system_monitor_events/1]).
-export([dist_events/2]).

-define(KEEPER, beam_exporter_probe_v8_msacc).
-define(SCAN, beam_exporter_probe_v8_scan).
-define(SYSMON, beam_exporter_probe_v8_sysmon).
-define(DIST_WATCHER, beam_exporter_probe_v8_dist).
-define(GROUPS_CACHE, beam_exporter_probe_v8_groups).
%% Most peers the dist watcher remembers; beyond, it forgets the one down longest.
-define(PEERS_MAX, 1000).
-define(NAME_MAX, 120).
%% Groups a scan tells apart in one slice; the rest share the last id and
%% count as groups_other.
-define(GROUPS_CAP, 4096).
%% The counter after the groups' in a grouping scan's sums: how many
%% processes had their group read (group_add/7), for groups_read.
-define(GROUPS_READ, (4 * ?GROUPS_CAP + 1)).
%% How long the groups cache outlives the last scan that used it.
-define(GROUPS_CACHE_IDLE_MS, 600000).
%% Where labels exist, each scan reads afresh one cached process in 64.
-define(GROUPS_REFRESH_MASK, 63).
%% Both passes of a scan read the clock every ?CHUNK processes.
-define(CHUNK, 128).
%% A first-pass entry packs a process's reductions, modulo 2^43, and its
%% group's id (16 bits) into one 64-bit word, a small integer in 59 bits.
-define(RED_MASK, (1 bsl 43 - 1)).
%% How long a session that lost its keeper waits for a successor.
-define(REJOIN_MS, 5000).

%%% ------------------------------------------------------------- sessions

%% Starts an unlinked session process that lives until Owner goes (it is
%% monitored, so a dropped connection ends it with 'DOWN' noconnection) or it
%% gets the atom `stop'. It enables scheduler_wall_time itself because ERTS
%% keeps that flag on only while a process that enabled it lives, and an RPC
%% worker dies right after the call. msacc => true also asks the msacc keeper
%% for microstate accounting; sysmon => Thresholds starts the session's
%% system monitor (sysmon_start/2), which installs erlang:system_monitor
%% only if nobody holds it. All are settled by the time this returns {ok, _};
%% a session that died before it was ready is {error, session_died}.
-spec session(Owner :: pid(), Opts :: #{msacc => boolean(), sysmon => sysmon_thresholds()},
              Deadline :: integer()) ->
          {ok, Session :: pid()} | {error, badarg | session_died | deadline}.
session(Owner, Opts, Deadline) when is_pid(Owner), is_map(Opts), is_integer(Deadline) ->
    Msacc = maps:get(msacc, Opts, false),
    Sysmon = maps:get(sysmon, Opts, none),
    Known = maps:size(maps:without([msacc, sysmon], Opts)) =:= 0,
    case Known andalso is_boolean(Msacc) andalso (Sysmon =:= none orelse sysmon_valid(Sysmon)) of
        true -> start_session(Owner, Msacc, Sysmon, Deadline);
        false -> {error, badarg}
    end;
session(_, _, _) -> {error, badarg}.

start_session(Owner, Msacc, Sysmon, Deadline) ->
    Caller = self(),
    {Pid, Ref} = spawn_monitor(fun() -> session_init(Owner, Msacc, Sysmon, Caller, Deadline) end),
    receive
        {Pid, ready} -> demonitor(Ref, [flush]), {ok, Pid};
        {'DOWN', Ref, process, Pid, deadline} -> {error, deadline};
        {'DOWN', Ref, process, Pid, _} -> {error, session_died}
    after remaining(Deadline) ->
        stop_process(Pid, Ref),
        {error, deadline}
    end.

%% A session killed outright does no cleanup: ERTS drops its
%% scheduler_wall_time reference, and the keeper and the system monitor see
%% it go.
session_init(Owner, Msacc, Sysmon, Caller, Deadline) ->
    Ref = monitor(process, Owner),
    erlang:system_flag(scheduler_wall_time, true),
    Keeper = case Msacc of
                 true -> msacc_join(false, Deadline);
                 false -> none
             end,
    Sysmon =:= none orelse sysmon_start(Sysmon, Deadline),
    Caller ! {self(), ready},
    session_wait(Ref, Keeper).

%% Keeper is none, or {Pid, MonitorRef, Ours}: Ours is whether an exporter's
%% keeper switched microstate accounting on. Every msacc session holds that
%% record, so that if the keeper is killed the sessions hand it to the
%% successor they start, which then gives msacc back after the last of them.
session_wait(Ref, none) ->
    receive
        {'DOWN', Ref, process, _, _} -> ok;
        stop -> ok;
        _ -> session_wait(Ref, none)  % keep the mailbox empty
    end;
session_wait(Ref, {K, KRef, Ours} = Keeper) ->
    receive
        {'DOWN', Ref, process, _, _} -> leave(Keeper);
        stop -> leave(Keeper);
        {'DOWN', KRef, process, K, _} -> session_wait(Ref, rejoin(Ours));
        _ -> session_wait(Ref, Keeper)
    end.

rejoin(Ours) -> msacc_join(Ours, erlang:monotonic_time(millisecond) + ?REJOIN_MS).

%% A keeper alive sees us go. A keeper that died before we could tell it
%% (the stop may come before its 'DOWN') gets a successor, which sees us go.
leave({K, _, Ours}) ->
    is_process_alive(K) orelse not Ours orelse begin rejoin(Ours), true end,
    ok.

%% microstate_accounting is a plain switch, not counted per process, so one
%% registered keeper monitors the sessions that want it, switches it on for
%% the first and off after the last, but only if an exporter switched it on.
%% register/2 is atomic: of two sessions racing to start a keeper, the loser
%% kills its idle candidate and joins the winner.
msacc_join(Ours, Deadline) ->
    case whereis(?KEEPER) of
        undefined ->
            K = spawn(fun() -> keeper(#{}, undefined) end),
            try register(?KEEPER, K) catch error:badarg -> exit(K, kill) end,
            msacc_join(Ours, Deadline);
        K ->
            Ref = monitor(process, K),
            K ! {join, self(), Ref, Ours},
            receive
                {Ref, joined, Ours1} -> {K, Ref, Ours1};  % the monitor stays
                {'DOWN', Ref, process, K, _} -> msacc_join(Ours, Deadline)  % it was leaving
            after remaining(Deadline) -> exit(deadline)
            end
    end.

%% Mine is undefined until the first join, then whether an exporter switched
%% msacc on: this keeper, or one before it, as a joining session says. The
%% flag is given back before the keeper exits and frees the name, so a
%% successor cannot switch it on before we switch it off. A candidate that
%% never hears from anyone (its starter died before registering it) leaves.
keeper(Sessions, Mine) ->
    receive
        {join, Pid, Ref, _} when is_map_key(Pid, Sessions) ->
            Pid ! {Ref, joined, Mine},
            keeper(Sessions, Mine);
        {join, Pid, Ref, Ours} when is_boolean(Ours) ->
            WasOn = erlang:system_flag(microstate_accounting, true),
            Mine1 = Mine =:= true orelse Ours orelse not WasOn,
            monitor(process, Pid),
            Pid ! {Ref, joined, Mine1},
            keeper(Sessions#{Pid => true}, Mine1);
        {'DOWN', _, process, Pid, _} ->
            case maps:remove(Pid, Sessions) of
                Left when map_size(Left) > 0 -> keeper(Left, Mine);
                _ -> Mine =:= true andalso erlang:system_flag(microstate_accounting, false)
            end;
        _ -> keeper(Sessions, Mine)
    after case Mine of undefined -> 10000; _ -> infinity end -> ok
    end.

%%% --------------------------------------------------- distribution events

%% What no statistic keeps: how often each link came up, and why links to
%% the cluster went down. One registered watcher per node subscribes to
%% net_kernel's node monitoring ({node_type, all}, with nodedown_reason) and
%% counts, from the moment it started: per peer, hidden nodes included, the
%% links that came up; per reason, the links to visible nodes that went down
%% (hidden ones are remote shells, exporters and other tools, whose comings
%% and goings say nothing of the cluster). It monitors every Owner that asks
%% (the exporters' own processes, whose 'DOWN' comes when their connection
%% drops) and exits after the last, which ends the subscription: nothing is
%% left behind. Its memory is bounded by ?PEERS_MAX peers and ten reasons.
%%
%% A link that was already up when the watcher started counts no up. The
%% watcher learns of a link from net_kernel, a moment after it changed.
-spec dist_events(Owner :: pid(), Deadline :: integer()) ->
          {ok, #{peers := [{Node :: binary(), Ups :: non_neg_integer()}],
                 downs := [{Reason :: binary(), Downs :: pos_integer()}]}}
        | {error, badarg | deadline}.
dist_events(Owner, Deadline) when is_pid(Owner), is_integer(Deadline) ->
    case remaining(Deadline) of
        0 -> {error, deadline};
        Left ->
            W = dist_watcher(),
            Ref = monitor(process, W),
            W ! {read, self(), Ref, Owner},
            receive
                {Ref, Counts} -> demonitor(Ref, [flush]), {ok, Counts};
                %% It was leaving, its last owner gone: ask its successor.
                {'DOWN', Ref, process, W, _} -> dist_events(Owner, Deadline)
            after Left ->
                demonitor(Ref, [flush]),
                {error, deadline}
            end
    end;
dist_events(_, _) -> {error, badarg}.

%% The registered watcher, started if none runs. register/2 is atomic: of
%% two callers racing, the loser kills its candidate and takes the winner.
dist_watcher() ->
    case whereis(?DIST_WATCHER) of
        undefined ->
            W = spawn(fun dist_watch_init/0),
            try register(?DIST_WATCHER, W) of
                true -> W
            catch error:badarg -> exit(W, kill), dist_watcher()
            end;
        W -> W
    end.

dist_watch_init() ->
    ok = net_kernel:monitor_nodes(true, [{node_type, all}, nodedown_reason]),
    dist_watch(#{}, #{}, #{}).

%% Owners: pid => true. Peers: node => {Ups, up | DownSince}. Downs:
%% Reason => N. A candidate that never hears from anyone (its
%% starter died before registering it, or before asking) leaves.
dist_watch(Owners, Peers, Downs) ->
    receive
        {read, From, Ref, Owner} ->
            Owners1 = case is_map_key(Owner, Owners) of
                          true -> Owners;
                          false -> monitor(process, Owner), Owners#{Owner => true}
                      end,
            From ! {Ref, #{peers => [{atom_to_binary(N, utf8), U} || {N, {U, _}} <- maps:to_list(Peers)],
                           downs => [{atom_to_binary(R, utf8), C} || {R, C} <- maps:to_list(Downs)]}},
            dist_watch(Owners1, Peers, Downs);
        {nodeup, Node, _Info} ->
            {Ups, _} = maps:get(Node, Peers, {0, up}),
            dist_watch(Owners, remember(Node, {Ups + 1, up}, Peers), Downs);
        {nodedown, Node, Info} ->
            Downs1 = case proplists:get_value(node_type, Info) of
                         visible ->
                             Reason = down_reason(proplists:get_value(nodedown_reason, Info)),
                             maps:update_with(Reason, fun(C) -> C + 1 end, 1, Downs);
                         hidden -> Downs
                     end,
            {Ups, _} = maps:get(Node, Peers, {0, up}),
            dist_watch(Owners, remember(Node, {Ups, erlang:monotonic_time()}, Peers), Downs1);
        {'DOWN', _, process, Owner, _} when is_map_key(Owner, Owners) ->
            case maps:remove(Owner, Owners) of
                Left when map_size(Left) > 0 -> dist_watch(Left, Peers, Downs);
                _ -> ok
            end;
        _ -> dist_watch(Owners, Peers, Downs)
    after case map_size(Owners) of 0 -> 10000; _ -> infinity end -> ok
    end.

%% Beyond ?PEERS_MAX peers (nodes with a fresh name each time, such as remote
%% shells), a new one replaces the peer down the longest; with every one up,
%% the new one is not counted.
remember(Node, Entry, Peers) when is_map_key(Node, Peers); map_size(Peers) < ?PEERS_MAX ->
    Peers#{Node => Entry};
remember(Node, Entry, Peers) ->
    case [{Since, N} || {N, {_, Since}} <- maps:to_list(Peers), Since =/= up] of
        [] -> Peers;
        Down -> {_, Oldest} = lists:min(Down), (maps:remove(Oldest, Peers))#{Node => Entry}
    end.

%% net_kernel's documented reasons; anything else a carrier gives is other.
down_reason(R) ->
    Known = [connection_setup_failed, no_network, net_kernel_terminated, shutdown, connection_closed,
             disconnect, net_tick_timeout, send_net_tick_failed, get_status_failed],
    case lists:member(R, Known) of
        true -> R;
        false -> other
    end.

%%% -------------------------------------------------------- system monitor

%% A node has one system monitor, set by whoever calls erlang:system_monitor/2
%% last: there is no compare-and-set, and no way to share it. A session asked
%% for it starts one monitor process, which monitors the session and exits
%% with it; ERTS clears the node's system monitor when the process holding it
%% terminates, however it ends (seen on OTP 25, 27 and 29), so a dropped or
%% killed session leaves nothing behind. The monitor process registers as
%% ?SYSMON first, so that of the sessions of several exporters on one node
%% exactly one tries to hold the system monitor and the others read its
%% counts: the thresholds are those of the session that got the name, and a
%% waiting session takes over when that one goes.
%%
%% long_gc and long_schedule are milliseconds, large_heap bytes (turned into
%% words here), long_message_queue the queue length that starts an event
%% (it ends below half of it); names bounds the {Event, Name} counters.
-type sysmon_thresholds() :: #{long_gc := pos_integer(), long_schedule := pos_integer(),
                               large_heap := pos_integer(), long_message_queue := pos_integer(),
                               names := 1..1000}.

%% The bounds are ours, not ERTS's (OTP 25 takes larger times): 2^31 - 1 ms
%% is 24 days, which fits a small integer on any emulator.
sysmon_valid(#{long_gc := G, long_schedule := S, large_heap := H, long_message_queue := Q,
               names := K} = T) when map_size(T) =:= 5 ->
    Ok = fun(V, Max) -> is_integer(V) andalso V >= 1 andalso V =< Max end,
    Ok(G, 1 bsl 31 - 1) andalso Ok(S, 1 bsl 31 - 1) andalso Ok(H, 1 bsl 48)
        andalso Ok(Q, 1 bsl 31 - 1) andalso Ok(K, 1000);
sysmon_valid(_) -> false.

%% While more events than this wait in the monitor's mailbox, events are
%% counted by type but not named: naming costs a process_info, counting a
%% map update, so a flood is worked off at the cheaper rate.
-define(SYSMON_BACKLOG, 1000).
%% A mailbox this long means events come faster than even counting them
%% goes: the monitor lets the system monitor go (an overload), counts what
%% is queued, and installs it again ?SYSMON_PAUSE_MS later if nobody else
%% took it meanwhile. This bounds its mailbox, and the node's memory for it.
-define(SYSMON_OVERLOAD, 10000).
-define(SYSMON_PAUSE_MS, 10000).
%% How often the monitor checks that it still holds the system monitor, or
%% installs it if whoever held it has let it go.
-define(SYSMON_RECHECK_MS, 30000).
%% A safety net: the counters are bounded far below this (words). A monitor
%% killed by it clears the node's system monitor, and the logger says why.
-define(SYSMON_MAX_HEAP, 1 bsl 20).
%% Upper bounds of the long GC histogram, milliseconds; the last bucket is
%% everything above.
-define(SYSMON_GC_BOUNDS, [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 30000]).

-record(sysmon, {session, thresholds, settings, names_max, ctx,
                 events = #{}, names = #{}, gc_counts, gc_sum_ms = 0,
                 overloads = 0, paused = false}).

%% Called by the session: waits until the monitor process has tried once to
%% take the system monitor, so that the first read after session/3 sees the
%% outcome.
sysmon_start(Thresholds, Deadline) ->
    Session = self(),
    {Pid, Ref} = spawn_monitor(fun() -> sysmon_init(Session, Thresholds) end),
    receive
        {Pid, settled} -> demonitor(Ref, [flush]), true;
        {'DOWN', Ref, process, Pid, _} -> true  % reads find no monitor of ours
    after remaining(Deadline) -> exit(deadline)
    end.

%% Events arrive as messages ERTS writes; off_heap keeps them out of the
%% heap that each garbage collection of this process copies. High priority
%% lets it keep up with the processes whose events it counts: at normal
%% priority, beside 200 processes collecting in a loop on 2 schedulers, its
%% mailbox reached 155,000 events and 57 MB; at high, 135 events and 90 KB.
%% Each event costs it about 40 reductions, far less than the collection
%% or the descheduling that made it.
sysmon_init(Session, #{large_heap := Bytes} = T) ->
    SRef = monitor(process, Session),
    process_flag(message_queue_data, off_heap),
    process_flag(priority, high),
    process_flag(max_heap_size, #{size => ?SYSMON_MAX_HEAP, kill => true, error_logger => true}),
    Words = max(1, Bytes div erlang:system_info(wordsize)),
    Settings = [{long_gc, maps:get(long_gc, T)}, {long_schedule, maps:get(long_schedule, T)},
                {large_heap, Words}, busy_port, busy_dist_port]
        ++ [{long_message_queue, {Q div 2, Q}} || has_long_message_queue(),
                                                 Q <- [maps:get(long_message_queue, T)]],
    S = #sysmon{session = SRef, thresholds = T, settings = Settings, names_max = maps:get(names, T),
                ctx = sysmon_context(),
                gc_counts = erlang:make_tuple(length(?SYSMON_GC_BOUNDS) + 1, 0)},
    sysmon_register(Session, S).

%% long_message_queue is absent on OTP 25 (system_monitor/2 answers badarg)
%% and present on 27 and 29; OTP 26 is not tested, so it is not asked there.
has_long_message_queue() ->
    list_to_integer(erlang:system_info(otp_release)) >= 27.

%% register/2 is atomic: of two sessions racing, one holds the name and the
%% other waits for it to go.
sysmon_register(Session, #sysmon{session = SRef} = S) ->
    try register(?SYSMON, self()) of
        true ->
            sysmon_claim(S#sysmon.settings),
            Session ! {self(), settled},
            erlang:send_after(?SYSMON_RECHECK_MS, self(), recheck),
            sysmon_loop(S)
    catch error:badarg ->
        case whereis(?SYSMON) of
            undefined -> sysmon_register(Session, S);
            Holder ->
                HRef = monitor(process, Holder),
                Session ! {self(), settled},
                receive
                    {'DOWN', HRef, process, _, _} -> sysmon_register(Session, S);
                    {'DOWN', SRef, process, _, _} -> exit(normal)
                end
        end
    end.

%% Installs this process as the system monitor only if nobody holds it. The
%% check and the set are two calls: a process that sets its own monitor in
%% between is overwritten by ours, and system_monitor/2 hands us its setting,
%% which we put back at once. Its events during those two calls come to us
%% and are lost to it; that window is all the harm, and it has no cure
%% without a compare-and-set in ERTS.
sysmon_claim(Settings) ->
    case erlang:system_monitor() of
        undefined ->
            case erlang:system_monitor(self(), Settings) of
                undefined -> ok;
                Previous ->
                    try erlang:system_monitor(Previous) of _ -> ok
                    catch error:badarg -> ok  % its holder has gone: ours stays
                    end
            end;
        _ -> ok
    end.

sysmon_loop(#sysmon{session = SRef} = S) ->
    receive
        {monitor, Who, Event, Info} when Event =:= long_gc; Event =:= long_schedule;
                                         Event =:= large_heap; Event =:= busy_port;
                                         Event =:= busy_dist_port; Event =:= long_message_queue ->
            sysmon_loop(sysmon_count(Who, Event, Info, S));
        {read, From, Ref} -> From ! {Ref, sysmon_report(S)}, sysmon_loop(S);
        recheck ->
            Self = self(),
            case erlang:system_monitor() of
                {Self, _} -> ok;
                _ when S#sysmon.paused -> ok;
                _ -> sysmon_claim(S#sysmon.settings)
            end,
            erlang:send_after(?SYSMON_RECHECK_MS, self(), recheck),
            sysmon_loop(S);
        resume ->
            sysmon_claim(S#sysmon.settings),
            sysmon_loop(S#sysmon{paused = false});
        {'DOWN', SRef, process, _, _} -> exit(normal);
        _ -> sysmon_loop(S)  % not an event we asked for: its counter would be unbounded
    end.

%% long_message_queue false is a queue falling back below half the
%% threshold: the end of an event already counted.
sysmon_count(_, long_message_queue, false, S) -> S;
sysmon_count(Who, Event, Info, #sysmon{events = Events} = S) ->
    S1 = S#sysmon{events = maps:update_with(Event, fun(N) -> N + 1 end, 1, Events)},
    S2 = case Event of
             long_gc -> sysmon_gc(Info, S1);
             _ -> S1
         end,
    Subject = case Event of
                  busy_port -> Info;       % the port; Who is the process it suspended
                  busy_dist_port -> Info;
                  _ -> Who
              end,
    {message_queue_len, Q} = erlang:process_info(self(), message_queue_len),
    S3 = case Q >= ?SYSMON_OVERLOAD andalso not S2#sysmon.paused of
             true -> sysmon_pause(S2);
             false -> S2
         end,
    Name = case Q < ?SYSMON_BACKLOG of
               true -> sysmon_name(Subject, S#sysmon.ctx);
               false -> unclassified
           end,
    sysmon_name_count(Event, Name, S3).

%% Lets the system monitor go if it is still ours, with the same care as
%% sysmon_claim/1: a setting that another process made between the check
%% and the clearing is put back.
sysmon_pause(#sysmon{overloads = N} = S) ->
    Self = self(),
    case erlang:system_monitor() of
        {Self, _} ->
            case erlang:system_monitor(undefined) of
                {Self, _} -> ok;
                undefined -> ok;
                Previous -> try erlang:system_monitor(Previous) catch error:badarg -> ok end
            end;
        _ -> ok
    end,
    erlang:send_after(?SYSMON_PAUSE_MS, self(), resume),
    S#sysmon{overloads = N + 1, paused = true}.

sysmon_gc(Info, #sysmon{gc_counts = Counts, gc_sum_ms = Sum} = S) when is_list(Info) ->
    case lists:keyfind(timeout, 1, Info) of
        {timeout, Ms} when is_integer(Ms), Ms >= 0 ->
            I = sysmon_bucket(Ms, ?SYSMON_GC_BOUNDS, 1),
            S#sysmon{gc_counts = setelement(I, Counts, element(I, Counts) + 1), gc_sum_ms = Sum + Ms};
        _ -> S
    end;
sysmon_gc(_, S) -> S.

sysmon_bucket(Ms, [Bound | _], I) when Ms =< Bound -> I;
sysmon_bucket(Ms, [_ | Bounds], I) -> sysmon_bucket(Ms, Bounds, I + 1);
sysmon_bucket(_, [], I) -> I.

%% The first names_max {Event, Name} pairs keep a counter each for the
%% monitor's life; later names count as <<"other">>. A name never loses its
%% counter, so no series of a counter vanishes and comes back while the
%% monitor lives; the price is that a name first seen late is only "other".
sysmon_name_count(Event, unclassified, #sysmon{names = Names} = S) ->
    S#sysmon{names = sysmon_bump({Event, <<"unclassified">>}, Names)};
sysmon_name_count(Event, Name, #sysmon{names = Names, names_max = Max} = S) ->
    Key = case is_map_key({Event, Name}, Names) orelse sysmon_named(Names) < Max of
              true -> {Event, Name};
              false -> {Event, <<"other">>}
          end,
    S#sysmon{names = sysmon_bump(Key, Names)}.

sysmon_bump(Key, Names) -> maps:update_with(Key, fun(N) -> N + 1 end, 1, Names).

%% The catch-all keys do not take a place among the names.
sysmon_named(Names) ->
    map_size(Names) - length([K || {_, N} = K <- maps:keys(Names),
                                   N =:= <<"other">> orelse N =:= <<"unclassified">>]).

%% One process_info per event, whose items never copy the dictionary: on OTP
%% 26.2 and later {dictionary, Key} reads one key (proc_lib's initial call,
%% and from OTP 27 its label); earlier releases get the registered name and
%% the initial call alone, which for a proc_lib process is proc_lib:init_p/5.
sysmon_name(P, {HasLabel, OneKey}) when is_pid(P) ->
    Keys = [{dictionary, '$initial_call'} || OneKey] ++ [{dictionary, '$process_label'} || OneKey, HasLabel],
    case erlang:process_info(P, [registered_name, initial_call | Keys]) of
        [{registered_name, Reg}, {initial_call, Init} | Found] ->
            Recorded = sysmon_key('$initial_call', Found),
            Label = sysmon_key('$process_label', Found),
            Call = case {Init, Recorded} of
                       {{proc_lib, init_p, _}, {_, _, _}} -> mfa(Recorded);
                       _ -> mfa(Init)
                   end,
            case {Reg, Label} of
                {[], undefined} -> cap(Call);
                {[], _} -> cap(label_name(Label));
                _ -> cap(atom_text(Reg))
            end;
        undefined -> <<"exited">>
    end;
sysmon_name(P, _) when is_port(P) ->
    case erlang:port_info(P, os_pid) of
        {os_pid, OsPid} when is_integer(OsPid) -> <<"spawn">>;
        {os_pid, _} ->
            case erlang:port_info(P, name) of
                {name, Name} -> driver_text(Name);
                undefined -> <<"closed">>
            end;
        undefined -> <<"closed">>
    end;
%% Any process may send the monitor a message of an event's shape; one that
%% names neither a pid nor a port is counted, not a crash of the monitor.
sysmon_name(_, _) -> <<"unknown">>.

%% name_context/0, but whether process_info/2 takes {dictionary, Key} in an
%% item list, which is the form sysmon_name/2 uses (seen on 27 and 29; 26.2
%% is not tested, so it is asked rather than assumed).
sysmon_context() ->
    {HasLabel, _} = name_context(),
    OneKey = try erlang:process_info(self(), [registered_name, {dictionary, '$initial_call'}]) of
                 _ -> true
             catch error:badarg -> false
             end,
    {HasLabel, OneKey}.

sysmon_key(Key, Found) ->
    case lists:keyfind({dictionary, Key}, 1, Found) of
        {_, Value} -> Value;
        false -> undefined
    end.

sysmon_report(#sysmon{events = Events, names = Names, thresholds = T, gc_counts = Gc, gc_sum_ms = Sum,
                      overloads = Overloads}) ->
    {message_queue_len, Queue} = erlang:process_info(self(), message_queue_len),
    {memory, Memory} = erlang:process_info(self(), memory),
    #{events => Events,
      names => [{E, N, C} || {{E, N}, C} <- maps:to_list(Names)],
      thresholds => T,
      long_gc_bounds_ms => ?SYSMON_GC_BOUNDS,
      long_gc_counts => tuple_to_list(Gc),
      long_gc_sum_ms => Sum,
      long_message_queue => has_long_message_queue(),
      overloads => Overloads, queue => Queue, memory => Memory}.

%% Who holds the node's system monitor, and if it is an exporter session's
%% monitor process, what it counted since it started: #{owner := none} when
%% nobody holds it, #{owner := other} when another process does (its pid is
%% not given, nor any of its settings). The counts come from the monitor
%% process, so the answer waits behind the events queued before it.
-spec system_monitor_events(Deadline :: integer()) ->
          {ok, #{owner := none | other | beam_exporter, _ => _}} | {error, badarg | deadline}.
system_monitor_events(Deadline) when is_integer(Deadline) ->
    case remaining(Deadline) > 0 andalso erlang:system_monitor() of
        false -> {error, deadline};
        undefined -> {ok, #{owner => none}};
        {Pid, _} ->
            case whereis(?SYSMON) of
                Pid -> sysmon_read(Pid, Deadline);
                _ -> {ok, #{owner => other}}
            end
    end;
system_monitor_events(_) -> {error, badarg}.

sysmon_read(Pid, Deadline) ->
    Ref = monitor(process, Pid),
    Pid ! {read, self(), Ref},
    receive
        {Ref, Report} -> demonitor(Ref, [flush]), {ok, Report#{owner => beam_exporter}};
        {'DOWN', Ref, process, Pid, _} -> {ok, #{owner => none}}
    after remaining(Deadline) ->
        demonitor(Ref, [flush]),
        {error, deadline}
    end.

%%% ----------------------------------------------------------- port counts

%% Counts the node's ports by driver: {Driver, Count}, most first, at most N
%% kinds, the rest summed under <<"other">>. A port started with open_port
%% {spawn, Command} is named after its command line, which no label may
%% carry: any port with an OS process counts as <<"spawn">>. The scan reads
%% two port_info items per port, which ERTS answers without a signal, and
%% checks the deadline every ?CHUNK ports; it holds the port list (8 bytes a
%% port) and one counter per kind. Ports closed during the scan are skipped.
-spec port_counts(N :: 1..1000, Deadline :: integer()) ->
          {ok, [{Driver :: binary(), Count :: pos_integer()}]} | {error, badarg | deadline}.
port_counts(N, Deadline) when is_integer(N), N >= 1, N =< 1000, is_integer(Deadline) ->
    Native = erlang:convert_time_unit(Deadline, millisecond, native),
    %% Left at 0: the deadline is checked before the first port too.
    case count_ports(erlang:ports(), 0, Native, #{}) of
        deadline -> {error, deadline};
        Counts ->
            {Top, Rest} = lists:split(min(N, map_size(Counts)),
                                      lists:reverse(lists:keysort(2, maps:to_list(Counts)))),
            Other = lists:sum([C || {_, C} <- Rest]),
            {ok, [{driver_text(D), C} || {D, C} <- Top] ++ [{<<"other">>, Other} || Other > 0]}
    end;
port_counts(_, _) -> {error, badarg}.

count_ports(Ps, 0, Deadline, Counts) ->
    case erlang:monotonic_time() >= Deadline of
        true -> deadline;
        false -> count_ports(Ps, ?CHUNK, Deadline, Counts)
    end;
count_ports([], _, _, Counts) -> Counts;
count_ports([P | Ps], Left, Deadline, Counts) ->
    Kind = case erlang:port_info(P, os_pid) of
               {os_pid, OsPid} when is_integer(OsPid) -> spawn;
               {os_pid, _} ->
                   case erlang:port_info(P, name) of
                       {name, Name} -> Name;
                       undefined -> closed
                   end;
               undefined -> closed
           end,
    case Kind of
        closed -> count_ports(Ps, Left - 1, Deadline, Counts);
        _ -> count_ports(Ps, Left - 1, Deadline, maps:update_with(Kind, fun(C) -> C + 1 end, 1, Counts))
    end.

driver_text(spawn) -> <<"spawn">>;
driver_text(Name) -> cap(text(Name)).

%%% -------------------------------------------------------- top processes

%% Ranks the processes by memory (bytes), message queue length and
%% reductions per second, in two passes over one process list, and with
%% Groups > 0 sums the same figures by group (see groups below).
%%
%% At most one scan runs on the node at a time, whoever asks: the scan runs
%% in a process of its own that holds the registered name ?SCAN while it
%% scans, and a second scan waits for the first to end (or for its own
%% deadline). At the deadline the caller kills the scan and answers
%% {error, deadline}, so the memory it held is freed at once; the scan
%% also stops by itself at its next clock read past the deadline.
%%
%% Reading memory costs a signal round trip per process (the target must be
%% scheduled to answer), about ten times a read of reductions or
%% message_queue_len, which ERTS serves without one. So memory is read only
%% for the processes of one slice of the table (erlang:phash2(Pid, 64 *
%% Slices) div 64 =:= Slice; the remainder is for the groups cache): with
%% Slices > 1 the caller ranks memory over Slices calls.
%%
%% The first pass ranks memory (in the slice) and mailboxes (all), and keeps
%% each process's reductions as one 64-bit integer in a binary parallel to
%% the list; the second pass reads reductions again, at least WindowMs after
%% the first pass ended. A process's rate is its own delta over its own
%% window, the time between its two reads: both passes read the clock every
%% ?CHUNK processes, and a read's time is interpolated by its place in its
%% chunk. Each estimate lies within its chunk, so a window is off by at most
%% the two chunks' durations (error_us, the largest for a ranked process).
%% Beyond the bounded top-N sets, the memory that grows with the node is the
%% process list (as processes/0 makes it), 8 bytes per process and 16 per
%% chunk, held by the scan only; with groups, one entry per group and a
%% copy of the groups cache (below), 8 bytes per process.
%%
%% Each Top is sorted by its value, descending, holds at most N entries and
%% no zeros, and names its processes by pid (pid_to_list/1, as this node's
%% shell reads it back with list_to_pid/1); reductions entries also carry
%% the process's window. Processes born during the call are not ranked.
%% details holds, for each winner still alive at the end of the call, what
%% an operator needs to find it: its bounded name (name/2), its proc_lib
%% label in full, what it runs and its figures at that moment, at one
%% process_info each. window_us is the mean window; processes is how many
%% the first pass read. The scan itself is left out.
%%
%% groups covers the processes of the slice, the same ones whose memory is
%% read: the group of a process is its name as name/2 gives it, read as
%% extra items of the call that reads its memory, so it costs no signal of
%% its own, and only for the processes the groups cache does not know. On a
%% node without the one-key dictionary read (before OTP 26.2) the group of
%% an unregistered proc_lib process is its initial call proc_lib:init_p/N,
%% since copying every dictionary would cost more than the scan. Each group
%% is {Name, Processes, MemoryBytes, MessageQueueLen, ReductionsPerSecond},
%% the last being the sum of its processes' rates as the reductions ranking
%% computes them; the Groups largest by memory come first, and groups_other
%% sums the rest, so that groups and groups_other add up to every process of
%% the slice the first pass read. groups_read is how many of those processes
%% had their group read, the others' being known to the groups cache: what
%% tells that the cache works, since its groups are the same either way.
-spec top_processes(N :: 1..1000, WindowMs :: 0..60000, Slice :: 0..63, Slices :: 1..64,
                    Groups :: 0..1000, Deadline :: integer()) ->
          {ok, #{memory := Top, message_queue_len := Top,
                 reductions := [{Pid :: binary(), PerSecond :: pos_integer(), WindowUs :: pos_integer()}],
                 details := [Details], window_us := non_neg_integer(),
                 error_us := non_neg_integer(), processes := non_neg_integer(),
                 groups_read := non_neg_integer(),
                 groups := [{Name :: binary(), Processes :: pos_integer(), MemoryBytes :: non_neg_integer(),
                             MessageQueueLen :: non_neg_integer(), ReductionsPerSecond :: non_neg_integer()}],
                 groups_other := {Processes :: non_neg_integer(), MemoryBytes :: non_neg_integer(),
                                  MessageQueueLen :: non_neg_integer(), ReductionsPerSecond :: non_neg_integer()}}}
        | {error, badarg | deadline | scan_failed}
      when Top :: [{Pid :: binary(), Value :: pos_integer()}],
           Details :: #{pid := binary(), name := binary(), label := binary(),
                        registered_name := binary(), current_function := binary(),
                        initial_call := binary(), memory := non_neg_integer(),
                        message_queue_len := non_neg_integer(), reductions := non_neg_integer()}.
top_processes(N, WindowMs, Slice, Slices, Groups, Deadline)
  when is_integer(N), N >= 1, N =< 1000, is_integer(WindowMs), WindowMs >= 0, WindowMs =< 60000,
       is_integer(Slices), Slices >= 1, Slices =< 64, is_integer(Slice), Slice >= 0, Slice < Slices,
       is_integer(Groups), Groups >= 0, Groups =< 1000, is_integer(Deadline) ->
    Caller = self(),
    {Pid, Ref} = spawn_monitor(fun() -> scan(Caller, N, WindowMs, Slice, Slices, Groups, Deadline) end),
    receive
        {Pid, Reply} -> demonitor(Ref, [flush]), Reply;
        {'DOWN', Ref, process, Pid, deadline} -> {error, deadline};
        {'DOWN', Ref, process, Pid, _} -> {error, scan_failed}
    after remaining(Deadline) ->
        stop_process(Pid, Ref),
        {error, deadline}
    end;
top_processes(_, _, _, _, _, _) -> {error, badarg}.

%% The scan's constants, passed as one tuple. items is what the first pass
%% reads of a process of the slice; id_bits is 32 when it groups them (each
%% process's group id follows its reductions), else 0; sums then holds the
%% groups' figures (group_add/6) and names the registered processes' names,
%% pid => name, as they were when the scan began.
-record(scan, {me, slice, slices, deadline, base, caller, items, sums, names = #{},
               known_pids = {}, known_size = 0, generation = 0, refresh = -1, whole = false}).

scan(Caller, N, WindowMs, Slice, Slices, GroupsMax, DeadlineMs) ->
    CRef = monitor(process, Caller),
    scan_lock(CRef, DeadlineMs),
    Deadline = erlang:convert_time_unit(DeadlineMs, millisecond, native),
    Ctx = name_context(),
    Ps = erlang:processes(),
    None = {N, 0, gb_sets:empty()},
    T0 = erlang:monotonic_time(),
    S = #scan{me = self(), slice = Slice, slices = Slices, deadline = Deadline, base = T0, caller = CRef,
              items = [memory, message_queue_len, reductions | group_items(GroupsMax, Ctx)],
              sums = case GroupsMax of 0 -> none; _ -> counters:new(?GROUPS_READ, []) end,
              names = registered_names(GroupsMax), whole = Slices =:= 1 andalso GroupsMax > 0},
    {KnownPids, [Run | Runs], Generation} = groups_cache_take(GroupsMax, {Slice, Slices}, S#scan.names),
    {Count, Total, Before, Stamps, Mem, Mql, {Mine, Learnt}} =
        first_pass(Ps, ?CHUNK, 0, 0, <<>>, <<0:64>>, None, None, {0, 0, 0, 0, 0}, 1, Run, Runs, 0, [], [], 0,
                   S#scan{known_pids = KnownPids, known_size = tuple_size(KnownPids),
                          generation = Generation, refresh = groups_refresh(Ctx)}),
    groups_cache_put(GroupsMax, {Slice, Slices}, case S#scan.whole of true -> Ps; false -> Mine end, Learnt,
                     S#scan.names, Generation + 1),
    T1 = T0 + stamp(Stamps, byte_size(Stamps) div 8 - 1),
    pause(T1 + erlang:convert_time_unit(WindowMs, millisecond, native), S),
    T2 = erlang:monotonic_time(),
    {Red, T3} = second_pass(Ps, 0, ?CHUNK, T2 - T0, [], Before, None, {Stamps, Total}, S),
    [M, Q, R] = [top_list(T) || T <- [Mem, Mql, Red]],
    check(S),
    Winners = lists:usort([P || L <- [M, Q], {_, P} <- L] ++ [P || {_, {P, _, _}} <- R]),
    Details = lists:append([details(P, Ctx) || P <- Winners]),
    {GroupList, Other} = groups(GroupsMax, S#scan.sums),
    Us = fun(T) -> erlang:convert_time_unit(T, native, microsecond) end,
    Pids = fun(L) -> [{pid_binary(P), V} || {V, P} <- L] end,
    Caller ! {self(), {ok, #{memory => Pids(M), message_queue_len => Pids(Q),
                             reductions => [{pid_binary(P), V, max(1, Us(W))} || {V, {P, W, _}} <- R],
                             details => Details,
                             window_us => max(0, Us((T2 + T3 - T0 - T1) div 2)),
                             error_us => Us(lists:max([0 | [E || {_, {_, _, E}} <- R]])),
                             processes => Count, groups_read => groups_read(S#scan.sums),
                             groups => GroupList, groups_other => Other}}}.


%% Takes the node's one scan slot, waiting for the scan that holds it.
scan_lock(CRef, Deadline) ->
    try register(?SCAN, self()) of
        true -> ok
    catch error:badarg ->
        case whereis(?SCAN) of
            undefined -> scan_lock(CRef, Deadline);
            Holder ->
                HRef = monitor(process, Holder),
                receive
                    {'DOWN', HRef, process, _, _} -> scan_lock(CRef, Deadline);
                    {'DOWN', CRef, process, _, _} -> exit(normal)
                after remaining(Deadline) -> exit(deadline)
                end
        end
    end.

%% Gives up past the deadline, or when nobody waits for the answer.
check(#scan{deadline = Deadline, caller = CRef}) ->
    erlang:monotonic_time() >= Deadline andalso exit(deadline),
    receive {'DOWN', CRef, process, _, _} -> exit(normal) after 0 -> ok end.

%% Waits until At (native), within the deadline.
pause(At, #scan{deadline = Deadline, caller = CRef} = S) ->
    Ms = erlang:convert_time_unit(min(At, Deadline) - erlang:monotonic_time(), native, millisecond),
    receive {'DOWN', CRef, process, _, _} -> exit(normal) after max(0, Ms) -> ok end,
    check(S).

%% Chunk I's start time, relative to the scan's start.
stamp(Stamps, I) -> binary:decode_unsigned(binary_part(Stamps, I * 8, 8)).

%% One call per process keeps it to at most one signal. Handling that
%% signal costs the process one reduction (on OTP 25, 27 and 29 alike) after
%% it has read its count for us, so its count before the window is R + 1:
%% otherwise every idle process of the slice would rank at one reduction.
%% Every process, the scan and the exited included, gets its 8 bytes: its
%% count modulo 2^43 and its group's id (0 for none, as for every process
%% outside the slice or without groups), so that the second pass finds
%% them by position; appending to a binary held only here is done in
%% place. Four bytes more per entry, for the id, made a scan 3.6% dearer
%% (paired runs, 100,000 processes, OTP 27). At, Run and Runs are where the
%% walk of the groups cache stands (known/6); Keep and Learnt build, in
%% runs, what the next scan is to know (learn/4). Stamps holds each chunk's
%% start and, last, the pass's end, relative to the scan's start.
first_pass([], _, Count, Total, Before, Stamps, Mem, Mql, Last, _, _, _, Keep, Learnt, Mine, N, S) ->
    group_flush(Last, S),
    {Count, Total, Before, <<Stamps/binary, (clock(S)):64>>, Mem, Mql,
     {lists:reverse(Mine), lists:reverse([{N, Keep} | Learnt])}};
first_pass(Ps, 0, Count, Total, Before, Stamps, Mem, Mql, Last, At, Run, Runs, Keep, Learnt, Mine, N, S) ->
    check(S),
    first_pass(Ps, ?CHUNK, Count, Total, Before, <<Stamps/binary, (clock(S)):64>>, Mem, Mql, Last, At, Run, Runs,
               Keep, Learnt, Mine, N, S);
first_pass([P | Ps], Left, Count, Total, Before, Stamps, Mem, Mql, Last, At0, {RunEnd, RunId} = Run0, Runs0, Keep0,
           Learnt0, Mine, N, #scan{me = Me, slice = Slice, slices = Slices, items = Items, known_pids = KnownPids,
                                   known_size = KnownSize, generation = Generation, refresh = Refresh} = S)
  when P =/= Me ->
    H = erlang:phash2(P, Slices bsl 6),
    case H bsr 6 of
        Slice ->
            %% Known is the group the cache keeps for P, 0 for none.
            if
                At0 > KnownSize ->
                    Known = 0, At = At0, Run = Run0, Runs = Runs0;
                At0 =< RunEnd, element(At0, KnownPids) =:= P, (H + Generation) band Refresh =/= 0 ->
                    Known = RunId, At = At0 + 1, Run = Run0, Runs = Runs0;
                true ->
                    {Known, At, Run, Runs} = known(P, H, At0, Run0, Runs0, S)
            end,
            case erlang:process_info(P, case Known of 0 -> Items; _ -> [memory, message_queue_len, reductions] end) of
                [{memory, M}, {message_queue_len, Q}, {reductions, R} | Named] ->
                    {Id, _, _, _, Keep} = Group =
                        case Last of
                            {Id0, C, M0, Q0, _} when Id0 =:= Known, Known =/= 0 ->
                                {Known, C + 1, M0 + M, Q0 + Q, Known};
                            _ -> group_add(P, Named, Known, M, Q, Last, S)
                        end,
                    first_pass(Ps, Left - 1, Count + 1, Total + 1,
                               <<Before/binary, ((R + 1) band ?RED_MASK):48, Id:16>>, Stamps, top_add(M, P, Mem),
                               top_add(Q, P, Mql), Group, At, Run, Runs, Keep, learn(Keep, Keep0, N, Learnt0),
                               learn_pid(P, Mine, S), N + 1, S);
                undefined ->
                    {Keep, Learnt, N1} = passed(Keep0, Learnt0, N, S),
                    first_pass(Ps, Left - 1, Count, Total + 1, <<Before/binary, 0:64>>, Stamps, Mem, Mql,
                               Last, At, Run, Runs, Keep, Learnt, Mine, N1, S)
            end;
        _ ->
            case erlang:process_info(P, [message_queue_len, reductions]) of
                [{message_queue_len, Q}, {reductions, R}] ->
                    first_pass(Ps, Left - 1, Count + 1, Total + 1, <<Before/binary, (R band ?RED_MASK):48, 0:16>>,
                               Stamps, Mem, top_add(Q, P, Mql), Last, At0, Run0, Runs0, Keep0, Learnt0, Mine, N, S);
                undefined ->
                    first_pass(Ps, Left - 1, Count, Total + 1, <<Before/binary, 0:64>>, Stamps, Mem, Mql,
                               Last, At0, Run0, Runs0, Keep0, Learnt0, Mine, N, S)
            end
    end;
first_pass([_Me | Ps], Left, Count, Total, Before, Stamps, Mem, Mql, Last, At, Run, Runs, Keep0, Learnt0, Mine,
           N, S) ->
    {Keep, Learnt, N1} = passed(Keep0, Learnt0, N, S),
    first_pass(Ps, Left - 1, Count, Total + 1, <<Before/binary, 0:64>>, Stamps, Mem, Mql, Last, At, Run, Runs, Keep,
               Learnt, Mine, N1, S).

%% The slice's processes, newest first, for the next scan of the slice to
%% walk: only with groups, which keep a cache, and only on a node of more
%% than one slice. When one slice covers the node, the cache keeps
%% erlang:processes/0's own list instead, as the scan read it: a list built
%% process by process, and the garbage of its copies, made a grouping scan
%% of 95,000 processes 5 points dearer (paired runs, OTP 25).
learn_pid(_, Mine, #scan{sums = none}) -> Mine;
learn_pid(_, Mine, #scan{whole = true}) -> Mine;
learn_pid(P, Mine, _) -> [P | Mine].

%% A process of the list that the scan did not group (it exited, or is the
%% scan itself): when the cache keeps the whole list, it keeps no id (0)
%% for its place; otherwise the place is not in the cache's list.
passed(Keep0, Learnt0, N, #scan{whole = true}) -> {0, learn(0, Keep0, N, Learnt0), N + 1};
passed(Keep0, Learnt0, N, _) -> {Keep0, Learnt0, N}.

%% The cache's answer for P when the quick test above fails: past the run
%% of ids that ended, past the processes before P in the cache's list (they
%% have exited since), and 0 if P is unknown or read afresh this scan. At
%% is where the walk stands in the cache's list (1-based), Run = {RunEnd,
%% RunId} the run of equal ids that covers it (it ends at RunEnd), and Runs
%% the runs after it. H is P's hash (first_pass/17), for the refresh
%% (groups_refresh/1).
%%
%% Both lists are in the table's order, which is not the pids' order (on
%% OTP 25 a pid of a slot freed and taken again sorts after pids listed
%% behind it), so P and the process Q where the walk stands cannot be
%% compared. But Q, a process of the last scan, is before P in the table
%% only if the walk has passed it, which it has not: so if Q still lives, P
%% comes before it and is new; if Q has exited, the walk moves past it. A
%% process that exits meanwhile is passed early, and costs its read alone.
known(_, _, At, Run, Runs, #scan{known_size = Size}) when At > Size -> {0, At, Run, Runs};
known(P, H, At, {RunEnd, _}, [Run | Runs], S) when At > RunEnd -> known(P, H, At, Run, Runs, S);
known(P, H, At, {_, Id} = Run, Runs, #scan{known_pids = Pids, generation = Generation, refresh = Refresh} = S) ->
    case element(At, Pids) of
        P when (H + Generation) band Refresh =:= 0 -> {0, At + 1, Run, Runs};
        P -> {Id, At + 1, Run, Runs};
        Q ->
            case lives(Q) of
                false -> known(P, H, At + 1, Run, Runs, S);
                true -> {0, At, Run, Runs}
            end
    end.

%% Whether Q, where the walk stands, still lives. Every new process before
%% Q asks again, and is_process_alive/1 waits for a round trip through Q's
%% signal queue whenever Q has signals pending (a busy process often has),
%% so a living Q is asked about once per scan: the scan's dictionary keeps
%% it under {alive}, a key no group has (group_key/1).
lives(Q) ->
    case get({alive}) of
        Q -> true;
        _ ->
            case is_process_alive(Q) of
                true -> put({alive}, Q), true;
                false -> false
            end
    end.

%% What the next scan is to know, as runs of equal ids, {LastPlace, Id},
%% newest first: Keep is the id kept for the process at place Total + 1 of
%% this scan's list, and Keep0 the current run's.
learn(Keep, Keep, _, Learnt) -> Learnt;
learn(_, Keep0, Total, Learnt) -> [{Total, Keep0} | Learnt].

clock(#scan{base = Base}) -> erlang:monotonic_time() - Base.

%% A process that exited before the first pass stays exited: pids are not
%% reused that soon. The integers are read with BIFs rather than a binary
%% match, whose instructions as OTP 25 compiles them OTP 29 cannot load.
%% Busy holds the chunk's processes that did work, {Index, Pid, Delta,
%% GroupId}: their windows are known once the chunk's end time is.
second_pass([], At, _, Start, Busy, _, Red, First, S) ->
    End = clock(S),
    {rank_chunk(Busy, At, Start, End, First, Red, S), End + S#scan.base};
second_pass(Ps, At, 0, Start, Busy, Before, Red, First, S) ->
    End = clock(S),
    Red1 = rank_chunk(Busy, At, Start, End, First, Red, S),
    check(S),
    second_pass(Ps, At, ?CHUNK, End, [], Before, Red1, First, S);
second_pass([P | Ps], At, Left, Start, Busy, Before, Red, First, #scan{me = Me} = S)
  when P =/= Me ->
    case erlang:process_info(P, reductions) of
        {reductions, R} ->
            Entry = binary:decode_unsigned(binary_part(Before, At * 8, 8)),
            %% A count only grows, by far less than 2^42 in a window.
            case (R - (Entry bsr 16)) band ?RED_MASK of
                D when D > 0, D < 1 bsl 42 ->
                    second_pass(Ps, At + 1, Left - 1, Start, [{At, P, D, Entry band 16#ffff} | Busy], Before, Red,
                                First, S);
                _ -> second_pass(Ps, At + 1, Left - 1, Start, Busy, Before, Red, First, S)
            end;
        undefined -> second_pass(Ps, At + 1, Left - 1, Start, Busy, Before, Red, First, S)
    end;
second_pass([_Me | Ps], At, Left, Start, Busy, Before, Red, First, S) ->
    second_pass(Ps, At + 1, Left - 1, Start, Busy, Before, Red, First, S).

%% Both passes cut the one list into the same chunks, so process I is at
%% the same place in chunk I div ?CHUNK of each; its read is placed at the
%% middle of its share of the chunk. Ranked by reductions per second, each
%% entry keeps its window and the bound on that window's error (native).
%% With groups, each rate is added to its group's (rate_add/3).
rank_chunk([], _, _, _, _, Red, _) -> Red;
rank_chunk(Busy, Next, Start2, End2, {Stamps, Total}, Red, S) ->
    C = (Next - 1) div ?CHUNK,
    Len = min(?CHUNK, Total - C * ?CHUNK),
    Start1 = stamp(Stamps, C),
    End1 = stamp(Stamps, C + 1),
    PerSecond = erlang:convert_time_unit(1, second, native),
    lists:foldl(fun({I, P, D, Group}, Top) ->
                        Place = 2 * (I - C * ?CHUNK) + 1,
                        Read1 = Start1 + (End1 - Start1) * Place div (2 * Len),
                        Read2 = Start2 + (End2 - Start2) * Place div (2 * Len),
                        W = max(1, Read2 - Read1),
                        Rate = D * PerSecond div W,
                        rate_add(S, Group, Rate),
                        top_add(Rate, {P, W, (End1 - Start1) + (End2 - Start2)}, Top)
                end, Red, Busy).

%% Labels can come after a scan first read a process's group: where
%% there are labels, one known process in 64 is read afresh.
groups_refresh({true, true}) -> ?GROUPS_REFRESH_MASK;
groups_refresh(_) -> -1.

%%% ------------------------------------------------------ process groups

%% What the first pass reads, beyond memory, mailbox and reductions, to
%% tell a process's group as name/2 would: all of it answered by the signal
%% that reads memory. Where the dictionary can be read one key at a time
%% (OTP 26.2), the proc_lib label (OTP 27) and '$initial_call' are read as
%% such; before that, not at all. The registered name is not among them:
%% each item makes every process's answer longer, and registered_name cost
%% as much as initial_call (paired runs at 100,000 processes, OTP 25: +11%
%% with both, +5% with initial_call alone), where few processes have a name
%% to give. registered_names/1 reads them all once instead.
group_items(0, _) -> [];
group_items(_, {Label, OneKey}) ->
    [initial_call]
        ++ [{dictionary, '$process_label'} || Label, OneKey]
        ++ [{dictionary, '$initial_call'} || OneKey].

%% The registered processes, pid => name, read once when a grouping scan
%% begins, but for the scan itself (registered as ?SCAN, and not grouped).
%% A process registered, or unregistered, during the scan is grouped as it
%% was named then; the top-N details read names afresh.
registered_names(0) -> #{};
registered_names(_) ->
    Me = self(),
    maps:from_list([{P, N} || N <- erlang:registered(), P <- [whereis(N)], is_pid(P), P =/= Me]).

%% A group's figures are four counters (processes, memory, message queue
%% length, reductions per second) at 4 * (Id - 1) + 1.. of sums: adding to a
%% counter allocates nothing, where a map is copied on every update (a
%% flat map of up to 32 groups, whole) and even a tuple put in the process
%% dictionary per process made the scan a measured 20% dearer. The scan's
%% own dictionary, which it holds alone and which goes with it, maps each
%% group's key (group_key/1) to its id, and {groups} to the last id given
%% (and {alive} to a pid, lives/1, which no integer test takes for an id);
%% the groups cache (below) carries both from scan to scan, so an id means
%% one key for as long as the cache lives. Past ?GROUPS_CAP - 1 groups, new
%% keys share the last id, which groups/2 counts as other.
%%
%% Last is {Id, Processes, Memory, MessageQueueLen, Keep}: the group of the
%% process before, what it holds not yet added to the counters, and the id
%% the cache may keep for that process (0 for a registered one, whose group
%% is its name only while it holds it). The next process often shares the
%% group (most of a node's processes are often of one kind): then its
%% figures are added when the run ends, at three counter updates per run
%% rather than per process. Known is the group the cache gave this process,
%% 0 for none, and then Named is what process_info answered for
%% group_items/2. The first Last, and the only one without groups, is
%% {0, 0, 0, 0, 0}: no group has id 0, so no process is taken for it.
group_add(_, [], 0, _, _, Last, _) -> Last;
group_add(_, _, Known, M, Q, Last, S) when Known =/= 0 -> group_add(Known, Known, M, Q, Last, S);
group_add(P, Named, _, M, Q, Last, #scan{names = Names, sums = Sums} = S) ->
    counters:add(Sums, ?GROUPS_READ, 1),
    case Names of
        #{P := Reg} -> group_add(group_id(Reg), 0, M, Q, Last, S);
        _ -> Id = group_id(group_key(Named)), group_add(Id, Id, M, Q, Last, S)
    end.

group_add(Id, Keep, M, Q, {Id, C, M0, Q0, _}, _) -> {Id, C + 1, M0 + M, Q0 + Q, Keep};
group_add(Id, Keep, M, Q, Last, S) ->
    group_flush(Last, S),
    {Id, 1, M, Q, Keep}.

groups_read(none) -> 0;
groups_read(Sums) -> counters:get(Sums, ?GROUPS_READ).

group_flush({0, _, _, _, _}, _) -> ok;
group_flush({Id, C, M, Q, _}, #scan{sums = Sums}) ->
    At = 4 * Id - 3,
    counters:add(Sums, At, C),
    counters:add(Sums, At + 1, M),
    counters:add(Sums, At + 2, Q).

group_id(Key) ->
    case get(Key) of
        undefined ->
            Id = case get({groups}) of
                     undefined -> 1;
                     N -> min(N + 1, ?GROUPS_CAP)
                 end,
            put({groups}, Id),
            put(Key, Id),
            Id;
        Id -> Id
    end.

%% A raw term, as cheap to make as possible: the text comes once per group,
%% at the end (group_name/1). The order is name/4's, the registered name
%% (group_add/6) first. A registered name is an atom and an initial call a
%% 3-tuple, so neither is taken for {label, _}, {groups}, {alive} or an id.
group_key([{initial_call, Init} | Dict]) -> group_key(Init, Dict).

group_key(_, [{{dictionary, '$process_label'}, Label} | _]) when Label =/= undefined ->
    {label, label_leaf(Label)};
group_key(Init, [{{dictionary, '$process_label'}, _} | Dict]) -> group_key(Init, Dict);
group_key({proc_lib, init_p, _}, [{{dictionary, '$initial_call'}, {_, _, _} = Recorded}]) -> Recorded;
group_key(Init, _) -> Init.

group_name(Reg) when is_atom(Reg) -> cap(atom_text(Reg));
group_name({label, Leaf}) -> cap(text(Leaf));
group_name(MFA) -> cap(mfa(MFA)).

%% Adds a process's rate to its group's, when there are groups (0: none).
rate_add(#scan{sums = none}, _, _) -> ok;
rate_add(_, 0, _) -> ok;
rate_add(#scan{sums = Sums}, Id, Rate) -> counters:add(Sums, 4 * Id, Rate).

%%% ---------------------------------------------------------- groups cache

%% A process's group does not change while it lives, but reading it is most
%% of what grouping costs: three more items in the call that reads its
%% memory, two of them dictionary look-ups (+35% on a scan of 100,000
%% proc_lib processes, OTP 27). So scans keep what they learnt in a
%% registered process, the groups cache, and read groups only for the
%% processes it does not know. A look-up by pid, in a map or an ETS table,
%% cost as much as the items it saved: between two process_info calls each
%% look-up misses the CPU's caches. But erlang:processes/0 lists processes in
%% the order of their slots in the process table, and a process keeps its
%% slot for life, so the cache holds the last scan's list and the scan
%% walks it beside its own: a known process is where the walk stands, once
%% the exited ones before it are passed (first_pass/17, known/6). That
%% order is not the pids' order, so the walk never compares pids: on OTP 25
%% it differs once slots are freed and taken again, and a walk that took
%% one for the other read most known processes afresh (three in four of a
%% slice of 52,000, through the exporter, at 105,000 processes).
%%
%% Each slice (of a node scanned in Slices slices) has a cache of its own,
%% {Pids, Runs, Keys, Names, Generation}: the slice's processes at its last
%% scan, as a tuple (on a node of one slice, erlang:processes/0's list as
%% that scan read it, with id 0 for the exited and the scan itself); the
%% ids it keeps for them as runs of equal ids over places in that list,
%% [{LastPlace, Id}] in order (0 for none; most neighbours share
%% a group, so there are few runs, and reading an id costs a comparison);
%% its dictionary of group keys and ids; the registered processes when
%% that scan began, pid => name; and how many scans it has seen. A
%% scan takes it, so that nobody else holds it meanwhile, and puts its own
%% back after its first pass; a scan killed at its deadline loses it, and
%% the next one starts afresh. Between scans it holds 8 bytes per process
%% and 16 per run, and it exits ?GROUPS_CACHE_IDLE_MS after the last scan
%% that used it.
%%
%% A group is read once in a process's life. Where proc_lib labels exist,
%% each scan also reads afresh one known process in 64 (by a hash of its
%% pid and the generation), so that a label set after a scan first met its
%% process is seen within 64 scans. Its place in the list would not do:
%% where each scan's own process takes a slot before it, the place falls
%% by one as the generation grows by one, and the process is never read.
%%
%% A registered process's group is its name, which every scan reads
%% (registered_names/1): the cache keeps no id for a process registered
%% when its group is read, and the scan that takes the cache drops the ids
%% of those registered since the last scan began (unkeep/2), so that the
%% processes it knows need no look-up of their name. Finding those in the
%% cache's list takes one pass over it, only when some process has been
%% registered since.
groups_cache_take(0, _, _) -> {{}, [{0, 0}], 0};
groups_cache_take(_, Slice, Names) ->
    case whereis(?GROUPS_CACHE) of
        undefined -> {{}, [{0, 0}], 0};
        Cache ->
            Ref = monitor(process, Cache),
            Cache ! {take, self(), Ref, Slice},
            receive
                {Ref, {Pids, [_ | _] = Runs, Keys, Named, Generation}} when is_tuple(Pids), is_list(Keys),
                                                                           is_map(Named), is_integer(Generation) ->
                    demonitor(Ref, [flush]),
                    [put(Key, Id) || {Key, Id} <- Keys],
                    Since = maps:filter(fun(P, _) -> not is_map_key(P, Named) end, Names),
                    {Pids, unkeep(Runs, places(Since, Pids, tuple_size(Pids), [])), Generation};
                {Ref, _} -> demonitor(Ref, [flush]), {{}, [{0, 0}], 0};
                {'DOWN', Ref, process, _, _} -> {{}, [{0, 0}], 0}
            end
    end.

%% The places in the cache's list of the processes in Set (a map keyed by
%% pid), ascending.
places(Set, _, _, Ats) when map_size(Set) =:= 0 -> Ats;
places(_, _, 0, Ats) -> Ats;
places(Set, Pids, At, Ats) ->
    case is_map_key(element(At, Pids), Set) of
        true -> places(Set, Pids, At - 1, [At | Ats]);
        false -> places(Set, Pids, At - 1, Ats)
    end.

%% Runs that keep no id for the places in At (ascending): each such place
%% becomes a run of its own, of id 0. A run that ends before the one
%% before it is empty, and the walk passes it (known/6).
unkeep(Runs, []) -> Runs;
unkeep([], _) -> [];
unkeep([{End, _} = Run | Runs], [At | _] = Ats) when End < At -> [Run | unkeep(Runs, Ats)];
unkeep([{_, Id} = Run | Runs], [At | Ats]) -> [{At - 1, Id}, {At, 0} | unkeep([Run | Runs], Ats)].

%% Puts the scan's cache back, unless new groups have run out of ids: the
%% next scan then starts afresh, with all ids free again.
groups_cache_put(0, _, _, _, _, _) -> ok;
groups_cache_put(_, Slice, Pids, Runs, Names, Generation) ->
    case get({groups}) of
        ?GROUPS_CAP -> ok;
        _ ->
            Keys = [KeyId || {_, Id} = KeyId <- get(), is_integer(Id)],
            groups_cache_holder() ! {put, Slice, {list_to_tuple(Pids), Runs, Keys, Names, Generation}},
            ok
    end.

%% The registered cache, started if none runs. register/2 is atomic: of two
%% scans racing, the loser kills its candidate and takes the winner.
groups_cache_holder() ->
    case whereis(?GROUPS_CACHE) of
        undefined ->
            Candidate = spawn(fun() -> groups_cache(#{}) end),
            try register(?GROUPS_CACHE, Candidate) of
                true -> Candidate
            catch error:badarg ->
                exit(Candidate, kill),
                groups_cache_holder()
            end;
        Cache -> Cache
    end.

%% Held is {Slice, Slices} => cache: a node of more than 100,000 processes
%% is scanned one slice per refresh, and each slice has a cache of its own,
%% so that a scan walks and copies only its slice's. Caches for another
%% number of slices are dropped when a cache is put.
groups_cache(Held) ->
    receive
        {take, From, Ref, Slice} ->
            From ! {Ref, maps:get(Slice, Held, none)},
            %% Hold nothing of that slice while the scan has it.
            Left = maps:remove(Slice, Held),
            erlang:garbage_collect(),
            groups_cache(Left);
        {put, {_, Slices} = Slice, Cache} ->
            groups_cache((maps:filter(fun({_, N}, _) -> N =:= Slices end, Held))#{Slice => Cache});
        _ -> groups_cache(Held)
    after ?GROUPS_CACHE_IDLE_MS -> exit(normal)
    end.

%% The groups as top_processes/6 answers them. Two keys may make one name
%% (a label and a registered name alike, or names cut at ?NAME_MAX): they
%% are summed, so that names are unique.
groups(_, none) -> {[], {0, 0, 0, 0}};
groups(Max, Sums) ->
    Figures = fun(Id) -> list_to_tuple([counters:get(Sums, 4 * Id - K) || K <- [3, 2, 1, 0]]) end,
    Add = fun({C, M, Q, R}, {C0, M0, Q0, R0}) -> {C0 + C, M0 + M, Q0 + Q, R0 + R} end,
    ByName = lists:foldl(fun({{groups}, _}, Acc) -> Acc;
                            ({_, ?GROUPS_CAP}, Acc) -> Acc;
                            ({Key, Id}, Acc) when is_integer(Id) ->
                                 case Figures(Id) of
                                     %% A group the cache knows that has no process now.
                                     {0, _, _, _} -> Acc;
                                     Sum -> maps:update_with(group_name(Key), fun(S0) -> Add(Sum, S0) end, Sum, Acc)
                                 end;
                            (_, Acc) -> Acc
                         end, #{}, get()),
    Largest = fun({N1, {C1, M1, _, _}}, {N2, {C2, M2, _, _}}) -> {M1, C1, N2} >= {M2, C2, N1} end,
    {Top, Rest} = lists:split(min(Max, map_size(ByName)), lists:sort(Largest, maps:to_list(ByName))),
    Other = lists:foldl(fun({_, Sum}, Acc) -> Add(Sum, Acc) end, Figures(?GROUPS_CAP), Rest),
    {[{Name, C, M, Q, R} || {Name, {C, M, Q, R}} <- Top], Other}.

%% [] for a process that exited since it was ranked.
details(P, Ctx) ->
    Items = [registered_name, current_function, initial_call, memory, message_queue_len, reductions],
    case erlang:process_info(P, Items) of
        [{registered_name, Reg}, {current_function, Fun}, {initial_call, Init0},
         {memory, Mem}, {message_queue_len, Mql}, {reductions, Red}] ->
            Init = initial_call(P, Init0, Ctx),
            Label = proc_label(P, Ctx),
            [#{pid => pid_binary(P),
               name => name(P, Reg, Init, Label),
               label => case Label of undefined -> <<>>; _ -> cap(text(Label)) end,
               registered_name => case Reg of [] -> <<>>; _ -> cap(atom_text(Reg)) end,
               current_function => cap(mfa(Fun)),
               initial_call => cap(Init),
               memory => Mem, message_queue_len => Mql, reductions => Red}];
        undefined -> []
    end.

pid_binary(P) -> list_to_binary(pid_to_list(P)).

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
-spec ets_tables(N :: 1..1000, Deadline :: integer()) ->
          {ok, [{Name :: binary(), MemoryBytes :: non_neg_integer(),
                 Objects :: non_neg_integer()}]}
        | {error, badarg | deadline}.
ets_tables(N, Deadline) when is_integer(N), N >= 1, N =< 1000, is_integer(Deadline) ->
    Word = erlang:system_info(wordsize),
    Ctx = name_context(),
    try tables(ets:all(), Word, Ctx, Deadline, 0, {#{}, #{}}) of
        Sums ->
            Rows = lists:reverse(lists:keysort(2, [{L, M, O} || {L, {M, O}} <- maps:to_list(Sums)])),
            {ok, lists:sublist(Rows, N)}
    catch throw:deadline -> {error, deadline}
    end;
ets_tables(_, _) -> {error, badarg}.

%% The clock is read every ?CHUNK tables.
tables([], _, _, _, _, {Sums, _}) -> Sums;
tables(Ts, Word, Ctx, Deadline, 0, Acc) ->
    remaining(Deadline) > 0 orelse throw(deadline),
    tables(Ts, Word, Ctx, Deadline, ?CHUNK, Acc);
tables([T | Ts], Word, Ctx, Deadline, Left, Acc) ->
    tables(Ts, Word, Ctx, Deadline, Left - 1, table(T, Word, Ctx, Acc)).

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
table_label(T, _, Owners) when is_atom(T) -> {cap(atom_text(T)), Owners};
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
%% The deadline is checked once, before the collection, which is one call.
-spec lock_counters(N :: 1..1000, Deadline :: integer()) ->
          {ok, unavailable}
        | {ok, [{Class :: binary(), Acquisitions :: non_neg_integer(),
                 Collisions :: non_neg_integer()}]}
        | {error, badarg | deadline | unexpected_lcnt_format}.
lock_counters(N, Deadline) when is_integer(N), N >= 1, N =< 1000, is_integer(Deadline) ->
    case {remaining(Deadline), erlang:system_info(lock_counting)} of
        {0, _} -> {error, deadline};
        {_, true} ->
            try lcnt_classes(erts_debug:lcnt_collect()) of
                Sums ->
                    Rows = [{C, T, K} || {C, {T, K}} <- maps:to_list(Sums)],
                    Desc = fun({_, T1, K1}, {_, T2, K2}) -> {K1, T1} >= {K2, T2} end,
                    {ok, lists:sublist(lists:sort(Desc, Rows), N)}
            catch _:_ -> {error, unexpected_lcnt_format}
            end;
        _ -> {ok, unavailable}
    end;
lock_counters(_, _) -> {error, badarg}.

%% As read by lcnt.erl: [{duration, _}, {locks, [{Name, Id, Type, Stats}]}],
%% a stat being {{File, Line}, {Tries, Colls, Timing}} with a histogram
%% appended since OTP 20. Sums are {Tries, Colls} per class.
lcnt_classes(Data) ->
    {locks, Locks} = lists:keyfind(locks, 1, Data),
    lists:foldl(fun({Name, _, _, Stats}, Acc) when is_list(Stats) ->
                        Class = cap(text(Name)),
                        Sum = maps:get(Class, Acc, {0, 0}),
                        Acc#{Class => lists:foldl(fun lcnt_stat/2, Sum, Stats)}
                end, #{}, Locks).

lcnt_stat({_Where, Counts}, Sum) -> lcnt_add(Counts, Sum);
lcnt_stat({_Where, Counts, _Histogram}, Sum) -> lcnt_add(Counts, Sum).

lcnt_add({Tries, Colls, _}, {T, K}) when is_integer(Tries), Tries >= 0,
                                         is_integer(Colls), Colls >= 0 ->
    {T + Tries, K + Colls}.

%%% ------------------------------------------------------------- deadlines

%% Milliseconds left until Deadline, never negative.
remaining(Deadline) -> max(0, Deadline - erlang:monotonic_time(millisecond)).

%% Kills Pid and waits until it is gone, so that its memory is freed by the
%% time we answer.
stop_process(Pid, Ref) ->
    exit(Pid, kill),
    receive {'DOWN', Ref, process, Pid, _} -> ok end.

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

%% A process's name as at most ?NAME_MAX bytes of UTF-8, bounded over time:
%% its registered name, else the leading element of its proc_lib label
%% (label_name/1), else its initial call (initial_call/3). <<"exited">> if
%% it went before we could tell.
name(P, Ctx) ->
    case erlang:process_info(P, registered_name) of
        {registered_name, Reg} -> name(P, Reg, <<>>, undefined);
        [] ->
            case erlang:process_info(P, initial_call) of
                {initial_call, Init} -> name(P, [], initial_call(P, Init, Ctx), proc_label(P, Ctx));
                undefined -> <<"exited">>
            end;
        undefined -> <<"exited">>
    end.

name(_, Reg, _, _) when is_atom(Reg) -> cap(atom_text(Reg));
name(_, [], Init, undefined) -> cap(Init);
name(_, [], _, Label) -> cap(label_name(Label)).

proc_label(P, {true, _}) -> proc_lib:get_label(P);
proc_label(_, _) -> undefined.

%% A label names a kind of process, and its further elements often tell the
%% processes of that kind apart ({worker, N}, OTP's own example): of a tuple,
%% or a list that is not text, only the first element counts, recursively.
label_name(T) -> text(label_leaf(T)).

label_leaf(T) when is_tuple(T), tuple_size(T) > 0 -> label_leaf(element(1, T));
label_leaf([H | _] = L) ->
    case io_lib:printable_unicode_list(L) of
        true -> L;
        false -> label_leaf(H)
    end;
label_leaf(T) -> T.

%% For processes started by proc_lib, the initial call it records as
%% '$initial_call' rather than proc_lib:init_p itself. Both name code, so
%% they are bounded by the code the node loads.
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

%% A function as its own language writes it: gen_server:loop/7 for an
%% Erlang module, Lab.Hog.init/1 for an Elixir one.
mfa({M, F, A}) when is_atom(M), is_atom(F), is_integer(A) ->
    Sep = case is_elixir(M) of true -> <<".">>; false -> <<":">> end,
    <<(atom_text(M))/binary, Sep/binary, (atom_to_binary(F, utf8))/binary, "/", (integer_to_binary(A))/binary>>;
mfa(Other) -> text(Other).

%% Elixir's module Lab.Hog is the atom 'Elixir.Lab.Hog'; Elixir users
%% know it without the prefix.
atom_text(A) ->
    B = atom_to_binary(A, utf8),
    case is_elixir(A) of
        true -> binary_part(B, 7, byte_size(B) - 7);
        false -> B
    end.

is_elixir(A) ->
    B = atom_to_binary(A, utf8),
    byte_size(B) > 7 andalso binary_part(B, 0, 7) =:= <<"Elixir.">>.

%% Any term as UTF-8; chars_limit keeps formatting a huge term cheap.
text(A) when is_atom(A) -> atom_text(A);
text(B) when is_binary(B) ->
    case unicode:characters_to_binary(B) of
        Utf8 when is_binary(Utf8) -> Utf8;
        _ -> format(B)
    end;
text(L) when is_list(L) ->
    case io_lib:printable_unicode_list(L) of
        true -> unicode:characters_to_binary(L);
        false -> format(L)
    end;
text(T) -> format(T).

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
