// Package builder renders beam_exporter's Grafana dashboards as JSON.
//
// The dashboards are Go code so that their alert threshold lines come from
// alerts/thresholds.yml, the single place where thresholds are set, and so
// that ids, grid positions and the common datasource, variables and filters
// are right by construction. `go run ./dashboards/gen` writes the JSON files;
// dashboards_test.go fails when the committed files are out of date.
package builder

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"

	"github.com/beam-exporter/beam_exporter/alerts"
)

// SchemaVersion is the Grafana dashboard schema the JSON is written for
// (Grafana 10.4 / 11).
const SchemaVersion = 39

// Marker fields Grafana ignores but our tests read.
const (
	// ConditionalField marks a panel that returns data only on some nodes
	// (lock counters: lock-counting emulator builds only).
	ConditionalField = "beamExporterConditional"
	// ThresholdsField lists the alerts/thresholds.yml paths whose values are
	// the panel's threshold steps.
	ThresholdsField = "beamExporterThresholds"
	// ConditionalNote starts the description sentence of conditional panels.
	ConditionalNote = "Conditional: only on lock-counting emulator builds"
)

var dsRef = map[string]any{"type": "prometheus", "uid": "${datasource}"}

// filter is what every selector carries: the application label of
// thresholds.yml (app_label), job and instance, each set by its variable.
func (r renderer) filter() string {
	return fmt.Sprintf(`%[1]s=~"$%[1]s",job=~"$job",instance=~"$instance"`, r.th.AppLabel)
}

// sel writes a filtered vector selector: r.sel("beam_up", `type="normal"`).
func (r renderer) sel(metric string, extra ...string) string {
	return metric + "{" + strings.Join(append([]string{r.filter()}, extra...), ",") + "}"
}

// rate writes rate(<selector>[$__rate_interval]).
func (r renderer) rate(metric string, extra ...string) string {
	return "rate(" + r.sel(metric, extra...) + "[$__rate_interval])"
}

type target struct {
	expr    string
	legend  string
	instant bool // instant query, table format
	format  string
}

func ts(expr, legend string) target { return target{expr: expr, legend: legend} }

func instant(expr, legend string) target {
	return target{expr: expr, legend: legend, instant: true, format: "time_series"}
}

func tableQ(expr string) target { return target{expr: expr, instant: true, format: "table"} }

// panel is one Grafana panel before layout.
type panel struct {
	typ         string
	title       string
	description string
	unit        string
	w, h        int
	targets     []target
	// thresholdKeys are alerts/thresholds.yml paths drawn as threshold
	// steps (and, on time series, as lines).
	thresholdKeys []string
	// steps are fixed threshold steps of a panel that draws no alert level
	// (a stat coloured red from 1).
	steps        []step
	conditional  bool
	stacked      bool
	percentStack bool
	min, max     *float64
	axisLabel    string
	decimals     *int
	interval     string
	mappings     []any
	overrides    []any
	transforms   []any
	options      map[string]any // merged over the type's default options
	custom       map[string]any // merged over fieldConfig.defaults.custom
	legendCalcs  []string
	sortBy       string // table: column to sort descending
}

// step is one threshold step: the colour from value on.
type step struct {
	value float64
	color string
}

func f(v float64) *float64 { return &v }
func i(v int) *int         { return &v }

type dashboard struct {
	file        string
	uid         string
	title       string
	description string
	panels      []panel
}

type renderer struct {
	th alerts.Thresholds
}

// Render returns every dashboard as JSON, by file name.
func Render(th alerts.Thresholds) (map[string][]byte, error) {
	if err := th.Validate(); err != nil {
		return nil, err
	}
	r := renderer{th: th}
	out := map[string][]byte{}
	for _, d := range r.dashboards() {
		m, err := r.dashboard(d)
		if err != nil {
			return nil, fmt.Errorf("%s: %v", d.file, err)
		}
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false)
		enc.SetIndent("", "  ")
		if err := enc.Encode(m); err != nil {
			return nil, err
		}
		out[d.file] = buf.Bytes()
	}
	return out, nil
}

func (r renderer) dashboard(d dashboard) (map[string]any, error) {
	var panels []any
	types := map[string]bool{}
	x, y, rowH := 0, 0, 0
	for n, p := range d.panels {
		if p.w <= 0 || p.w > 24 || p.h <= 0 {
			return nil, fmt.Errorf("panel %q: bad size %dx%d", p.title, p.w, p.h)
		}
		if x+p.w > 24 {
			x, y, rowH = 0, y+rowH, 0
		}
		m, err := r.panel(p, n+1, x, y)
		if err != nil {
			return nil, fmt.Errorf("panel %q: %v", p.title, err)
		}
		panels = append(panels, m)
		types[p.typ] = true
		x += p.w
		if p.h > rowH {
			rowH = p.h
		}
	}
	requires := []any{
		map[string]any{"type": "grafana", "id": "grafana", "name": "Grafana", "version": "10.4.0"},
		map[string]any{"type": "datasource", "id": "prometheus", "name": "Prometheus", "version": "1.0.0"},
	}
	names := map[string]string{"timeseries": "Time series", "stat": "Stat", "table": "Table", "bargauge": "Bar gauge"}
	for _, t := range slices.Sorted(maps.Keys(types)) {
		requires = append(requires, map[string]any{"type": "panel", "id": t, "name": names[t], "version": ""})
	}
	return map[string]any{
		"__inputs": []any{map[string]any{
			"name":        "DS_PROMETHEUS",
			"label":       "Prometheus",
			"description": "The Prometheus that scrapes beam_exporter",
			"type":        "datasource",
			"pluginId":    "prometheus",
			"pluginName":  "Prometheus",
		}},
		"__elements": map[string]any{},
		"__requires": requires,
		"annotations": map[string]any{"list": []any{map[string]any{
			"builtIn":    1,
			"datasource": map[string]any{"type": "grafana", "uid": "-- Grafana --"},
			"enable":     true,
			"hide":       true,
			"iconColor":  "rgba(0, 211, 255, 1)",
			"name":       "Annotations & Alerts",
			"type":       "dashboard",
		}}},
		"description":          d.description,
		"editable":             true,
		"fiscalYearStartMonth": 0,
		"graphTooltip":         1,
		"id":                   nil,
		"links": []any{map[string]any{
			"asDropdown":  true,
			"icon":        "external link",
			"includeVars": true,
			"keepTime":    true,
			"tags":        []string{"beam_exporter"},
			"targetBlank": false,
			"title":       "BEAM dashboards",
			"tooltip":     "",
			"type":        "dashboards",
			"url":         "",
		}},
		"panels":        panels,
		"refresh":       "30s",
		"schemaVersion": SchemaVersion,
		"tags":          []string{"beam_exporter", "beam", "erlang", "elixir"},
		"templating":    map[string]any{"list": r.variables()},
		"time":          map[string]any{"from": "now-6h", "to": "now"},
		"timepicker":    map[string]any{},
		"timezone":      "",
		"title":         d.title,
		"uid":           d.uid,
		"version":       1,
		"weekStart":     "",
	}, nil
}

// variables are the data source, then the application label, job and
// instance, each narrowing the next. The application's All is .* rather than
// .+ so that series without the label (no relabelling sets it) still match.
func (r renderer) variables() []any {
	query := func(name, label, q, all, desc string) map[string]any {
		v := map[string]any{
			"allValue":    all,
			"current":     map[string]any{"selected": true, "text": []string{"All"}, "value": []string{"$__all"}},
			"datasource":  dsRef,
			"definition":  q,
			"hide":        0,
			"includeAll":  true,
			"label":       label,
			"multi":       true,
			"name":        name,
			"options":     []any{},
			"query":       map[string]any{"query": q, "refId": "PrometheusVariableQueryEditor-VariableQuery"},
			"refresh":     2,
			"regex":       "",
			"skipUrlSync": false,
			"sort":        1,
			"type":        "query",
		}
		if desc != "" {
			v["description"] = desc
		}
		return v
	}
	app := r.th.AppLabel
	appSel := fmt.Sprintf(`%[1]s=~"$%[1]s"`, app)
	return []any{
		map[string]any{
			"current":     map[string]any{"selected": false, "text": "Prometheus", "value": "${DS_PROMETHEUS}"},
			"hide":        0,
			"includeAll":  false,
			"label":       "Data source",
			"multi":       false,
			"name":        "datasource",
			"options":     []any{},
			"query":       "prometheus",
			"refresh":     1,
			"regex":       "",
			"skipUrlSync": false,
			"type":        "datasource",
		},
		query(app, "Application", fmt.Sprintf(`label_values(beam_up, %s)`, app), ".*",
			fmt.Sprintf("The %s target label (app_label in alerts/thresholds.yml), set by your relabelling: see "+
				"observability.md. All also matches nodes without it.", app)),
		query("job", "Job", fmt.Sprintf(`label_values(beam_up{%s}, job)`, appSel), ".+", ""),
		query("instance", "Instance", fmt.Sprintf(`label_values(beam_up{%s,job=~"$job"}, instance)`, appSel), ".+", ""),
	}
}

func (r renderer) thresholds(keys []string, fixed []step) (map[string]any, error) {
	if len(keys) > 0 && len(fixed) > 0 {
		return nil, fmt.Errorf("alert thresholds and fixed steps on one panel")
	}
	steps := []any{map[string]any{"color": "green", "value": nil}}
	ss := append([]step(nil), fixed...)
	for _, k := range keys {
		v, err := r.th.Lookup(k)
		if err != nil {
			return nil, err
		}
		color := "orange"
		if strings.Contains(k, ".critical.") {
			color = "red"
		}
		ss = append(ss, step{v, color})
	}
	sort.Slice(ss, func(a, b int) bool { return ss[a].value < ss[b].value })
	for _, s := range ss {
		steps = append(steps, map[string]any{"color": s.color, "value": s.value})
	}
	return map[string]any{"mode": "absolute", "steps": steps}, nil
}

func (r renderer) panel(p panel, id, x, y int) (map[string]any, error) {
	if p.description == "" || p.unit == "" || len(p.targets) == 0 {
		return nil, fmt.Errorf("needs a description, a unit and a query")
	}
	desc := p.description
	if p.conditional {
		desc = ConditionalNote + " (beam_lock_counting_available 1); standard builds show no data here. " + desc
	}
	th, err := r.thresholds(p.thresholdKeys, p.steps)
	if err != nil {
		return nil, err
	}
	defaults := map[string]any{
		"color":      map[string]any{"mode": "palette-classic"},
		"mappings":   nonNil(p.mappings),
		"thresholds": th,
		"unit":       p.unit,
	}
	if p.min != nil {
		defaults["min"] = *p.min
	}
	if p.max != nil {
		defaults["max"] = *p.max
	}
	if p.decimals != nil {
		defaults["decimals"] = *p.decimals
	}
	var custom, options map[string]any
	switch p.typ {
	case "timeseries":
		thStyle := "off"
		if len(p.thresholdKeys) > 0 {
			thStyle = "line"
		}
		stacking := "none"
		if p.stacked {
			stacking = "normal"
		}
		if p.percentStack {
			stacking = "percent"
		}
		fill := 10
		if p.stacked || p.percentStack {
			fill = 35
		}
		custom = map[string]any{
			"axisBorderShow":    false,
			"axisCenteredZero":  false,
			"axisColorMode":     "text",
			"axisLabel":         p.axisLabel,
			"axisPlacement":     "auto",
			"barAlignment":      0,
			"drawStyle":         "line",
			"fillOpacity":       fill,
			"gradientMode":      "none",
			"hideFrom":          map[string]any{"legend": false, "tooltip": false, "viz": false},
			"insertNulls":       false,
			"lineInterpolation": "linear",
			"lineWidth":         1,
			"pointSize":         4,
			"scaleDistribution": map[string]any{"type": "linear"},
			"showPoints":        "never",
			"spanNulls":         false,
			"stacking":          map[string]any{"group": "A", "mode": stacking},
			"thresholdsStyle":   map[string]any{"mode": thStyle},
		}
		calcs := p.legendCalcs
		if calcs == nil {
			calcs = []string{"mean", "max", "lastNotNull"}
		}
		sortBy := map[string]string{"mean": "Mean", "max": "Max", "min": "Min", "lastNotNull": "Last *"}[firstOf(calcs, "max")]
		options = map[string]any{
			"legend":  map[string]any{"calcs": calcs, "displayMode": "table", "placement": "bottom", "showLegend": true, "sortBy": sortBy, "sortDesc": true},
			"tooltip": map[string]any{"mode": "multi", "sort": "desc"},
		}
		if len(calcs) == 0 {
			options["legend"] = map[string]any{"calcs": []string{}, "displayMode": "list", "placement": "bottom", "showLegend": true}
		}
	case "stat":
		defaults["color"] = map[string]any{"mode": "thresholds"}
		options = map[string]any{
			"colorMode":         "value",
			"graphMode":         "none",
			"justifyMode":       "auto",
			"orientation":       "auto",
			"reduceOptions":     map[string]any{"calcs": []string{"lastNotNull"}, "fields": "", "values": false},
			"showPercentChange": false,
			"textMode":          "auto",
			"wideLayout":        true,
		}
	case "bargauge":
		defaults["color"] = map[string]any{"mode": "thresholds"}
		options = map[string]any{
			"displayMode":   "gradient",
			"maxVizHeight":  300,
			"minVizHeight":  16,
			"minVizWidth":   8,
			"namePlacement": "auto",
			"orientation":   "horizontal",
			"reduceOptions": map[string]any{"calcs": []string{"lastNotNull"}, "fields": "", "values": false},
			"showUnfilled":  true,
			"sizing":        "auto",
			"valueMode":     "color",
		}
	case "table":
		defaults["color"] = map[string]any{"mode": "thresholds"}
		custom = map[string]any{"align": "auto", "cellOptions": map[string]any{"type": "auto"}, "inspect": false}
		options = map[string]any{
			"cellHeight": "sm",
			"footer":     map[string]any{"countRows": false, "fields": "", "reducer": []string{"sum"}, "show": false},
			"showHeader": true,
		}
		if p.sortBy != "" {
			options["sortBy"] = []any{map[string]any{"desc": true, "displayName": p.sortBy}}
		}
	default:
		return nil, fmt.Errorf("unknown panel type %q", p.typ)
	}
	for k, v := range p.custom {
		custom[k] = v
	}
	if custom != nil {
		defaults["custom"] = custom
	}
	for k, v := range p.options {
		options[k] = v
	}
	var targets []any
	for n, t := range p.targets {
		m := map[string]any{
			"datasource":   dsRef,
			"editorMode":   "code",
			"expr":         t.expr,
			"legendFormat": t.legend,
			"refId":        string(rune('A' + n)),
		}
		if t.legend == "" {
			m["legendFormat"] = "__auto"
		}
		if t.instant {
			m["instant"] = true
			m["range"] = false
			m["format"] = t.format
		} else {
			m["range"] = true
			m["instant"] = false
		}
		if p.interval != "" {
			m["interval"] = p.interval
		}
		targets = append(targets, m)
	}
	out := map[string]any{
		"datasource":  dsRef,
		"description": desc,
		"fieldConfig": map[string]any{"defaults": defaults, "overrides": nonNil(p.overrides)},
		"gridPos":     map[string]any{"h": p.h, "w": p.w, "x": x, "y": y},
		"id":          id,
		"options":     options,
		"targets":     targets,
		"title":       p.title,
		"type":        p.typ,
	}
	if p.interval != "" {
		out["interval"] = p.interval
	}
	if len(p.transforms) > 0 {
		out["transformations"] = p.transforms
	}
	if p.conditional {
		out[ConditionalField] = true
	}
	if len(p.thresholdKeys) > 0 {
		out[ThresholdsField] = p.thresholdKeys
	}
	return out, nil
}

// firstOf returns want if calcs has it, else the first calc.
func firstOf(calcs []string, want string) string {
	for _, c := range calcs {
		if c == want {
			return c
		}
	}
	if len(calcs) > 0 {
		return calcs[0]
	}
	return ""
}

func nonNil(v []any) []any {
	if v == nil {
		return []any{}
	}
	return v
}

// unitOverride sets the unit of one (display) column or series.
func unitOverride(name, unit string) any {
	return map[string]any{
		"matcher":    map[string]any{"id": "byName", "options": name},
		"properties": []any{map[string]any{"id": "unit", "value": unit}},
	}
}

// organize hides Time and __name__ (and the given columns) and renames.
func organize(hide []string, rename map[string]string, order []string) any {
	ex := map[string]any{"Time": true, "__name__": true}
	for _, h := range hide {
		ex[h] = true
	}
	idx := map[string]any{}
	for n, c := range order {
		idx[c] = n
	}
	ren := map[string]any{}
	for k, v := range rename {
		ren[k] = v
	}
	return map[string]any{"id": "organize", "options": map[string]any{"excludeByName": ex, "indexByName": idx, "renameByName": ren}}
}

var merge = map[string]any{"id": "merge", "options": map[string]any{}}

// valueMapping maps exact values to text and colour (stat panels).
func valueMapping(m map[string][2]string) []any {
	opts := map[string]any{}
	n := 0
	for _, k := range slices.Sorted(maps.Keys(m)) {
		opts[k] = map[string]any{"color": m[k][1], "index": n, "text": m[k][0]}
		n++
	}
	return []any{map[string]any{"type": "value", "options": opts}}
}
