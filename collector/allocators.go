// The allocators collector: carrier and block bytes of each alloc_util allocator, for fragmentation.

package collector

import (
	"context"
	"fmt"

	"github.com/ergo-services/ergo/etf"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/beam-exporter/beam_exporter/erlnode"
)

func init() {
	register("allocators", true, TierSlow, func() Collector { return allocatorsCollector{} })
}

var (
	allocatorCarriersDesc = prometheus.NewDesc(namespace+"_allocator_carriers_bytes",
		"Bytes of the carriers an alloc_util allocator holds from the OS, summed over its instances, by carrier type "+
			"(mbcs: multiblock, carriers in the carrier pool included; sbcs: singleblock). erlang:system_info({allocator_sizes, A}). Up to one slow tier old.",
		[]string{"allocator", "carrier"}, nil)
	allocatorBlocksDesc = prometheus.NewDesc(namespace+"_allocator_blocks_bytes",
		"Bytes of the blocks in use inside those carriers, summed over the allocator's instances, by carrier type. "+
			"blocks / carriers is the allocator's utilization. erlang:system_info({allocator_sizes, A}). Up to one slow tier old.",
		[]string{"allocator", "carrier"}, nil)
)

// maxAllocators bounds the allocator label: two families, two carrier
// types, so at most 60 series. OTP 25 to 29 have ten alloc_util allocators.
const maxAllocators = 15

type allocatorsCollector struct{}

// allocatorSizes is one allocator's reading, summed over its instances.
type allocatorSizes struct {
	mbcsCarriers, mbcsBlocks, sbcsCarriers, sbcsBlocks float64
}

func (allocatorsCollector) Update(ctx context.Context, node Node, ch chan<- prometheus.Metric) error {
	reply, err := systemInfo(ctx, node, "alloc_util_allocators")
	if err != nil {
		return err
	}
	names, err := parseAllocatorNames(reply)
	if err != nil {
		return fmt.Errorf("system_info(alloc_util_allocators): %w", err)
	}
	// One call for all of them: the node gathers every allocator's figures
	// in one request to its schedulers, and the scrape makes one round trip.
	list := make(etf.List, len(names))
	for i, name := range names {
		list[i] = etf.Atom(name)
	}
	reply, err = node.Call(ctx, "erlang", "system_info", etf.Tuple{etf.Atom("allocator_sizes"), list})
	if err != nil {
		return fmt.Errorf("reading system_info({allocator_sizes, Allocators}): %w", err)
	}
	all, err := parseAllAllocatorSizes(reply, names)
	if err != nil {
		return fmt.Errorf("system_info({allocator_sizes, Allocators}): %w", err)
	}
	for _, name := range names {
		sizes, enabled := all[name]
		if !enabled {
			continue // switched off on this node (+M<S>e false)
		}
		for _, s := range []struct {
			carrier          string
			carriers, blocks float64
		}{{"mbcs", sizes.mbcsCarriers, sizes.mbcsBlocks}, {"sbcs", sizes.sbcsCarriers, sizes.sbcsBlocks}} {
			ch <- prometheus.MustNewConstMetric(allocatorCarriersDesc, prometheus.GaugeValue, s.carriers, name, s.carrier)
			ch <- prometheus.MustNewConstMetric(allocatorBlocksDesc, prometheus.GaugeValue, s.blocks, name, s.carrier)
		}
	}
	return nil
}

// parseAllocatorNames decodes system_info(alloc_util_allocators): a list of
// distinct allocator atoms, at most maxAllocators.
func parseAllocatorNames(reply etf.Term) ([]string, error) {
	l, err := erlnode.List(reply)
	if err != nil {
		return nil, err
	}
	if len(l) > maxAllocators {
		return nil, fmt.Errorf("%d allocators, more than the %d the allocator label allows", len(l), maxAllocators)
	}
	seen := make(map[string]bool, len(l))
	names := make([]string, 0, len(l))
	for _, e := range l {
		name, err := erlnode.Atom(e)
		if err != nil {
			return nil, err
		}
		if seen[name] {
			return nil, fmt.Errorf("allocator %q listed twice", name)
		}
		seen[name] = true
		names = append(names, name)
	}
	return names, nil
}

// parseAllAllocatorSizes decodes system_info({allocator_sizes, Names}):
// one {Name, Sizes} per name asked for, in any order, each once. An
// allocator switched off is left out of the map.
func parseAllAllocatorSizes(reply etf.Term, names []string) (map[string]allocatorSizes, error) {
	l, err := erlnode.List(reply)
	if err != nil {
		return nil, err
	}
	if len(l) != len(names) {
		return nil, fmt.Errorf("%d allocators in the reply, %d asked for", len(l), len(names))
	}
	asked := make(map[string]bool, len(names))
	for _, n := range names {
		asked[n] = true
	}
	out := make(map[string]allocatorSizes, len(names))
	for _, e := range l {
		pair, err := erlnode.Tuple(e, 2)
		if err != nil {
			return nil, err
		}
		name, err := erlnode.Atom(pair[0])
		if err != nil {
			return nil, err
		}
		if !asked[name] {
			return nil, fmt.Errorf("allocator %q not asked for, or twice", name)
		}
		asked[name] = false
		sizes, enabled, err := parseAllocatorSizes(pair[1])
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		if enabled {
			out[name] = sizes
		}
	}
	return out, nil
}

// parseAllocatorSizes decodes one allocator's sizes: false for
// an allocator switched off, else one {instance, N, Props} per instance,
// where Props holds mbcs, mbcs_pool and sbcs entries of the form
// [{blocks, [{BlockType, [{size, Current, ...}]}]}, {carriers_size, Current, ...}].
// Blocks are summed over block types: since OTP 23 a carrier may hold blocks
// of another allocator's type after migrating through the pool. Keys the
// decoder does not know are skipped, so that a new one in a later release
// does not fail the collector.
func parseAllocatorSizes(reply etf.Term) (allocatorSizes, bool, error) {
	var s allocatorSizes
	if b, ok := reply.(bool); ok && !b {
		return s, false, nil
	}
	if a, ok := reply.(etf.Atom); ok && a == "false" {
		return s, false, nil
	}
	instances, err := erlnode.List(reply)
	if err != nil {
		return s, false, err
	}
	for _, inst := range instances {
		tup, err := erlnode.Tuple(inst, 3)
		if err != nil {
			return s, false, fmt.Errorf("instance: %w", err)
		}
		if tag, err := erlnode.Atom(tup[0]); err != nil || tag != "instance" {
			return s, false, fmt.Errorf("instance: want the tag instance, got %v", tup[0])
		}
		parts, err := erlnode.List(tup[2])
		if err != nil {
			return s, false, fmt.Errorf("instance: %w", err)
		}
		for _, part := range parts {
			p, err := erlnode.Tuple(part, 2)
			if err != nil {
				return s, false, fmt.Errorf("carrier entry: %w", err)
			}
			kind, err := erlnode.Atom(p[0])
			if err != nil {
				return s, false, fmt.Errorf("carrier entry: %w", err)
			}
			var carriers, blocks *float64
			switch kind {
			case "mbcs", "mbcs_pool":
				carriers, blocks = &s.mbcsCarriers, &s.mbcsBlocks
			case "sbcs":
				carriers, blocks = &s.sbcsCarriers, &s.sbcsBlocks
			default:
				continue
			}
			c, b, err := parseCarrierEntry(p[1])
			if err != nil {
				return s, false, fmt.Errorf("%s: %w", kind, err)
			}
			*carriers += c
			*blocks += b
		}
	}
	return s, true, nil
}

// parseCarrierEntry decodes [{blocks, [...]}, {carriers_size, Current, ...}]
// into the current carrier and block bytes. Both keys are required.
func parseCarrierEntry(t etf.Term) (carriers, blocks float64, err error) {
	l, err := erlnode.List(t)
	if err != nil {
		return 0, 0, err
	}
	var haveCarriers, haveBlocks bool
	for _, e := range l {
		tup, ok := e.(etf.Tuple)
		if !ok || len(tup) < 2 {
			return 0, 0, fmt.Errorf("want a tuple of 2 or more, got %v", e)
		}
		key, err := erlnode.Atom(tup[0])
		if err != nil {
			return 0, 0, err
		}
		switch key {
		case "carriers_size":
			if haveCarriers {
				return 0, 0, fmt.Errorf("carriers_size twice")
			}
			haveCarriers = true
			if carriers, err = erlnode.NonNegative(tup[1]); err != nil {
				return 0, 0, fmt.Errorf("carriers_size: %w", err)
			}
		case "blocks":
			if haveBlocks || len(tup) != 2 {
				return 0, 0, fmt.Errorf("blocks: want one {blocks, List}")
			}
			haveBlocks = true
			if blocks, err = sumBlockTypes(tup[1]); err != nil {
				return 0, 0, fmt.Errorf("blocks: %w", err)
			}
		}
	}
	if !haveCarriers || !haveBlocks {
		return 0, 0, fmt.Errorf("want both blocks and carriers_size")
	}
	return carriers, blocks, nil
}

// sumBlockTypes sums [{BlockType, [{size, Current, ...}, ...]}] over the
// block types.
func sumBlockTypes(t etf.Term) (float64, error) {
	types, err := erlnode.List(t)
	if err != nil {
		return 0, err
	}
	var sum float64
	for _, bt := range types {
		pair, err := erlnode.Tuple(bt, 2)
		if err != nil {
			return 0, err
		}
		if _, err := erlnode.Atom(pair[0]); err != nil {
			return 0, err
		}
		stats, err := erlnode.List(pair[1])
		if err != nil {
			return 0, err
		}
		found := false
		for _, st := range stats {
			tup, ok := st.(etf.Tuple)
			if !ok || len(tup) < 2 {
				return 0, fmt.Errorf("want a tuple of 2 or more, got %v", st)
			}
			if key, err := erlnode.Atom(tup[0]); err != nil || key != "size" {
				continue // count and later additions
			}
			if found {
				return 0, fmt.Errorf("size twice")
			}
			found = true
			v, err := erlnode.NonNegative(tup[1])
			if err != nil {
				return 0, fmt.Errorf("size: %w", err)
			}
			sum += v
		}
		if !found {
			return 0, fmt.Errorf("block type without size")
		}
	}
	return sum, nil
}
