// Tests of the probe session and the msacc keeper dying under the exporter, on real nodes.
package collector

import (
	"fmt"
	"testing"

	"github.com/beam-exporter/beam_exporter/erlnode"
	"github.com/beam-exporter/beam_exporter/erlnode/erltest"
)

// killProbeProcess kills the one process on the node whose current function
// is the probe's function, and waits until it is gone.
func killProbeProcess(t *testing.T, node *erltest.Node, function string) {
	t.Helper()
	got := node.Eval(t, fmt.Sprintf(`[P] = [P || P <- processes(),
			{current_function, {%s, %s, _}} <- [process_info(P, current_function)]],
		Ref = monitor(process, P), exit(P, kill),
		receive {'DOWN', Ref, process, P, R} -> R end.`, erlnode.ProbeModule, function))
	if got != "killed" {
		t.Fatalf("killing the probe's %s: %s", function, got)
	}
}

// msaccOn reads whether microstate accounting is on without switching it:
// its counters move only while it is.
func msaccOn(t *testing.T, node *erltest.Node) bool {
	t.Helper()
	return node.Eval(t, `A = lists:sort(erlang:statistics(microstate_accounting)), timer:sleep(20),
		A =/= lists:sort(erlang:statistics(microstate_accounting)).`) == "true"
}

// A session killed on the node is replaced on the next refresh, which
// reports the schedulers again, over the same connection.
func TestLiveSessionKilled(t *testing.T) {
	forEachRelease(t, func(t *testing.T, otp string) {
		node := startNode(t, otp)
		logger, logs := debugLogger()
		logOnFailure(t, logs)
		l := connect(t, node, liveOptions{loadProbe: true, logger: logger})
		value(t, l.scrape(t), "beam_scheduler_utilization_ratio", "type", "normal")
		generation := l.client.Generation()

		killProbeProcess(t, node, "session_wait")
		fams := l.scrape(t)
		value(t, fams, "beam_scheduler_utilization_ratio", "type", "normal")
		if g := l.client.Generation(); g != generation {
			t.Errorf("the exporter reconnected (generation %d -> %d)", generation, g)
		}
		if n := l.client.SessionsLost(); n != 1 {
			t.Errorf("%d sessions counted lost, want 1", n)
		}
		if n := len(logs.Lines("the probe session on the node has ended")); n != 1 {
			t.Errorf("the lost session was logged %d times, want once", n)
		}
		if v := value(t, fams, "beam_probe_sessions_lost_total"); v != 1 {
			t.Errorf("beam_probe_sessions_lost_total = %v, want 1", v)
		}
		l.scrape(t)
		if n := l.client.SessionsLost(); n != 1 {
			t.Errorf("%d sessions counted lost after another refresh, want 1", n)
		}
	})
}

// A keeper killed with microstate accounting on leaves the record of who
// switched it on with the sessions, whose successor keeper switches it off
// once the exporter has gone.
func TestLiveKeeperKilled(t *testing.T) {
	forEachRelease(t, func(t *testing.T, otp string) {
		node := startNode(t, otp)
		l := connect(t, node, liveOptions{loadProbe: true}) // with microstate accounting
		value(t, l.scrape(t), "beam_msacc_seconds_total", "thread_type", "scheduler", "state", "emulator")
		if !msaccOn(t, node) {
			t.Fatal("microstate accounting is off while the exporter holds it")
		}
		killProbeProcess(t, node, "keeper")
		l.client.Close()
		waitFor(t, "microstate accounting to be off after the exporter left", func() bool { return !msaccOn(t, node) })
	})
}
