package dashboards

import (
	"fmt"
	"sort"
	"strings"
)

// Selector is one vector selector in a PromQL expression.
type Selector struct {
	// Metric is the metric name ("" for a selector like {__name__=~"..."}).
	Metric string
	// Matchers are the label matchers as written, without spaces around
	// commas, e.g. `job=~"$job"`.
	Matchers []string
	// Range is the text inside a following [...], if any ("5m", "$__rate_interval").
	Range string
}

// MetricNames returns the sorted, distinct metric names an expression reads.
// It understands the PromQL the dashboards and rules use (functions,
// aggregations with by/without, vector matching, subqueries, offsets); it is
// a scanner, not a full parser, and does not validate the expression.
func MetricNames(expr string) ([]string, error) {
	sels, err := Selectors(expr)
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	var out []string
	for _, s := range sels {
		if s.Metric != "" && !seen[s.Metric] {
			seen[s.Metric] = true
			out = append(out, s.Metric)
		}
	}
	sort.Strings(out)
	return out, nil
}

type tokKind int

const (
	tIdent tokKind = iota
	tNumber
	tString
	tBraces   // {...}, text without the braces
	tBrackets // [...], text without the brackets
	tLParen
	tRParen
	tOther
)

type token struct {
	kind tokKind
	text string
}

func lex(expr string) ([]token, error) {
	var toks []token
	i := 0
	readString := func() (string, error) {
		q := expr[i]
		j := i + 1
		for j < len(expr) && expr[j] != q {
			if expr[j] == '\\' && q != '`' {
				j++
			}
			j++
		}
		if j >= len(expr) {
			return "", fmt.Errorf("unterminated string at %d", i)
		}
		s := expr[i : j+1]
		i = j + 1
		return s, nil
	}
	readBlock := func(open, close byte) (string, error) {
		start := i
		i++
		for i < len(expr) && expr[i] != close {
			switch expr[i] {
			case '"', '\'', '`':
				if _, err := readString(); err != nil {
					return "", err
				}
				continue
			case open:
				return "", fmt.Errorf("nested %c at %d", open, i)
			}
			i++
		}
		if i >= len(expr) {
			return "", fmt.Errorf("unterminated %c at %d", open, start)
		}
		i++
		return expr[start+1 : i-1], nil
	}
	for i < len(expr) {
		c := expr[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case c == '#':
			for i < len(expr) && expr[i] != '\n' {
				i++
			}
		case c == '"' || c == '\'' || c == '`':
			s, err := readString()
			if err != nil {
				return nil, err
			}
			toks = append(toks, token{tString, s})
		case c == '{':
			s, err := readBlock('{', '}')
			if err != nil {
				return nil, err
			}
			toks = append(toks, token{tBraces, s})
		case c == '[':
			s, err := readBlock('[', ']')
			if err != nil {
				return nil, err
			}
			toks = append(toks, token{tBrackets, strings.TrimSpace(s)})
		case c == '(':
			toks = append(toks, token{tLParen, "("})
			i++
		case c == ')':
			toks = append(toks, token{tRParen, ")"})
			i++
		case isIdentStart(c):
			j := i
			for j < len(expr) && isIdentChar(expr[j]) {
				j++
			}
			toks = append(toks, token{tIdent, expr[i:j]})
			i = j
		case c >= '0' && c <= '9' || c == '.':
			j := i
			for j < len(expr) && (isIdentChar(expr[j]) || expr[j] == '.' ||
				((expr[j] == '+' || expr[j] == '-') && (expr[j-1] == 'e' || expr[j-1] == 'E'))) {
				j++
			}
			toks = append(toks, token{tNumber, expr[i:j]})
			i = j
		case strings.IndexByte("+-*/%^=!<>~,@:", c) >= 0:
			toks = append(toks, token{tOther, string(c)})
			i++
		default:
			return nil, fmt.Errorf("unexpected %q at %d", c, i)
		}
	}
	return toks, nil
}

func isIdentStart(c byte) bool {
	return c == '_' || c == ':' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
}

func isIdentChar(c byte) bool { return isIdentStart(c) || (c >= '0' && c <= '9') }

var (
	aggregations = set("sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values",
		"bottomk", "topk", "quantile", "limitk", "limit_ratio")
	// Keywords followed by a parenthesised list of label names.
	labelLists = set("by", "without", "on", "ignoring", "group_left", "group_right")
	keywords   = set("and", "or", "unless", "bool", "offset", "atan2", "inf", "nan", "Inf", "NaN", "start", "end")
)

func set(words ...string) map[string]bool {
	m := map[string]bool{}
	for _, w := range words {
		m[w] = true
	}
	return m
}

// Selectors returns the vector selectors of an expression in order.
func Selectors(expr string) ([]Selector, error) {
	toks, err := lex(expr)
	if err != nil {
		return nil, err
	}
	var out []Selector
	for n := 0; n < len(toks); n++ {
		t := toks[n]
		next := func(k int) token {
			if n+k < len(toks) {
				return toks[n+k]
			}
			return token{kind: tOther}
		}
		switch t.kind {
		case tIdent:
			switch {
			case labelLists[t.text]:
				if next(1).kind == tLParen {
					for n++; n < len(toks) && toks[n].kind != tRParen; n++ {
					}
				}
				continue
			case aggregations[t.text] || keywords[t.text] || next(1).kind == tLParen:
				continue // an operator or a function call
			}
			s := Selector{Metric: t.text}
			if next(1).kind == tBraces {
				s.Matchers = splitMatchers(next(1).text)
				n++
			}
			if next(1).kind == tBrackets {
				s.Range = next(1).text
				n++
			}
			out = append(out, s)
		case tBraces: // selector without a metric name
			s := Selector{Matchers: splitMatchers(t.text)}
			if next(1).kind == tBrackets {
				s.Range = next(1).text
				n++
			}
			out = append(out, s)
		}
	}
	return out, nil
}

// splitMatchers splits the text between braces at top-level commas and
// removes the spaces around operators.
func splitMatchers(s string) []string {
	var out []string
	var cur strings.Builder
	inStr := byte(0)
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case inStr != 0:
			cur.WriteByte(c)
			if c == '\\' && inStr != '`' && i+1 < len(s) {
				i++
				cur.WriteByte(s[i])
			} else if c == inStr {
				inStr = 0
			}
		case c == '"' || c == '\'' || c == '`':
			inStr = c
			cur.WriteByte(c)
		case c == ',':
			if m := strings.TrimSpace(cur.String()); m != "" {
				out = append(out, m)
			}
			cur.Reset()
		case c == ' ' || c == '\t' || c == '\n':
		default:
			cur.WriteByte(c)
		}
	}
	if m := strings.TrimSpace(cur.String()); m != "" {
		out = append(out, m)
	}
	return out
}

// RangeCall is a call of a range function and the ranges of its argument.
type RangeCall struct {
	Func   string
	Ranges []string
}

// RangeCalls returns every call of the named functions (e.g. rate, irate,
// increase) with the [...] ranges that appear inside its argument list.
func RangeCalls(expr string, funcs ...string) ([]RangeCall, error) {
	toks, err := lex(expr)
	if err != nil {
		return nil, err
	}
	want := set(funcs...)
	var out []RangeCall
	for n := 0; n+1 < len(toks); n++ {
		if toks[n].kind != tIdent || !want[toks[n].text] || toks[n+1].kind != tLParen {
			continue
		}
		call := RangeCall{Func: toks[n].text}
		depth := 0
		for k := n + 1; k < len(toks); k++ {
			switch toks[k].kind {
			case tLParen:
				depth++
			case tRParen:
				depth--
			case tBrackets:
				call.Ranges = append(call.Ranges, toks[k].text)
			}
			if depth == 0 {
				break
			}
		}
		if depth != 0 {
			return nil, fmt.Errorf("unbalanced parentheses after %s", call.Func)
		}
		out = append(out, call)
	}
	return out, nil
}
