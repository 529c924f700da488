package collector

import (
	"testing"

	"github.com/ergo-services/ergo/etf"
)

func TestPersistentTerms(t *testing.T) {
	// Captured from OTP 25: persistent_term:info().
	reply := etf.Map{etf.Atom("count"): 20, etf.Atom("memory"): 27824}
	expectMetrics(t, persistentTermsCollector{}, map[string]etf.Term{"persistent_term:info()": reply}, `
# HELP beam_persistent_term_memory_bytes Memory of the persistent terms and their table (persistent_term:info(), memory). Up to one slow tier old.
# TYPE beam_persistent_term_memory_bytes gauge
beam_persistent_term_memory_bytes 27824
# HELP beam_persistent_terms Persistent terms stored on the node (persistent_term:info(), count). Up to one slow tier old.
# TYPE beam_persistent_terms gauge
beam_persistent_terms 20
`)
	for name, reply := range map[string]etf.Term{
		"a proplist":      props("count", 1, "memory", 2),
		"missing memory":  etf.Map{etf.Atom("count"): 1},
		"negative count":  etf.Map{etf.Atom("count"): -1, etf.Atom("memory"): 2},
		"memory a string": etf.Map{etf.Atom("count"): 1, etf.Atom("memory"): "2"},
	} {
		t.Run(name, func(t *testing.T) {
			expectError(t, persistentTermsCollector{}, map[string]etf.Term{"persistent_term:info()": reply})
		})
	}
}
