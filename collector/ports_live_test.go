// Live test of the ports collector: counts by driver against the node's own count.

package collector

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
)

func TestLivePorts(t *testing.T) {
	forEachRelease(t, func(t *testing.T, otp string) {
		node := startNode(t, otp)
		// Sockets of three kinds, spawned OS processes, and a socket-module
		// socket, held by a process that keeps them open.
		node.Eval(t, `Self = self(), spawn(fun() ->
			L = [element(2, gen_tcp:listen(0, [])) || _ <- lists:seq(1, 7)],
			U = [element(2, gen_udp:open(0)) || _ <- lists:seq(1, 5)],
			S = [open_port({spawn, "cat"}, []) || _ <- lists:seq(1, 3)],
			{ok, K} = socket:open(inet, stream, tcp),
			Self ! ready, receive stop -> {L, U, S, K} end end),
			receive ready -> ok end.`)
		logger, logs := debugLogger()
		logOnFailure(t, logs)
		l := connect(t, node, liveOptions{loadProbe: true, collectors: []string{"ports"}, logger: logger})
		fams := l.scrape(t)
		// What the node counts itself, the same way: by the port's name,
		// and spawn for a port with an OS process.
		own := node.Eval(t, `lists:foldl(fun(P, Acc) ->
			K = case erlang:port_info(P, os_pid) of
				{os_pid, N} when is_integer(N) -> "spawn";
				_ -> element(2, erlang:port_info(P, name))
			end,
			maps:update_with(K, fun(C) -> C + 1 end, 1, Acc) end, #{}, erlang:ports()).`)
		want := map[string]float64{}
		for _, kv := range strings.Split(strings.Trim(own, "#{}"), ",") {
			k, v, _ := strings.Cut(kv, "=>")
			n, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil {
				t.Fatalf("the node's own count %s: %v", own, err)
			}
			want[strings.Trim(strings.TrimSpace(k), `"`)] = n
		}
		got := map[string]float64{}
		for _, m := range fams["beam_ports_by_driver"].GetMetric() {
			got[m.GetLabel()[0].GetValue()] = m.GetGauge().GetValue()
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("beam_ports_by_driver = %v, the node counts %v", got, want)
		}
		if got["tcp_inet"] < 7 || got["udp_inet"] < 5 || got["spawn"] < 3 {
			t.Errorf("beam_ports_by_driver = %v, want at least 7 tcp_inet, 5 udp_inet and 3 spawn", got)
		}
		if v := value(t, fams, "beam_sockets"); v < 1 {
			t.Errorf("beam_sockets = %v with one socket-module socket open", v)
		}
		for _, typ := range schedulerTypes {
			value(t, fams, "beam_active_tasks", "type", typ)
		}
		lintFamilies(t, fams)
	})
}
