// The registry of metric families: each collector file registers itself here.

package collector

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/alecthomas/kingpin/v2"
	"github.com/ergo-services/ergo/etf"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/beam-exporter/beam_exporter/erlnode"
)

// namespace prefixes every metric the exporter emits.
const namespace = "beam"

// Node is what a collector may ask of the monitored node. *erlnode.Client
// implements it.
type Node interface {
	// Call runs module:function(args...) on the node.
	Call(ctx context.Context, module, function string, args ...etf.Term) (etf.Term, error)
	// ProbeCall runs a function of the probe module, loading it if needed.
	ProbeCall(ctx context.Context, function string, args ...etf.Term) (etf.Term, error)
	// EnsureSession makes sure the probe session holds the node's
	// statistics switches on for this connection.
	EnsureSession(ctx context.Context) error
	// Generation changes whenever the connection is re-established.
	Generation() uint64
}

// Collector reads one metric family (or a few closely related ones) from the
// node. Update sends freshly built const metrics; it must respect ctx, which
// carries the scrape deadline.
type Collector interface {
	Update(ctx context.Context, node Node, ch chan<- prometheus.Metric) error
}

// Tier says how long a collector's values are served from cache.
type Tier int

const (
	// TierFast holds what changes quickly and is cheap to read:
	// scheduler utilization, run queues, memory and reductions.
	TierFast Tier = iota
	// TierSlow holds everything else.
	TierSlow
)

func (t Tier) String() string {
	if t == TierFast {
		return "fast"
	}
	return "slow"
}

// errUnavailable marks a collector that cannot work on this node or with this
// configuration (for example, it needs the probe and code loading is off).
var errUnavailable = errors.New("collector unavailable")

// registration is what the registry knows of one collector.
type registration struct {
	tier    Tier
	factory func() Collector
	// validate checks the collector's own flags; nil when it has none.
	validate func() error
	// session is what the collector needs the probe session to keep on;
	// a function, because it may depend on flags parsed after init.
	session func() erlnode.SessionOptions

	enabled *bool // --[no-]collector.<name>
	named   bool  // set when the command line gives that flag
}

var registry = map[string]*registration{}

var disableDefaults = kingpin.Flag("collector.disable-defaults",
	"Disable every collector not switched on by its own --collector.<name> flag.").Default("false").Bool()

// register adds a collector and its --collector.<name> flag; kingpin adds
// the --no-collector.<name> form. Chain validatedBy to it when the
// collector has flags of its own.
func register(name string, enabledByDefault bool, tier Tier, factory func() Collector) *registration {
	if _, dup := registry[name]; dup {
		panic(fmt.Sprintf("collector %q registered twice", name))
	}
	state := "disabled"
	def := "false"
	if enabledByDefault {
		state, def = "enabled", "true"
	}
	help := fmt.Sprintf("Enable the %s collector (%s tier; default: %s).", name, tier, state)
	r := &registration{tier: tier, factory: factory}
	r.enabled = kingpin.Flag("collector."+name, help).Default(def).IsSetByUser(&r.named).Bool()
	registry[name] = r
	return r
}

// validatedBy makes validate part of ValidateFlags.
func (r *registration) validatedBy(validate func() error) *registration {
	r.validate = validate
	return r
}

// needs asks the probe session of every node the collector runs on to keep
// what session returns switched on; it is called once the flags are parsed.
func (r *registration) needs(session func() erlnode.SessionOptions) *registration {
	r.session = session
	return r
}

// on reports whether the flags switch the collector on: its own flag when
// the command line gives it, else its default, unless defaults are disabled.
func (r *registration) on() bool {
	if *disableDefaults && !r.named {
		return false
	}
	return *r.enabled
}

// Names lists every registered collector, sorted.
func Names() []string {
	names := make([]string, 0, len(registry))
	for n := range registry {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Enabled reports the collectors switched on by the flags, sorted.
func Enabled() []string {
	var names []string
	for _, n := range Names() {
		if registry[n].on() {
			names = append(names, n)
		}
	}
	return names
}

// Session is what the probe session must keep switched on for the named
// collectors, for erlnode.Config.
func Session(names []string) erlnode.SessionOptions {
	var s erlnode.SessionOptions
	for _, name := range names {
		if r, ok := registry[name]; ok && r.session != nil {
			need := r.session()
			s.MicrostateAccounting = s.MicrostateAccounting || need.MicrostateAccounting
			if need.SystemMonitor != nil {
				s.SystemMonitor = need.SystemMonitor
			}
		}
	}
	return s
}

// Tiers are the cache lifetimes of the two tiers.
type Tiers struct {
	Fast, Slow time.Duration
}

func (t Tiers) of(tier Tier) time.Duration {
	if tier == TierFast {
		return t.Fast
	}
	return t.Slow
}

// Validate rejects tiers that make no sense.
func (t Tiers) Validate() error {
	if t.Fast <= 0 || t.Slow <= 0 {
		return fmt.Errorf("tier durations must be positive (fast %s, slow %s)", t.Fast, t.Slow)
	}
	if t.Slow < t.Fast {
		return fmt.Errorf("the slow tier (%s) is shorter than the fast tier (%s)", t.Slow, t.Fast)
	}
	return nil
}

// TierOf reports the named collector's tier.
func TierOf(name string) Tier {
	if r, ok := registry[name]; ok {
		return r.tier
	}
	return TierSlow
}

// ValidateFlags checks every collector's own flags, enabled or not: an auth
// module may switch on a collector the flags leave off.
func ValidateFlags() error {
	for _, name := range Names() {
		if validate := registry[name].validate; validate != nil {
			if err := validate(); err != nil {
				return err
			}
		}
	}
	return nil
}
