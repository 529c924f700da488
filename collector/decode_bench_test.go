// Benchmarks of the decoders, for benchstat: go test -run '^$' -bench . ./collector

package collector

import (
	"fmt"
	"testing"

	"github.com/ergo-services/ergo/etf"
)

// rankedReply is a top_processes answer with n entries in each ranking,
// the same n processes in all three, each described.
func rankedReply(n int) etf.Term {
	l, details := etf.List{}, etf.List{}
	for i := range n {
		pid := fmt.Sprintf("<0.%d.0>", 1000+i)
		l = append(l, etf.Tuple{[]byte(pid), 1_000_000 - i})
		details = append(details, detail(pid, fmt.Sprintf("my_app_worker:init/%d", i)))
	}
	return topReply(l, l, l, details, 500000)
}

func BenchmarkParseProcessRankings(b *testing.B) {
	for _, n := range []int{10, 1000} {
		reply := rankedReply(n)
		b.Run(fmt.Sprintf("top%d", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := parseProcessRankings(reply, n, 0); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// msaccReply is statistics(microstate_accounting) of a node with this many
// schedulers, as many dirty CPU schedulers, 10 dirty I/O schedulers and the
// other threads of OTP 25, each with the default states.
func msaccReply(schedulers int) etf.List {
	states := map[string]int{"aux": 1, "check_io": 2, "emulator": 3, "gc": 4, "other": 5, "port": 6, "sleep": 7}
	var l etf.List
	for typ, n := range map[string]int{"scheduler": schedulers, "dirty_cpu_scheduler": schedulers,
		"dirty_io_scheduler": 10, "async": 1, "aux": 1, "poll": 1} {
		for id := 1; id <= n; id++ {
			l = append(l, msaccThread(typ, id, states))
		}
	}
	return l
}

func BenchmarkParseMSAcc(b *testing.B) {
	reply := msaccReply(64)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := parseMSAcc(reply); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseWallTime(b *testing.B) {
	var reply etf.List
	for id := 1; id <= 128; id++ {
		reply = append(reply, etf.Tuple{id, int64(id) * 1_000_000_000, int64(id) * 3_000_000_000})
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := parseWallTime(reply); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseMemory(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := parseMemory(memoryReply); err != nil {
			b.Fatal(err)
		}
	}
}
