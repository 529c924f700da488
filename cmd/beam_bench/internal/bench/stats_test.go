package bench

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/ergo-services/ergo/etf"
)

func TestParseScan(t *testing.T) {
	// As measure/2 answered on OTP 25.
	got, err := parseScan(etf.Map{
		etf.Atom("status"): etf.Atom("ok"), etf.Atom("wall_us"): 4400237, etf.Atom("cpu_ms"): 2572,
		etf.Atom("reductions"): 24218426, etf.Atom("peak_bytes"): 49050768,
	})
	want := scan{wall: 4400237 * time.Microsecond, cpu: 2572 * time.Millisecond, reductions: 24218426, peakBytes: 49050768}
	if err != nil || got != want {
		t.Errorf("parseScan = %+v, %v; want %+v", got, err, want)
	}
	if _, err := parseScan(etf.Map{etf.Atom("status"): etf.Tuple{etf.Atom("EXIT"), etf.Atom("badarg")}}); err == nil {
		t.Error("a failed scan parsed")
	}
}

func TestParseNodeCostAndThroughput(t *testing.T) {
	c, err := parseNodeCost(etf.Tuple{1500, int64(1) << 40})
	if err != nil || c.cpu != 1500*time.Millisecond || c.reductions != 1<<40 {
		t.Errorf("parseNodeCost = %+v, %v", c, err)
	}
	r, err := parseThroughput(etf.Tuple{3_000_000, 1500})
	if err != nil || r != 2_000_000 {
		t.Errorf("parseThroughput = %v, %v", r, err)
	}
	if _, err := parseThroughput(etf.Tuple{3_000_000, 0}); err == nil {
		t.Error("a run without CPU time parsed")
	}
}

func TestSummarize(t *testing.T) {
	s := summarize([]float64{5, 1, 3, 2, 4})
	if s.median != 3 || s.p != 5 || s.n != 5 {
		t.Errorf("summarize = %+v", s)
	}
	if s := summarize([]float64{1, 2, 3, 10}); s.median != 2.5 {
		t.Errorf("even median = %v", s.median)
	}
	var xs []float64
	for i := 1; i <= 200; i++ {
		xs = append(xs, float64(i))
	}
	if s := summarize(xs); s.p != 198 {
		t.Errorf("p99 of 1..200 = %v, want 198", s.p)
	}
}

func TestParseProc(t *testing.T) {
	stat := "4242 (beam exporter) S 1 4242 4242 0 -1 4194560 1234 0 0 0 150 25 0 0 20 0 9 0 100 0 0"
	if got := parseStatCPU(stat); got != 1750*time.Millisecond {
		t.Errorf("parseStatCPU = %v", got)
	}
	rss, hwm := parseStatusMemory(strings.NewReader("Name:\tbeam_exporter\nVmHWM:\t   24000 kB\nVmRSS:\t   23000 kB\n"))
	if rss != 23000*1024 || hwm != 24000*1024 {
		t.Errorf("parseStatusMemory = %v, %v", rss, hwm)
	}
}

func TestMsaccCostPairsRuns(t *testing.T) {
	m := msaccResult{off: []float64{100, 200, 100}, on: []float64{99, 190, 100}}
	if got := m.cost(); math.Abs(got-0.01) > 1e-9 {
		t.Errorf("cost = %v, want 0.01 (the median of 1%%, 5%%, 0%%)", got)
	}
}
