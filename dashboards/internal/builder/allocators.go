// The Memory allocators dashboard: fragmentation told from a leak at a glance.

package builder

import (
	"fmt"

	"github.com/beam-exporter/beam_exporter/alerts"
)

func (r renderer) allocators() dashboard {
	total := `sum without (kind) (` + r.sel("beam_memory_bytes") + `)`
	carriers := `sum without (allocator, carrier) (` + r.sel("beam_allocator_carriers_bytes") + `)`
	fr := r.th.AllocatorFragment
	return dashboard{
		file:  "beam-allocators.json",
		uid:   "beam-allocators",
		title: "BEAM / Memory allocators",
		description: "Where the memory goes: what the OS gives the node, what the allocators hold in carriers and what " +
			"is in use. Fragmentation shows as carriers far above their blocks; a leak as blocks and erlang:memory/0 rising together.",
		panels: []panel{
			{
				typ: "timeseries", title: "Resident, carriers and BEAM memory", unit: "bytes", w: 24, h: 9, min: f(0),
				conditional: true,
				targets: []target{
					ts(r.sel("beam_os_resident_memory_bytes"), "{{instance}} resident (OS)"),
					ts(carriers, "{{instance}} allocator carriers"),
					ts(total, "{{instance}} erlang:memory(total)"),
				},
				description: "Three views of one node's memory. Resident is what the OS counts (VmRSS, Linux nodes only; " +
					"empty elsewhere). Carriers is what the alloc_util allocators hold from the OS. erlang:memory(total) is what " +
					"the runtime has handed out. All three rising together is a leak: find the kind in the Memory dashboard. " +
					"Resident and carriers high while erlang:memory(total) is flat or falling is fragmentation: see the " +
					"utilization below.",
			},
			{
				typ: "timeseries", title: "Allocator utilization per node", unit: "percentunit", w: 8, h: 8, min: f(0), max: f(1),
				targets: []target{ts(r.sel(alerts.RecordNodeUtilization), "{{instance}}")},
				description: "Bytes in blocks over bytes in carriers, over all alloc_util allocators, weighted by carrier size " +
					"(the " + alerts.RecordNodeUtilization + " recording rule). Near 100% the carriers are full; a low value " +
					"that stays low after load has gone is memory the node keeps but does not use.",
			},
			{
				typ: "timeseries", title: "Multiblock carrier utilization per allocator", unit: "percentunit", w: 16, h: 8,
				min: f(0), max: f(1),
				targets: []target{ts(r.sel(alerts.RecordAllocatorUtilization, `carrier="mbcs"`), "{{instance}} {{allocator}}")},
				description: "Blocks over carriers of each allocator's multiblock carriers (where small and medium blocks " +
					"share carriers; recon_alloc's fragmentation view). Singleblock carriers hold one block each and are " +
					"always nearly full, so only multiblock utilization tells fragmentation. temp_alloc and short bursts " +
					"move a lot; look at the allocators that hold the most (next panel).",
			},
			{
				typ: "timeseries", title: "Carriers by allocator", unit: "bytes", w: 12, h: 8, min: f(0), stacked: true,
				targets: []target{ts(`sum without (carrier) (`+r.sel("beam_allocator_carriers_bytes")+`)`, "{{instance}} {{allocator}}")},
				description: "Bytes of carriers each allocator holds from the OS, multiblock and singleblock: which " +
					"allocator the node's memory sits in (binary_alloc: binaries, eheap_alloc: process heaps, ets_alloc: ETS).",
			},
			{
				typ: "timeseries", title: "Held but unused, by allocator", unit: "bytes", w: 12, h: 8, min: f(0), stacked: true,
				targets: []target{ts(`sum without (carrier) (`+r.sel("beam_allocator_carriers_bytes")+` - `+
					r.sel("beam_allocator_blocks_bytes")+`)`, "{{instance}} {{allocator}}")},
				description: "Carrier bytes that hold no block: memory the OS counts against the node and erlang:memory/0 " +
					"does not. This is the gap between the resident and BEAM lines above, allocator by allocator.",
			},
			{
				typ: "timeseries", title: "Free share of large multiblock carriers", unit: "percentunit", w: 12, h: 8,
				min: f(0), max: f(1),
				conditional: true, // empty while no allocator is that large: the normal case
				targets: []target{ts(`1 - `+r.sel(alerts.RecordAllocatorUtilization, `carrier="mbcs"`)+`
and
`+r.sel("beam_allocator_carriers_bytes", `carrier="mbcs"`)+fmt.Sprintf(" > %g", fr.MinCarrierBytes), "{{instance}} {{allocator}}")},
				thresholdKeys: levels("allocator_fragmentation", "warning"),
				description: fmt.Sprintf("The share of an allocator's multiblock carriers that holds no block, for allocators "+
					"with more than %s of them: the quantity of the BEAMAllocatorFragmentation alert, whose level is the line "+
					"(it fires after %s above it). Empty while no allocator holds that much, which is the normal case.",
					alerts.HumanBytes(fr.MinCarrierBytes), fr.Warning.For),
			},
			{
				typ: "table", title: "Allocators now", unit: "bytes", w: 12, h: 8,
				targets: []target{
					tableQ(`sort_desc(` + r.sel("beam_allocator_carriers_bytes") + `)`),
					tableQ(r.sel("beam_allocator_blocks_bytes")),
					tableQ(r.sel(alerts.RecordAllocatorUtilization)),
				},
				transforms: []any{merge, organize([]string{"job"}, map[string]string{
					"Value #A": "Carriers",
					"Value #B": "Blocks",
					"Value #C": "Utilization",
				}, []string{"instance", "allocator", "carrier", "Value #A", "Value #B", "Value #C"})},
				overrides:   []any{unitOverride("Utilization", "percentunit")},
				sortBy:      "Carriers",
				description: "Every allocator and carrier type at the end of the time range, largest carriers first.",
			},
			{
				typ: "timeseries", title: "Used share of process and atom memory", unit: "percentunit", w: 12, h: 8,
				min: f(0), max: f(1),
				targets: []target{ts(r.sel("beam_memory_used_bytes")+` / `+r.sel("beam_memory_bytes", `kind=~"processes|atom"`), "{{instance}} {{kind}}")},
				description: "processes_used over processes and atom_used over atom (erlang:memory/0): how much of what " +
					"the runtime set aside for process heaps and the atom table is in use.",
			},
			{
				typ: "timeseries", title: "Persistent term memory", unit: "bytes", w: 6, h: 8, min: f(0),
				targets: []target{ts(r.sel("beam_persistent_term_memory_bytes"), "{{instance}}")},
				description: "Memory of the persistent terms (persistent_term:info()). Updating or erasing a persistent " +
					"term makes every process that read it copy the value at its next garbage collection.",
			},
			{
				typ: "timeseries", title: "Persistent terms", unit: "short", w: 6, h: 8, min: f(0),
				targets: []target{ts(r.sel("beam_persistent_terms"), "{{instance}}")},
				description: "How many persistent terms the node holds. A count that keeps changing in production means " +
					"terms are put or erased at run time, each time at the cost of a scan of every process.",
			},
		},
	}
}
