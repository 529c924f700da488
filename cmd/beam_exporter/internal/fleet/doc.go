// Package fleet pools the connections of fleet mode: one erlnode.Client and
// one collector.Exporter per target node, created on a target's first probe
// and kept, with their tier caches and probe session, until the target has
// been idle too long. It knows nothing of HTTP; the web package turns its
// errors into status codes.
//
// Files:
//
//	fleet.go  Options, New, Resolve (which auth module), Acquire and
//	          release (the pool), Held (what it holds, for the sink),
//	          Run (idle disconnects)
package fleet
