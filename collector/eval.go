// Fixed Erlang expressions run by erl_eval, for reads the rpc arguments cannot carry.

package collector

import (
	"context"
	"fmt"

	"github.com/ergo-services/ergo/etf"

	"github.com/beam-exporter/beam_exporter/erlnode"
)

// Some reads need a term that ergo cannot send back to the node: inet:getstat
// takes the port erlang:system_info(dist_ctrl) returns, and ergo encodes no
// ports. Rather than one call per port that cannot be written, a collector
// gives erl_eval one fixed expression, built here as abstract format (only
// atoms, integers and tuples, which ergo does encode). The expression is
// ours and constant: no text from the node or the scrape goes into it. It
// needs no probe, so it also works where code loading is off.

// expr is one node of Erlang's abstract format.
type expr = etf.Term

const line = 1

func eAtom(a string) expr    { return etf.Tuple{etf.Atom("atom"), line, etf.Atom(a)} }
func eVar(name string) expr  { return etf.Tuple{etf.Atom("var"), line, etf.Atom(name)} }
func eTuple(es ...expr) expr { return etf.Tuple{etf.Atom("tuple"), line, etf.List(es)} }
func eOp(op string, a, b expr) expr {
	return etf.Tuple{etf.Atom("op"), line, etf.Atom(op), a, b}
}

// eCall is the remote call m:f(args...).
func eCall(m, f string, args ...expr) expr {
	return etf.Tuple{etf.Atom("call"), line,
		etf.Tuple{etf.Atom("remote"), line, eAtom(m), eAtom(f)}, etf.List(args)}
}

// eList is the proper list [es...].
func eList(es ...expr) expr {
	l := expr(etf.Tuple{etf.Atom("nil"), line})
	for i := len(es) - 1; i >= 0; i-- {
		l = etf.Tuple{etf.Atom("cons"), line, es[i], l}
	}
	return l
}

// eAtoms is the list of atoms [as...].
func eAtoms(as ...string) expr {
	es := make([]expr, len(as))
	for i, a := range as {
		es[i] = eAtom(a)
	}
	return eList(es...)
}

// eComprehension is [template || pattern <- source, filters...].
func eComprehension(template, pattern, source expr, filters ...expr) expr {
	quals := etf.List{etf.Tuple{etf.Atom("generate"), line, pattern, source}}
	for _, f := range filters {
		quals = append(quals, f)
	}
	return etf.Tuple{etf.Atom("lc"), line, template, quals}
}

// evaluate runs e on the node with erl_eval:expr/2 and returns its value.
func evaluate(ctx context.Context, node Node, e expr) (etf.Term, error) {
	reply, err := node.Call(ctx, "erl_eval", "expr", e, etf.List{})
	if err != nil {
		return nil, err
	}
	tup, err := erlnode.Tuple(reply, 3)
	if err != nil {
		return nil, fmt.Errorf("erl_eval's answer: %w", err)
	}
	if tup[0] != etf.Atom("value") {
		return nil, fmt.Errorf("erl_eval's answer: expected {value, _, _}")
	}
	return tup[1], nil
}
