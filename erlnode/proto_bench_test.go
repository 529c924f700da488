// Benchmark of decoding a packet from the wire, for benchstat:
// go test -run '^$' -bench . ./erlnode

package erlnode

import (
	"fmt"
	"testing"

	"github.com/ergo-services/ergo/etf"
	"github.com/ergo-services/ergo/lib"
)

// BenchmarkDecodePacket decodes an RPC reply carrying a top_processes
// answer with n entries in each of its three rankings.
func BenchmarkDecodePacket(b *testing.B) {
	to := etf.Pid{Node: "beam_exporter@vm", ID: 42, Creation: 7}
	for _, n := range []int{10, 1000} {
		top := etf.List{}
		for i := range n {
			top = append(top, etf.Tuple{[]byte(fmt.Sprintf("my_app_worker:init/%d", i)), 1_000_000 - i})
		}
		reply := etf.Tuple{etf.Atom("rex"), etf.Tuple{etf.Atom("ok"), etf.Map{
			etf.Atom("memory"): top, etf.Atom("message_queue_len"): top, etf.Atom("reductions"): top,
			etf.Atom("window_us"): 500000, etf.Atom("processes"): 1000000,
		}}}
		buf := lib.TakeBuffer()
		buf.AppendByte(passThrough)
		for _, term := range []etf.Term{etf.Tuple{opSend, etf.Atom(""), to}, reply} {
			buf.AppendByte(versionMagic)
			if err := etf.Encode(term, buf, etf.EncodeOptions{FlagBigCreation: true}); err != nil {
				b.Fatal(err)
			}
		}
		packet := append([]byte(nil), buf.B...)
		b.Run(fmt.Sprintf("top%d", n), func(b *testing.B) {
			b.SetBytes(int64(len(packet)))
			b.ReportAllocs()
			for b.Loop() {
				if _, _, err := decodePacket(packet); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
