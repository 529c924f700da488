// The probe module's compiled binary, embedded in the exporter.

package erlnode

import _ "embed"

// ProbeModule is the probe's versioned module name: bump it with every change
// to the probe, so that two exporter versions never load different code under
// one name.
const ProbeModule = "beam_exporter_probe_v8"

// probeBeam is the probe's BEAM file, compiled with erlc +deterministic.
//
//go:embed probe/beam_exporter_probe_v8.beam
var probeBeam []byte
