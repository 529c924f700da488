package collector

import (
	"math"
	"testing"

	"github.com/ergo-services/ergo/etf"
)

func TestUtilization(t *testing.T) {
	counts := schedulerCounts{normal: 2, normalOnline: 2, dirtyCPU: 2, dirtyCPUOnline: 1, dirtyIO: 2}
	prev, err := parseWallTime(etf.List{
		etf.Tuple{1, 100, 1000}, etf.Tuple{2, 0, 1000},
		etf.Tuple{3, 0, 1000}, etf.Tuple{4, 0, 1000},
		etf.Tuple{5, 0, 1000}, etf.Tuple{6, 0, 1000},
	})
	if err != nil {
		t.Fatal(err)
	}
	cur, err := parseWallTime(etf.List{
		etf.Tuple{1, 1100, 2000}, etf.Tuple{2, 500, 2000}, // normal: 1.0 and 0.5
		etf.Tuple{3, 250, 2000}, etf.Tuple{4, 1000, 2000}, // dirty CPU: 4 is offline
		etf.Tuple{5, 0, 2000}, etf.Tuple{6, 100, 2000}, // dirty IO: 0 and 0.1
	})
	if err != nil {
		t.Fatal(err)
	}
	ratios := schedulerRatios(prev, cur, counts)
	if len(ratios) != 5 {
		t.Errorf("got %d per-scheduler ratios, want 5 (scheduler 4 is offline): %v", len(ratios), ratios)
	}
	got := averageByType(ratios)
	want := map[string]float64{typeNormal: 0.75, typeDirtyCPU: 0.25, typeDirtyIO: 0.05}
	for typ, w := range want {
		if math.Abs(got[typ]-w) > 1e-9 {
			t.Errorf("%s: got %v, want %v", typ, got[typ], w)
		}
	}
}

func TestParseWallTimeMalformed(t *testing.T) {
	for name, reply := range map[string]etf.Term{
		"disabled":    etf.Atom("undefined"),
		"short tuple": etf.List{etf.Tuple{1, 2}},
		"float id":    etf.List{etf.Tuple{1.5, 2, 3}},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := parseWallTime(reply); err == nil {
				t.Fatal("no error")
			}
		})
	}
}
