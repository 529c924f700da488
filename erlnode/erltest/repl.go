// The Erlang side of the control channel: a read-eval-print loop on the node's stdin/stdout.

package erltest

import (
	"encoding/base64"
	"fmt"
)

// replModule is compiled and loaded into every node at boot (compiler is
// part of erlang-base). A compiled loop rather than one interpreted by the
// -eval's erl_eval: an interpreted recursive loop grows its stack with
// every request, and compiled code keeps the harness's footprint on the
// node small and constant.
//
// Protocol, one line each way, payloads base64 so that multi-line and
// non-ASCII expressions and results need no escaping:
//
//	request:  EVAL <id> <base64 expression source>
//	reply:    <marker> <id> <status> <base64 text>
//
// status is ok (text is the value formatted with ~0p), raised (an exception;
// text explains it) or syntax (scan/parse error). At boot the loop sends
// <marker> 0 ready <base64 "OSPid Node OtpRelease OtpVersion">. Replies
// start with a newline so they begin a line even after output an
// expression printed without one. The marker is random per start, so
// nothing an expression prints can be mistaken for a reply.
//
// Expressions run in the loop process itself, which lives as long as the
// node: ETS tables an expression creates stay owned by a live process, and
// processes it spawns (even linked) keep running. The loop traps exits so
// a linked process dying does not take the channel down. It is not linked
// to anything and is not registered, so it adds exactly one anonymous
// process to the node. End of input (the test binary went away) halts the
// node.
const replModule = `
-module(erltest_repl).
-export([start/1, init/1]).

start(Mark) ->
    _ = spawn(erltest_repl, init, [Mark]), % no epp here, so no ?MODULE
    ok.

init(Mark) ->
    process_flag(trap_exit, true),
    Rel = erlang:system_info(otp_release),
    VerFile = filename:join([code:root_dir(), "releases", Rel, "OTP_VERSION"]),
    Ver = case file:read_file(VerFile) of
              {ok, V} -> string:trim(binary_to_list(V));
              _ -> Rel
          end,
    emit(Mark, "0", "ready", io_lib:format("~s ~s ~s ~s", [os:getpid(), node(), Rel, Ver])),
    loop(Mark).

loop(Mark) ->
    case io:get_line(standard_io, "") of
        eof -> erlang:halt(0);
        {error, _} -> erlang:halt(0);
        Line ->
            case string:lexemes(unicode:characters_to_list(Line), " \r\n") of
                ["EVAL", Id, B64] ->
                    flush_exits(),
                    {Status, Text} = run(B64),
                    emit(Mark, Id, Status, Text);
                _ ->
                    ok
            end,
            loop(Mark)
    end.

run(B64) ->
    try
        Src = unicode:characters_to_list(base64:decode(B64)),
        case erl_scan:string(Src) of
            {ok, Toks, _} ->
                case erl_parse:parse_exprs(Toks) of
                    {ok, Exprs} ->
                        try erl_eval:exprs(Exprs, erl_eval:new_bindings()) of
                            {value, Value, _} -> {"ok", io_lib:format("~0p", [Value])}
                        catch
                            C:R:S -> {"raised", format_exception(C, R, S)}
                        end;
                    {error, E} ->
                        {"syntax", format_error(E)}
                end;
            {error, E, _} ->
                {"syntax", format_error(E)}
        end
    catch
        C2:R2:S2 -> {"raised", format_exception(C2, R2, S2)}
    end.

format_exception(C, R, S) ->
    Pretty = try erl_error:format_exception(C, R, S) catch _:_ -> "" end,
    io_lib:format("~ts~n(raw: ~0p:~0p)", [Pretty, C, R]).

format_error({Loc, Mod, Desc}) ->
    io_lib:format("line ~0p: ~ts", [Loc, Mod:format_error(Desc)]);
format_error(Other) ->
    io_lib:format("~0p", [Other]).

flush_exits() ->
    receive {'EXIT', _, _} -> flush_exits()
    after 0 -> ok
    end.

emit(Mark, Id, Status, Text) ->
    B64 = base64:encode(unicode:characters_to_binary(Text)),
    io:put_chars(standard_io, [$\n, Mark, $\s, Id, $\s, Status, $\s, B64, $\n]).
`

// replEval is the -eval argument that compiles and loads replModule from
// its base64 source (no quoting issues in an argv string) and starts the
// loop. A failure halts the node with a message on stderr instead of
// leaving it up without a control channel.
func replEval(marker string) string {
	src := base64.StdEncoding.EncodeToString([]byte(replModule))
	return fmt.Sprintf(`try
  ErltestSrc = binary_to_list(base64:decode(%q)),
  {ok, ErltestToks, _} = erl_scan:string(ErltestSrc),
  ErltestSplit = fun ErltestSplit([], _, Acc) -> lists:reverse(Acc);
                     ErltestSplit([{dot, _} = D | T], Cur, Acc) ->
                         {ok, F} = erl_parse:parse_form(lists:reverse([D | Cur])),
                         ErltestSplit(T, [], [F | Acc]);
                     ErltestSplit([Tok | T], Cur, Acc) -> ErltestSplit(T, [Tok | Cur], Acc)
                 end,
  {ok, ErltestMod, ErltestBin} = compile:forms(ErltestSplit(ErltestToks, [], []), [binary, return_errors]),
  {module, ErltestMod} = code:load_binary(ErltestMod, "erltest_repl.erl", ErltestBin),
  ErltestMod:start(%q)
catch
  ErltestC:ErltestR:ErltestS ->
    io:format(standard_error, "erltest: cannot start the control loop: ~p:~p~n~p~n", [ErltestC, ErltestR, ErltestS]),
    erlang:halt(3)
end.`, src, marker)
}
