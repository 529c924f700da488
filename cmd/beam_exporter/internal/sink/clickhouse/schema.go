// The table: which variant the server takes, whether the table found fits, and creating it.

package clickhouse

import (
	"context"
	_ "embed"
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// The two variants of the table, as documented SQL files. Both create
// default.beam_top_processes (schemaCreate); create renames it to the
// configured table.
var (
	//go:embed schema/beam_top_processes.sql
	currentSchema string
	//go:embed schema/beam_top_processes_portable.sql
	portableSchema string
)

// schemaCreate is how both files start their statement.
const schemaCreate = "CREATE TABLE IF NOT EXISTS default.beam_top_processes"

// The ends of the messages of a missing and of a misfit table.
const (
	createAdvice = `create it from the schema the sink ships (observability.md, "The ClickHouse sink"), or give --sink.clickhouse.create-table`
	misfitAdvice = `the sink ships its schema (observability.md, "The ClickHouse sink"); to have the sink create a table, name a new one with --sink.clickhouse.table and give --sink.clickhouse.create-table`
)

// currentFrom is the first release that creates the current variant:
// 22.3, the first long-term release where everything it uses (Map,
// LowCardinality, DateTime64, TTL, non-replicated insert deduplication)
// needs no experimental setting.
var currentFrom = version{22, 3}

// version is a ClickHouse release, major.minor.
type version struct{ major, minor int }

func (v version) atLeast(o version) bool {
	return v.major > o.major || (v.major == o.major && v.minor >= o.minor)
}

func (v version) String() string { return fmt.Sprintf("%d.%d", v.major, v.minor) }

var versionText = regexp.MustCompile(`^(\d+)\.(\d+)(\.\d+)*$`)

// parseVersion reads SELECT version()'s answer, 18.16.1 or 24.8.4.13.
func parseVersion(s string) (version, error) {
	m := versionText.FindStringSubmatch(s)
	if m == nil {
		return version{}, &requestError{notClickHouse, fmt.Errorf("the URL answers SELECT version() with %q, not a ClickHouse version", truncate(s, 100))}
	}
	major, _ := strconv.Atoi(m[1])
	minor, _ := strconv.Atoi(m[2])
	return version{major, minor}, nil
}

// tableShape is what the sink learnt of the table it writes to.
type tableShape struct {
	format timeFormat
	// dedup is true when the engine keeps insert hashes, so that a batch
	// sent twice is written once (a Replicated engine, or a MergeTree with
	// non_replicated_deduplication_window).
	dedup bool
}

// columnRule is a column the sink writes and the types it can write to.
type columnRule struct {
	name  string
	types []string // after LowCardinality(...) is taken off
}

var (
	stringTypes  = []string{"String"}
	integerTypes = []string{"UInt64", "Int64"}
	columns      = []columnRule{
		{"timestamp", []string{"DateTime", "DateTime64"}},
		{"deployment", stringTypes},
		{"pod", stringTypes},
		{"node", stringTypes},
		{"metric", stringTypes},
		{"rank", []string{"UInt16", "UInt32", "UInt64", "Int32", "Int64"}},
		{"value", []string{"Float64", "Float32"}},
		{"pid", stringTypes},
		{"name", stringTypes},
		{"registered_name", stringTypes},
		{"initial_call", stringTypes},
		{"current_function", stringTypes},
		{"memory", integerTypes},
		{"message_queue_len", integerTypes},
		{"reductions", integerTypes},
	}
)

// baseType takes LowCardinality(...) off a column type, and the arguments
// off DateTime('UTC') and DateTime64(3, 'UTC').
func baseType(t string) string {
	if inner, ok := strings.CutPrefix(t, "LowCardinality("); ok {
		t = strings.TrimSuffix(inner, ")")
	}
	if i := strings.IndexByte(t, '('); i > 0 && strings.HasPrefix(t, "DateTime") {
		t = t[:i]
	}
	return t
}

// checkColumns compares the table's columns (name to type) with what the
// sink writes. Other columns are left to their defaults.
func checkColumns(table string, have map[string]string) (timeFormat, error) {
	var problems []string
	for _, c := range columns {
		t, ok := have[c.name]
		switch {
		case !ok:
			problems = append(problems, fmt.Sprintf("column %s is missing", c.name))
		case !contains(c.types, baseType(t)):
			problems = append(problems, fmt.Sprintf("column %s is %s, not %s", c.name, t, strings.Join(c.types, " or ")))
		}
	}
	if len(problems) > 0 {
		return 0, &requestError{badTable, fmt.Errorf("table %s does not fit the sink: %s; %s",
			table, strings.Join(problems, "; "), misfitAdvice)}
	}
	if baseType(have["timestamp"]) == "DateTime64" {
		return isoMillis, nil
	}
	return unixSeconds, nil
}

func contains(list []string, s string) bool {
	for _, e := range list {
		if e == s {
			return true
		}
	}
	return false
}

// dedupSetting finds a positive non_replicated_deduplication_window.
var dedupSetting = regexp.MustCompile(`non_replicated_deduplication_window\s*=\s*[1-9]`)

// inspect reads the table's columns and engine; found is false when there
// is no such table.
func inspect(ctx context.Context, s *server, database, table string) (shape tableShape, found bool, err error) {
	cols, err := s.query(ctx, fmt.Sprintf("SELECT name, type FROM system.columns WHERE database = %s AND table = %s FORMAT TabSeparated",
		quote(database), quote(table)))
	if err != nil {
		return shape, false, fmt.Errorf("reading the columns of %s.%s: %w", database, table, err)
	}
	have := map[string]string{}
	for _, line := range strings.Split(cols, "\n") {
		if name, typ, ok := strings.Cut(line, "\t"); ok {
			have[name] = unescapeTSV(typ)
		}
	}
	if len(have) == 0 {
		return shape, false, nil
	}
	if shape.format, err = checkColumns(database+"."+table, have); err != nil {
		return shape, true, err
	}
	engine, err := s.query(ctx, fmt.Sprintf("SELECT engine, create_table_query FROM system.tables WHERE database = %s AND name = %s FORMAT TabSeparated",
		quote(database), quote(table)))
	if err != nil {
		return shape, true, fmt.Errorf("reading the engine of %s.%s: %w", database, table, err)
	}
	shape.dedup = strings.HasPrefix(engine, "Replicated") || dedupSetting.MatchString(engine)
	return shape, true, nil
}

// create makes the database if need be and the table in the variant the
// server takes.
func create(ctx context.Context, s *server, v version, database, table string) (variant string, err error) {
	sql, variant := portableSchema, "portable (beam_top_processes_portable.sql)"
	if v.atLeast(currentFrom) {
		sql, variant = currentSchema, "current (beam_top_processes.sql)"
	}
	if _, err := s.query(ctx, "CREATE DATABASE IF NOT EXISTS "+ident(database)); err != nil {
		return "", fmt.Errorf("creating database %s: %w", database, err)
	}
	sql = strings.Replace(sql, schemaCreate, "CREATE TABLE IF NOT EXISTS "+ident(database)+"."+ident(table), 1)
	if _, err := s.query(ctx, sql); err != nil {
		return "", fmt.Errorf("creating table %s.%s (%s variant, for ClickHouse %s): %w", database, table, variant, v, err)
	}
	return variant, nil
}

// quote is a string literal; ident a name. Both are checked names
// (validName), so quoting is a formality.
func quote(s string) string { return "'" + strings.ReplaceAll(s, "'", `\'`) + "'" }
func ident(s string) string { return "`" + s + "`" }

// validName is a database or table name that needs no escaping anywhere.
var validName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// unescapeTSV undoes TabSeparated's escaping of the few characters a type
// name holds: DateTime(\'UTC\').
func unescapeTSV(s string) string { return strings.ReplaceAll(s, `\'`, "'") }

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}
