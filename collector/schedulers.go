// Scheduler counts, shared by the run_queue and scheduler collectors.

package collector

import (
	"context"
	"fmt"
)

// Scheduler types, as label values.
const (
	typeNormal   = "normal"
	typeDirtyCPU = "dirty_cpu"
	typeDirtyIO  = "dirty_io"
)

var schedulerTypes = []string{typeNormal, typeDirtyCPU, typeDirtyIO}

// schedulerCounts says how many schedulers of each type exist and how many
// are online. ERTS numbers them normal first, then dirty CPU, then dirty IO,
// and takes the highest-numbered ones of a type offline first.
type schedulerCounts struct {
	normal, normalOnline     int
	dirtyCPU, dirtyCPUOnline int
	dirtyIO                  int
}

func readSchedulerCounts(ctx context.Context, node Node) (schedulerCounts, error) {
	var c schedulerCounts
	for _, f := range []struct {
		key string
		dst *int
	}{
		{"schedulers", &c.normal},
		{"schedulers_online", &c.normalOnline},
		{"dirty_cpu_schedulers", &c.dirtyCPU},
		{"dirty_cpu_schedulers_online", &c.dirtyCPUOnline},
		{"dirty_io_schedulers", &c.dirtyIO},
	} {
		v, err := schedulerCount(ctx, node, f.key)
		if err != nil {
			return c, err
		}
		*f.dst = v
	}
	if c.normalOnline > c.normal || c.dirtyCPUOnline > c.dirtyCPU {
		return c, fmt.Errorf("more schedulers online than exist: %+v", c)
	}
	return c, nil
}

// maxSchedulers is ERTS's limit on the schedulers of each type (+S,
// +SDcpu, +SDio).
const maxSchedulers = 1024

// schedulerCount reads system_info(key), a count of schedulers.
func schedulerCount(ctx context.Context, node Node, key string) (int, error) {
	v, err := systemInfoNumber(ctx, node, key)
	if err != nil {
		return 0, err
	}
	if v > maxSchedulers {
		return 0, fmt.Errorf("system_info(%s): %v schedulers, beyond ERTS's limit of %d", key, v, maxSchedulers)
	}
	return int(v), nil
}

// online returns how many schedulers of a type are online.
func (c schedulerCounts) online(typ string) int {
	switch typ {
	case typeNormal:
		return c.normalOnline
	case typeDirtyCPU:
		return c.dirtyCPUOnline
	default:
		return c.dirtyIO
	}
}

// typeOf classifies a scheduler id (1-based) and says whether it is online.
func (c schedulerCounts) typeOf(id int) (typ string, online bool) {
	switch {
	case id >= 1 && id <= c.normal:
		return typeNormal, id <= c.normalOnline
	case id > c.normal && id <= c.normal+c.dirtyCPU:
		return typeDirtyCPU, id-c.normal <= c.dirtyCPUOnline
	case id > c.normal+c.dirtyCPU && id <= c.normal+c.dirtyCPU+c.dirtyIO:
		return typeDirtyIO, true
	}
	return "", false
}
