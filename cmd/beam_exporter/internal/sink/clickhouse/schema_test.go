package clickhouse

import (
	"strings"
	"testing"
)

func TestParseVersion(t *testing.T) {
	for text, want := range map[string]version{"18.16.1": {18, 16}, "24.8.4.13": {24, 8}, "22.3": {22, 3}} {
		if got, err := parseVersion(text); err != nil || got != want {
			t.Errorf("%q: %v %v, want %v", text, got, err, want)
		}
	}
	for _, text := range []string{"", "Ok.", "<html>", "v22.3"} {
		if _, err := parseVersion(text); kindOf(err) != notClickHouse {
			t.Errorf("%q: %v, want not_clickhouse", text, err)
		}
	}
	if !(version{22, 3}).atLeast(currentFrom) || (version{21, 12}).atLeast(currentFrom) || !(version{23, 1}).atLeast(currentFrom) {
		t.Error("atLeast")
	}
}

// The columns of both shipped variants, as system.columns writes them.
var (
	portableColumns = map[string]string{
		"timestamp": "DateTime('UTC')", "deployment": "String", "pod": "String", "node": "String", "metric": "String",
		"rank": "UInt16", "value": "Float64", "pid": "String", "name": "String", "registered_name": "String",
		"initial_call": "String", "current_function": "String", "memory": "UInt64", "message_queue_len": "UInt64", "reductions": "UInt64",
	}
	currentColumns = map[string]string{
		"timestamp": "DateTime64(3, 'UTC')", "deployment": "LowCardinality(String)", "pod": "LowCardinality(String)",
		"node": "LowCardinality(String)", "metric": "LowCardinality(String)", "rank": "UInt16", "value": "Float64", "pid": "String",
		"name": "LowCardinality(String)", "registered_name": "LowCardinality(String)", "initial_call": "LowCardinality(String)",
		"current_function": "LowCardinality(String)", "memory": "UInt64", "message_queue_len": "UInt64", "reductions": "UInt64",
		"memory_details": "Map(LowCardinality(String), UInt64)",
	}
)

func TestCheckColumns(t *testing.T) {
	if f, err := checkColumns("t", portableColumns); err != nil || f != unixSeconds {
		t.Errorf("portable: %v %v", f, err)
	}
	if f, err := checkColumns("t", currentColumns); err != nil || f != isoMillis {
		t.Errorf("current: %v %v", f, err)
	}
	with := func(changes map[string]string) map[string]string {
		m := map[string]string{}
		for k, v := range portableColumns {
			m[k] = v
		}
		for k, v := range changes {
			if v == "" {
				delete(m, k)
			} else {
				m[k] = v
			}
		}
		return m
	}
	for _, tc := range []struct {
		name    string
		columns map[string]string
		says    []string
	}{
		{"no pid", with(map[string]string{"pid": ""}), []string{"column pid is missing"}},
		{"rank too small", with(map[string]string{"rank": "UInt8"}), []string{"column rank is UInt8, not UInt16 or"}},
		{"memory in 32 bits and a nullable name", with(map[string]string{"memory": "UInt32", "name": "Nullable(String)"}),
			[]string{"column name is Nullable(String), not String", "column memory is UInt32, not UInt64 or Int64"}},
		{"a date", with(map[string]string{"timestamp": "Date"}), []string{"column timestamp is Date, not DateTime or DateTime64"}},
	} {
		_, err := checkColumns("db.t", tc.columns)
		if kindOf(err) != badTable {
			t.Errorf("%s: %v, want a table failure", tc.name, err)
			continue
		}
		for _, s := range append(tc.says, "table db.t does not fit the sink", "--sink.clickhouse.create-table") {
			if !strings.Contains(err.Error(), s) {
				t.Errorf("%s: %q does not say %q", tc.name, err, s)
			}
		}
	}
}

// The shipped files create the table the sink checks for, under the name
// it is given.
func TestSchemaFiles(t *testing.T) {
	for name, sql := range map[string]string{"current": currentSchema, "portable": portableSchema} {
		if strings.Count(sql, schemaCreate) != 1 || strings.Count(sql, "CREATE") != 1 {
			t.Errorf("%s: want one statement, %q (create renames its table)", name, schemaCreate)
		}
		for _, c := range columns {
			if !strings.Contains(sql, "\n    "+c.name+" ") {
				t.Errorf("%s: no column %s", name, c.name)
			}
		}
	}
	for _, want := range []string{"LowCardinality(String)", "Map(", "TTL ", "DateTime64(3", "ORDER BY (deployment, pod, node, timestamp)", "non_replicated_deduplication_window"} {
		if !strings.Contains(currentSchema, want) {
			t.Errorf("the current schema lacks %s", want)
		}
	}
	for _, unwanted := range []string{"LowCardinality", "Map(", "\nTTL", "DateTime64"} {
		if strings.Contains(portableSchema[strings.Index(portableSchema, "CREATE"):], unwanted) {
			t.Errorf("the portable schema uses %s", unwanted)
		}
	}
}
