// /targets: Prometheus HTTP service discovery from the EPMDs of the fleet's hosts.

package web

import (
	"context"
	"encoding/json"
	"net/http"
	"sort"
	"sync"
	"time"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"

	"github.com/beam-exporter/beam_exporter/erlnode"
)

// targetGroup is one entry of http_sd_configs' JSON.
type targetGroup struct {
	Targets []string          `json:"targets"`
	Labels  map[string]string `json:"labels"`
}

// targetsHandler lists every node registered in the EPMD of each host, one
// target group per node, labelled with its host and node name. A host whose
// EPMD does not answer contributes nothing and is logged, so that the other
// hosts' nodes are still discovered; its nodes drop out of Prometheus's
// targets with it, which is why the host itself needs monitoring too.
func targetsHandler(hosts []string, epmdPort int, logger log.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
		defer cancel()
		groups := discover(ctx, hosts, epmdPort, logger)
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(groups)
	})
}

func discover(ctx context.Context, hosts []string, epmdPort int, logger log.Logger) []targetGroup {
	var mu sync.Mutex
	groups := []targetGroup{}
	var wg sync.WaitGroup
	for _, host := range hosts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			names, err := erlnode.EPMDNames(ctx, host, epmdPort)
			if err != nil {
				level.Warn(logger).Log("msg", "discovery: EPMD does not answer", "host", host, "err", err)
				return
			}
			mu.Lock()
			defer mu.Unlock()
			for _, name := range names {
				node := name + "@" + host
				groups = append(groups, targetGroup{Targets: []string{node}, Labels: map[string]string{"host": host, "node": node}})
			}
		}()
	}
	wg.Wait()
	sort.Slice(groups, func(i, j int) bool { return groups[i].Targets[0] < groups[j].Targets[0] })
	return groups
}
