package clickhouse

import (
	"context"
	"testing"
	"time"

	"github.com/beam-exporter/beam_exporter/cmd/beam_exporter/internal/config"
	"github.com/beam-exporter/beam_exporter/cmd/beam_exporter/internal/fleet"
	"github.com/beam-exporter/beam_exporter/collector"
)

// In fleet mode the sink watches every node the pool holds, and the
// sidecar's node once, through the sidecar's own exporter; nothing here
// connects.
func TestWatchCoversTheFleet(t *testing.T) {
	f, err := fleet.New(fleet.Options{
		Modules: map[string]config.AuthModule{"one": {Name: "one", Cookie: "c"}},
		Tiers:   collector.Tiers{Fast: time.Second, Slow: time.Second}, MaxTargets: 3, IdleTimeout: time.Minute,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		f.Run(ctx) // disconnects every target once its context has ended
	})
	for _, name := range []string{"sink_watch_b@127.0.0.1", "sink_watch_a@127.0.0.1"} {
		_, release, err := f.Acquire(name, "one")
		if err != nil {
			t.Fatal(err)
		}
		release()
	}
	sidecar := &fakeRanker{}
	got := Watch{NodeName: "sink_watch_a@127.0.0.1", Node: sidecar, Fleet: f}.nodes()
	if len(got) != 2 || got[0].name != "sink_watch_a@127.0.0.1" || got[0].ranker != sidecar || got[1].name != "sink_watch_b@127.0.0.1" {
		t.Errorf("watched %+v", got)
	}
	if got := (Watch{Fleet: f}).nodes(); len(got) != 2 {
		t.Errorf("fleet alone: watched %+v", got)
	}
}
