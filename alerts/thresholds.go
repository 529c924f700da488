package alerts

import (
	"bytes"
	"fmt"
	"maps"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Duration is a Prometheus duration such as 30s, 5m, 1h or 1d. It keeps the
// spelling of thresholds.yml so that the generated rules read the same.
type Duration struct {
	Text string
	D    time.Duration
}

var durationRE = regexp.MustCompile(`^(?:([0-9]+)y)?(?:([0-9]+)w)?(?:([0-9]+)d)?(?:([0-9]+)h)?(?:([0-9]+)m)?(?:([0-9]+)s)?(?:([0-9]+)ms)?$`)

// ParseDuration parses a Prometheus duration.
func ParseDuration(s string) (Duration, error) {
	m := durationRE.FindStringSubmatch(s)
	if s == "" || m == nil {
		return Duration{}, fmt.Errorf("invalid duration %q (want a Prometheus duration such as 30s, 5m, 1h)", s)
	}
	units := []time.Duration{365 * 24 * time.Hour, 7 * 24 * time.Hour, 24 * time.Hour, time.Hour, time.Minute, time.Second, time.Millisecond}
	var d time.Duration
	for i, u := range units {
		if m[i+1] == "" {
			continue
		}
		n, err := strconv.ParseInt(m[i+1], 10, 64)
		if err != nil {
			return Duration{}, fmt.Errorf("invalid duration %q: %v", s, err)
		}
		d += time.Duration(n) * u
	}
	return Duration{Text: s, D: d}, nil
}

// MustDuration is ParseDuration for literals; it panics on error.
func MustDuration(s string) Duration {
	d, err := ParseDuration(s)
	if err != nil {
		panic(err)
	}
	return d
}

func (d Duration) String() string { return d.Text }

// Seconds is the duration in whole seconds, as PromQL arithmetic needs it.
func (d Duration) Seconds() int64 { return int64(d.D / time.Second) }

// IsZero reports whether the duration was not set.
func (d Duration) IsZero() bool { return d.Text == "" }

// UnmarshalYAML implements yaml.Unmarshaler.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("line %d: duration must be a scalar", n.Line)
	}
	v, err := ParseDuration(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %v", n.Line, err)
	}
	*d = v
	return nil
}

// MarshalYAML implements yaml.Marshaler.
func (d Duration) MarshalYAML() (interface{}, error) { return d.Text, nil }

// Level is one severity level of an alert: it fires when the alert's value is
// above Above for at least For. Above is nil for alerts without a number
// (node down, collector failing).
type Level struct {
	Above *float64 `yaml:"above,omitempty"`
	For   Duration `yaml:"for"`
}

// Levels holds the optional warning and critical level of an alert.
type Levels struct {
	Warning  *Level `yaml:"warning,omitempty"`
	Critical *Level `yaml:"critical,omitempty"`
}

// Windowed is an alert averaged or rated over Window.
type Windowed struct {
	Window Duration `yaml:"window"`
	Levels `yaml:",inline"`
}

// Mailbox configures BEAMMailboxGrowing.
type Mailbox struct {
	RiseWindow Duration `yaml:"rise_window"`
	Levels     `yaml:",inline"`
}

// Growth configures the memory trend alerts.
type Growth struct {
	Window    Duration `yaml:"window"`
	Horizon   Duration `yaml:"horizon"`
	MinUptime Duration `yaml:"min_uptime"`
	Levels    `yaml:",inline"`
}

// OptIn is an alert that is generated only when Enabled.
type OptIn struct {
	Enabled bool `yaml:"enabled"`
	Levels  `yaml:",inline"`
}

// Fragment is an alert on the free share of large carriers.
type Fragment struct {
	MinCarrierBytes float64 `yaml:"min_carrier_bytes"`
	Levels          `yaml:",inline"`
}

// Rankings configures the recording rules behind the process-ranking panels.
type Rankings struct {
	Interval Duration `yaml:"interval"`
}

// Thresholds is the content of alerts/thresholds.yml.
type Thresholds struct {
	RunbookBaseURL      string   `yaml:"runbook_base_url"`
	Selector            string   `yaml:"selector"`
	AppLabel            string   `yaml:"app_label"`
	NodeDown            Levels   `yaml:"node_down"`
	NodesDown           Levels   `yaml:"nodes_down"`
	ExporterDown        OptIn    `yaml:"exporter_down"`
	SchedulerSaturation Windowed `yaml:"scheduler_saturation"`
	RunQueue            Windowed `yaml:"run_queue"`
	ProcessLimit        Levels   `yaml:"process_limit"`
	PortLimit           Levels   `yaml:"port_limit"`
	AtomLimit           Levels   `yaml:"atom_limit"`
	ETSTableLimit       Levels   `yaml:"ets_table_limit"`
	Mailbox             Mailbox  `yaml:"mailbox"`
	MemoryGrowth        Growth   `yaml:"memory_growth"`
	BinaryGrowth        Growth   `yaml:"binary_growth"`
	ETSGrowth           Growth   `yaml:"ets_growth"`
	ProcessGrowth       Growth   `yaml:"process_growth"`
	GCPressure          Windowed `yaml:"gc_pressure"`
	DistLinkBlocked     Windowed `yaml:"dist_link_blocked"`
	DistLinkFlapping    Windowed `yaml:"dist_link_flapping"`
	CollectorFailing    Levels   `yaml:"collector_failing"`
	AllocatorFragment   Fragment `yaml:"allocator_fragmentation"`
	ProcessRankings     Rankings `yaml:"process_rankings"`
}

// matcherListRE matches a PromQL label matcher list without braces:
// name op "value", comma separated.
var matcherListRE = regexp.MustCompile(`^\s*[a-zA-Z_][a-zA-Z0-9_]*\s*(=~|!~|!=|=)\s*"(?:[^"\\]|\\.)*"\s*(?:,\s*[a-zA-Z_][a-zA-Z0-9_]*\s*(=~|!~|!=|=)\s*"(?:[^"\\]|\\.)*"\s*)*$`)

var labelNameRE = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)

// ParseThresholds decodes and validates a thresholds file. Unknown keys are
// errors, so that a typo does not silently keep a default.
func ParseThresholds(data []byte) (Thresholds, error) {
	var t Thresholds
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&t); err != nil {
		return Thresholds{}, fmt.Errorf("thresholds: %v", err)
	}
	if err := t.Validate(); err != nil {
		return Thresholds{}, err
	}
	return t, nil
}

// DefaultThresholds returns the shipped alerts/thresholds.yml, parsed.
func DefaultThresholds() (Thresholds, error) { return ParseThresholds(ThresholdsYAML()) }

// Validate checks that every level the rules need is present and sensible.
func (t Thresholds) Validate() error {
	var errs []string
	bad := func(format string, args ...interface{}) { errs = append(errs, fmt.Sprintf(format, args...)) }
	if !strings.HasPrefix(t.RunbookBaseURL, "http://") && !strings.HasPrefix(t.RunbookBaseURL, "https://") {
		bad("runbook_base_url: want an http(s) URL, got %q", t.RunbookBaseURL)
	}
	if t.Selector != "" && !matcherListRE.MatchString(t.Selector) {
		bad(`selector: want label matchers such as job="beam", got %q`, t.Selector)
	}
	switch {
	case !labelNameRE.MatchString(t.AppLabel) || strings.HasPrefix(t.AppLabel, "__"):
		bad("app_label: want a label name, got %q", t.AppLabel)
	case t.AppLabel == "job" || t.AppLabel == "instance":
		bad("app_label: %q is already used on its own; name the application label", t.AppLabel)
	}
	if t.ExporterDown.Enabled && strings.TrimSpace(t.Selector) == "" {
		bad("exporter_down: needs a selector, or it fires for every target Prometheus scrapes")
	}
	type spec struct {
		name              string
		l                 Levels
		warning, critical bool // required levels
		needAbove         bool
		ratio             bool // Above must be in (0, 1]
	}
	specs := []spec{
		{"node_down", t.NodeDown, true, false, false, false},
		{"nodes_down", t.NodesDown, false, true, true, true},
		{"exporter_down", t.ExporterDown.Levels, true, false, false, false},
		{"scheduler_saturation", t.SchedulerSaturation.Levels, true, false, true, true},
		{"run_queue", t.RunQueue.Levels, true, false, true, false},
		{"process_limit", t.ProcessLimit, true, true, true, true},
		{"port_limit", t.PortLimit, true, true, true, true},
		{"atom_limit", t.AtomLimit, true, true, true, true},
		// Not a ratio that must stay below 1: OTP 20 removed the hard limit.
		{"ets_table_limit", t.ETSTableLimit, true, false, true, false},
		{"mailbox", t.Mailbox.Levels, true, false, true, false},
		{"memory_growth", t.MemoryGrowth.Levels, true, false, true, false},
		{"binary_growth", t.BinaryGrowth.Levels, true, false, true, false},
		{"ets_growth", t.ETSGrowth.Levels, true, false, true, false},
		{"process_growth", t.ProcessGrowth.Levels, true, false, true, false},
		{"gc_pressure", t.GCPressure.Levels, true, false, true, true},
		{"dist_link_blocked", t.DistLinkBlocked.Levels, true, false, true, false},
		{"dist_link_flapping", t.DistLinkFlapping.Levels, true, false, true, false},
		{"collector_failing", t.CollectorFailing, true, false, false, false},
		{"allocator_fragmentation", t.AllocatorFragment.Levels, true, false, true, true},
	}
	if t.AllocatorFragment.MinCarrierBytes < 0 {
		bad("allocator_fragmentation.min_carrier_bytes: must not be negative")
	}
	for _, s := range specs {
		check := func(sev string, l *Level, required bool) {
			if l == nil {
				if required {
					bad("%s.%s: missing", s.name, sev)
				}
				return
			}
			if !required {
				bad("%s.%s: not used by the rules, remove it", s.name, sev)
			}
			if l.For.IsZero() {
				bad("%s.%s.for: missing", s.name, sev)
			}
			switch {
			case s.needAbove && l.Above == nil:
				bad("%s.%s.above: missing", s.name, sev)
			case !s.needAbove && l.Above != nil:
				bad("%s.%s.above: not used by this alert, remove it", s.name, sev)
			case l.Above != nil && *l.Above <= 0:
				bad("%s.%s.above: must be positive", s.name, sev)
			case l.Above != nil && s.ratio && *l.Above > 1:
				bad("%s.%s.above: is a ratio, must be at most 1", s.name, sev)
			}
		}
		check("warning", s.l.Warning, s.warning)
		check("critical", s.l.Critical, s.critical)
		if w, c := s.l.Warning, s.l.Critical; w != nil && c != nil && w.Above != nil && c.Above != nil && *w.Above >= *c.Above {
			bad("%s: warning.above (%v) must be below critical.above (%v)", s.name, *w.Above, *c.Above)
		}
	}
	windows := map[string]Duration{
		"scheduler_saturation.window": t.SchedulerSaturation.Window,
		"run_queue.window":            t.RunQueue.Window,
		"gc_pressure.window":          t.GCPressure.Window,
		"dist_link_blocked.window":    t.DistLinkBlocked.Window,
		"dist_link_flapping.window":   t.DistLinkFlapping.Window,
		"mailbox.rise_window":         t.Mailbox.RiseWindow,
		"memory_growth.window":        t.MemoryGrowth.Window,
		"memory_growth.horizon":       t.MemoryGrowth.Horizon,
		"memory_growth.min_uptime":    t.MemoryGrowth.MinUptime,
		"binary_growth.window":        t.BinaryGrowth.Window,
		"binary_growth.horizon":       t.BinaryGrowth.Horizon,
		"binary_growth.min_uptime":    t.BinaryGrowth.MinUptime,
		"ets_growth.window":           t.ETSGrowth.Window,
		"ets_growth.horizon":          t.ETSGrowth.Horizon,
		"ets_growth.min_uptime":       t.ETSGrowth.MinUptime,
		"process_growth.window":       t.ProcessGrowth.Window,
		"process_growth.horizon":      t.ProcessGrowth.Horizon,
		"process_growth.min_uptime":   t.ProcessGrowth.MinUptime,
		"process_rankings.interval":   t.ProcessRankings.Interval,
	}
	for _, k := range slices.Sorted(maps.Keys(windows)) {
		if d := windows[k]; d.IsZero() || d.D < time.Second {
			bad("%s: missing or shorter than 1s", k)
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("thresholds: %s", strings.Join(errs, "; "))
	}
	return nil
}

// Lookup returns the number at a dotted path of thresholds.yml, for example
// "scheduler_saturation.warning.above". The dashboards use it to draw the
// alert thresholds as lines.
func (t Thresholds) Lookup(path string) (float64, error) {
	v := reflect.ValueOf(t)
	for _, part := range strings.Split(path, ".") {
		for v.Kind() == reflect.Ptr {
			if v.IsNil() {
				return 0, fmt.Errorf("threshold %q: %s is not set", path, part)
			}
			v = v.Elem()
		}
		if v.Kind() != reflect.Struct {
			return 0, fmt.Errorf("threshold %q: no %s", path, part)
		}
		f, ok := fieldByYAMLName(v, part)
		if !ok {
			return 0, fmt.Errorf("threshold %q: no %s", path, part)
		}
		v = f
	}
	for v.Kind() == reflect.Ptr {
		if v.IsNil() {
			return 0, fmt.Errorf("threshold %q is not set", path)
		}
		v = v.Elem()
	}
	if v.Kind() != reflect.Float64 {
		return 0, fmt.Errorf("threshold %q is not a number", path)
	}
	return v.Float(), nil
}

func fieldByYAMLName(v reflect.Value, name string) (reflect.Value, bool) {
	ty := v.Type()
	for i := 0; i < ty.NumField(); i++ {
		tag := strings.Split(ty.Field(i).Tag.Get("yaml"), ",")
		if len(tag) > 1 && tag[1] == "inline" {
			if f, ok := fieldByYAMLName(v.Field(i), name); ok {
				return f, true
			}
			continue
		}
		if tag[0] == name {
			return v.Field(i), true
		}
	}
	return reflect.Value{}, false
}
