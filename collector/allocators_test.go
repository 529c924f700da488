package collector

import (
	"testing"

	"github.com/ergo-services/ergo/etf"
)

// sizeStat is {size, Current, LastMax, Max} as allocator_sizes reports it.
func sizeStat(cur, lastMax, max int) etf.List {
	return etf.List{etf.Tuple{etf.Atom("size"), cur, lastMax, max}}
}

func carrierEntry(kind string, blocks etf.List, carriers ...int) etf.Tuple {
	size := etf.Tuple{etf.Atom("carriers_size")}
	for _, c := range carriers {
		size = append(size, c)
	}
	return etf.Tuple{etf.Atom(kind), etf.List{etf.Tuple{etf.Atom("blocks"), blocks}, size}}
}

func blockType(name string, stats etf.List) etf.Tuple { return etf.Tuple{etf.Atom(name), stats} }

func instance(n int, parts ...etf.Tuple) etf.Tuple {
	l := etf.List{}
	for _, p := range parts {
		l = append(l, p)
	}
	return etf.Tuple{etf.Atom("instance"), n, l}
}

// Captured from OTP 25: erlang:system_info({allocator_sizes, binary_alloc}).
var binaryAllocSizes = etf.List{
	instance(0,
		carrierEntry("mbcs", etf.List{blockType("binary_alloc", sizeStat(233288, 1434592, 1434592))}, 589824, 1638400, 1638400),
		carrierEntry("sbcs", etf.List{blockType("binary_alloc", sizeStat(657104, 657104, 657104))}, 659456, 659456, 659456)),
	instance(1,
		carrierEntry("mbcs", etf.List{blockType("binary_alloc", sizeStat(5944, 10880, 10880))}, 65536, 65536, 65536),
		carrierEntry("mbcs_pool", etf.List{}, 0),
		carrierEntry("sbcs", etf.List{}, 0, 0, 0)),
	instance(2,
		carrierEntry("mbcs", etf.List{blockType("binary_alloc", sizeStat(800, 7528, 7528))}, 65536, 65536, 65536),
		carrierEntry("mbcs_pool", etf.List{}, 0),
		carrierEntry("sbcs", etf.List{}, 0, 0, 0)),
}

// A carrier pool holding carriers with blocks of two allocators' types, as
// after migration (OTP 23 and later); the figures are made up.
var eheapAllocSizes = etf.List{
	instance(0,
		carrierEntry("mbcs", etf.List{blockType("eheap_alloc", sizeStat(1000, 2000, 2000))}, 32768, 32768, 32768),
		carrierEntry("sbcs", etf.List{}, 0, 0, 0)),
	instance(1,
		carrierEntry("mbcs", etf.List{blockType("eheap_alloc", sizeStat(100000, 200000, 200000))}, 262144, 262144, 262144),
		carrierEntry("mbcs_pool", etf.List{
			blockType("eheap_alloc", etf.List{etf.Tuple{etf.Atom("size"), 4096}}),
			blockType("binary_alloc", etf.List{etf.Tuple{etf.Atom("size"), 800}}),
		}, 262144),
		carrierEntry("sbcs", etf.List{blockType("eheap_alloc", sizeStat(300000, 300000, 300000))}, 303104, 303104, 303104)),
}

// allocatorReplies answers the names call with names, and the sizes call,
// for the atoms in names, with {Name, Sizes} in the order given by sizes.
func allocatorReplies(names etf.Term, sizes ...etf.Tuple) map[string]etf.Term {
	r := map[string]etf.Term{"erlang:system_info(alloc_util_allocators)": names}
	if l, ok := names.(etf.List); ok {
		all := etf.List{}
		for _, s := range sizes {
			all = append(all, s)
		}
		r[callKey("erlang", "system_info", []etf.Term{etf.Tuple{etf.Atom("allocator_sizes"), l}})] = all
	}
	return r
}

func sizesOf(name string, sizes etf.Term) etf.Tuple { return etf.Tuple{etf.Atom(name), sizes} }

func TestAllocators(t *testing.T) {
	replies := allocatorReplies(
		etf.List{etf.Atom("eheap_alloc"), etf.Atom("binary_alloc"), etf.Atom("driver_alloc")},
		sizesOf("binary_alloc", binaryAllocSizes), sizesOf("eheap_alloc", eheapAllocSizes), sizesOf("driver_alloc", false))
	expectMetrics(t, allocatorsCollector{}, replies, `
# HELP beam_allocator_blocks_bytes Bytes of the blocks in use inside those carriers, summed over the allocator's instances, by carrier type. blocks / carriers is the allocator's utilization. erlang:system_info({allocator_sizes, A}). Up to one slow tier old.
# TYPE beam_allocator_blocks_bytes gauge
beam_allocator_blocks_bytes{allocator="binary_alloc",carrier="mbcs"} 240032
beam_allocator_blocks_bytes{allocator="binary_alloc",carrier="sbcs"} 657104
beam_allocator_blocks_bytes{allocator="eheap_alloc",carrier="mbcs"} 105896
beam_allocator_blocks_bytes{allocator="eheap_alloc",carrier="sbcs"} 300000
# HELP beam_allocator_carriers_bytes Bytes of the carriers an alloc_util allocator holds from the OS, summed over its instances, by carrier type (mbcs: multiblock, carriers in the carrier pool included; sbcs: singleblock). erlang:system_info({allocator_sizes, A}). Up to one slow tier old.
# TYPE beam_allocator_carriers_bytes gauge
beam_allocator_carriers_bytes{allocator="binary_alloc",carrier="mbcs"} 720896
beam_allocator_carriers_bytes{allocator="binary_alloc",carrier="sbcs"} 659456
beam_allocator_carriers_bytes{allocator="eheap_alloc",carrier="mbcs"} 557056
beam_allocator_carriers_bytes{allocator="eheap_alloc",carrier="sbcs"} 303104
`)
}

func TestAllocatorsMalformed(t *testing.T) {
	names := etf.List{etf.Atom("binary_alloc")}
	tooMany := etf.List{}
	for i := 0; i <= maxAllocators; i++ {
		tooMany = append(tooMany, etf.Atom("a"+string(rune('a'+i))+"_alloc"))
	}
	sizes := func(s etf.Term) map[string]etf.Term { return allocatorReplies(names, sizesOf("binary_alloc", s)) }
	for name, r := range map[string]map[string]etf.Term{
		"names not a list":    allocatorReplies(etf.Atom("undefined")),
		"too many allocators": allocatorReplies(tooMany),
		"duplicate allocator": allocatorReplies(etf.List{etf.Atom("binary_alloc"), etf.Atom("binary_alloc")},
			sizesOf("binary_alloc", binaryAllocSizes), sizesOf("binary_alloc", binaryAllocSizes)),
		"name not an atom":        allocatorReplies(etf.List{"binary_alloc"}),
		"one missing":             allocatorReplies(etf.List{etf.Atom("binary_alloc"), etf.Atom("eheap_alloc")}, sizesOf("binary_alloc", binaryAllocSizes)),
		"one not asked for":       allocatorReplies(names, sizesOf("eheap_alloc", eheapAllocSizes)),
		"answered twice":          allocatorReplies(etf.List{etf.Atom("binary_alloc"), etf.Atom("eheap_alloc")}, sizesOf("binary_alloc", binaryAllocSizes), sizesOf("binary_alloc", binaryAllocSizes)),
		"not a pair":              allocatorReplies(names, etf.Tuple{etf.Atom("binary_alloc")}),
		"sizes undefined":         sizes(etf.Atom("undefined")),
		"instance untagged":       sizes(etf.List{etf.Tuple{etf.Atom("inst"), 0, etf.List{}}}),
		"missing carriers_size":   sizes(etf.List{instance(0, etf.Tuple{etf.Atom("mbcs"), etf.List{etf.Tuple{etf.Atom("blocks"), etf.List{}}}})}),
		"missing blocks":          sizes(etf.List{instance(0, etf.Tuple{etf.Atom("mbcs"), etf.List{etf.Tuple{etf.Atom("carriers_size"), 1, 1, 1}}})}),
		"negative carriers":       sizes(etf.List{instance(0, carrierEntry("mbcs", etf.List{}, -1, 0, 0))}),
		"block type without size": sizes(etf.List{instance(0, carrierEntry("mbcs", etf.List{blockType("binary_alloc", etf.List{etf.Tuple{etf.Atom("count"), 1}})}, 1, 1, 1))}),
		"size not a number":       sizes(etf.List{instance(0, carrierEntry("mbcs", etf.List{blockType("binary_alloc", etf.List{etf.Tuple{etf.Atom("size"), "1"}})}, 1, 1, 1))}),
	} {
		t.Run(name, func(t *testing.T) { expectError(t, allocatorsCollector{}, r) })
	}
}
