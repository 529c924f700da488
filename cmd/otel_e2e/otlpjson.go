// Reading the Collector's file exporter output (OTLP/JSON, one export
// request per line) into flat points.

package otel

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"time"
)

// Point is one data point as the Collector would export it.
type Point struct {
	Resource map[string]string // resource attributes: service.name (the job), service.instance.id (the instance), ...
	Metric   string
	Type     string // gauge, sum, histogram, summary or exponentialHistogram
	// Monotonic and Cumulative describe a sum (Cumulative also a histogram):
	// a Prometheus counter arrives as a monotonic cumulative sum.
	Monotonic, Cumulative bool
	Labels                map[string]string
	Start, Time           time.Time // Start is zero when the point has none
	Value                 float64   // gauges and sums; the count of histograms and summaries
	// NoValue is set on the points the receiver emits when a series
	// disappears from a scrape (Prometheus's staleness marker).
	NoValue bool
}

// Job and Instance are the Prometheus target labels, which the receiver
// turns into resource attributes.
func (p Point) Job() string      { return p.Resource["service.name"] }
func (p Point) Instance() string { return p.Resource["service.instance.id"] }

// The subset of OTLP/JSON the Prometheus receiver produces.
type (
	exportRequest struct {
		ResourceMetrics []struct {
			Resource struct {
				Attributes []keyValue `json:"attributes"`
			} `json:"resource"`
			ScopeMetrics []struct {
				Metrics []metric `json:"metrics"`
			} `json:"scopeMetrics"`
		} `json:"resourceMetrics"`
	}
	keyValue struct {
		Key   string                     `json:"key"`
		Value map[string]json.RawMessage `json:"value"`
	}
	metric struct {
		Name                 string  `json:"name"`
		Gauge                *series `json:"gauge"`
		Sum                  *series `json:"sum"`
		Histogram            *series `json:"histogram"`
		Summary              *series `json:"summary"`
		ExponentialHistogram *series `json:"exponentialHistogram"`
	}
	series struct {
		DataPoints             []dataPoint `json:"dataPoints"`
		AggregationTemporality int         `json:"aggregationTemporality"`
		IsMonotonic            bool        `json:"isMonotonic"`
	}
	dataPoint struct {
		Attributes        []keyValue      `json:"attributes"`
		StartTimeUnixNano string          `json:"startTimeUnixNano"`
		TimeUnixNano      string          `json:"timeUnixNano"`
		AsDouble          json.RawMessage `json:"asDouble"`
		AsInt             string          `json:"asInt"`
		Count             string          `json:"count"`
		Flags             uint32          `json:"flags"`
	}
)

// cumulative is OTLP's AGGREGATION_TEMPORALITY_CUMULATIVE; noRecordedValue
// is the data point flag FLAG_NO_RECORDED_VALUE.
const (
	cumulative      = 2
	noRecordedValue = 1
)

// ParsePoints decodes the file exporter's output. A last line without its
// newline is one the exporter is still writing, and is left for later.
func ParsePoints(data []byte) ([]Point, error) {
	var points []Point
	for n := 1; ; n++ {
		i := bytes.IndexByte(data, '\n')
		if i < 0 {
			return points, nil
		}
		line := data[:i]
		data = data[i+1:]
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		var req exportRequest
		if err := json.Unmarshal(line, &req); err != nil {
			return nil, fmt.Errorf("line %d: %w", n, err)
		}
		for _, rm := range req.ResourceMetrics {
			resource := attributes(rm.Resource.Attributes)
			for _, sm := range rm.ScopeMetrics {
				for _, m := range sm.Metrics {
					ps, err := m.points(resource)
					if err != nil {
						return nil, fmt.Errorf("line %d: metric %s: %w", n, m.Name, err)
					}
					points = append(points, ps...)
				}
			}
		}
	}
}

func (m metric) points(resource map[string]string) ([]Point, error) {
	var typ string
	var s *series
	for _, c := range []struct {
		typ string
		s   *series
	}{
		{"gauge", m.Gauge}, {"sum", m.Sum}, {"histogram", m.Histogram},
		{"summary", m.Summary}, {"exponentialHistogram", m.ExponentialHistogram},
	} {
		if c.s != nil {
			if s != nil {
				return nil, fmt.Errorf("both %s and %s", typ, c.typ)
			}
			typ, s = c.typ, c.s
		}
	}
	if s == nil {
		return nil, fmt.Errorf("no data")
	}
	points := make([]Point, 0, len(s.DataPoints))
	for _, dp := range s.DataPoints {
		p := Point{
			Resource:   resource,
			Metric:     m.Name,
			Type:       typ,
			Monotonic:  s.IsMonotonic,
			Cumulative: s.AggregationTemporality == cumulative,
			Labels:     attributes(dp.Attributes),
			NoValue:    dp.Flags&noRecordedValue != 0,
		}
		var err error
		if p.Time, err = unixNano(dp.TimeUnixNano); err != nil {
			return nil, fmt.Errorf("time: %w", err)
		}
		if dp.StartTimeUnixNano != "" {
			if p.Start, err = unixNano(dp.StartTimeUnixNano); err != nil {
				return nil, fmt.Errorf("start time: %w", err)
			}
		}
		if !p.NoValue {
			if p.Value, err = dp.value(typ); err != nil {
				return nil, err
			}
		}
		points = append(points, p)
	}
	return points, nil
}

// value reads a number point's asDouble or asInt, or the count of a
// distribution. OTLP/JSON writes 64-bit integers as strings, and non-finite
// doubles as the strings "NaN", "Infinity" and "-Infinity".
func (dp dataPoint) value(typ string) (float64, error) {
	switch {
	case typ != "gauge" && typ != "sum":
		if dp.Count == "" {
			return 0, nil
		}
		return strconv.ParseFloat(dp.Count, 64)
	case dp.AsInt != "":
		i, err := strconv.ParseInt(dp.AsInt, 10, 64)
		return float64(i), err
	case len(dp.AsDouble) == 0:
		return 0, fmt.Errorf("point has no value and no flag saying so")
	case dp.AsDouble[0] == '"':
		var s string
		if err := json.Unmarshal(dp.AsDouble, &s); err != nil {
			return 0, err
		}
		switch s {
		case "NaN":
			return math.NaN(), nil
		case "Infinity":
			return math.Inf(1), nil
		case "-Infinity":
			return math.Inf(-1), nil
		}
		return strconv.ParseFloat(s, 64)
	}
	var f float64
	err := json.Unmarshal(dp.AsDouble, &f)
	return f, err
}

func unixNano(s string) (time.Time, error) {
	ns, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return time.Time{}, err
	}
	return time.Unix(0, ns), nil
}

// attributes flattens OTLP attributes; all those the receiver sets are
// strings, anything else is kept as its JSON.
func attributes(kvs []keyValue) map[string]string {
	out := make(map[string]string, len(kvs))
	for _, kv := range kvs {
		if raw, ok := kv.Value["stringValue"]; ok {
			var s string
			if json.Unmarshal(raw, &s) == nil {
				out[kv.Key] = s
				continue
			}
		}
		b, _ := json.Marshal(kv.Value)
		out[kv.Key] = string(b)
	}
	return out
}
