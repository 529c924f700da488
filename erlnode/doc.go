// Package erlnode speaks Erlang distribution to one or many target nodes, as
// a hidden node that nobody can reach: it never registers with EPMD, accepts
// no connection and serves no call. It knows nothing of metrics or
// collectors; what it is asked to keep switched on comes as SessionOptions.
//
// A call to a node goes through these files, in this order:
//
//	registrar.go  look the target up in its host's EPMD (resolve only)
//	handshake.go  the client side of the handshake (version 6), hidden;
//	              nothing derived from the cookie goes to a peer that
//	              answers under another name than the target's
//	proto.go      the connection after the handshake: frames read under a
//	              cap, ticks, the control messages a read-only client
//	              needs, and each reply handed to the call waiting for it
//	client.go     one Client per target: connect, back off, reconnect,
//	              count connection errors by reason
//	rpc.go        Client.Call: remote calls through the node's rex server
//	session.go    the probe module, loaded once per connection; the
//	              probe session that holds the statistics switches,
//	              checked alive and replaced; each probe call's deadline
//	              in the node's own clock
//
// Beside that path:
//
//	local.go      the process's own ergo node, shared by every Client
//	flags.go      the capability flags the exporter advertises
//	etfcheck.go   CheckTerm: a reply's declared sizes, checked before
//	              ergo's decoder allocates them
//	term.go       decoded terms as Go values, refusing what does not fit
//	name.go       node names, and the exporter's own stable one
//	cookie.go     reading the cookie without exposing it
//	tls.go        TLSFiles: the exporter's side of inet_tls_dist
//	probe.go      the probe's BEAM file, embedded (source in probe/)
package erlnode
