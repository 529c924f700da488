// Package web is the exporter's HTTP surface. NewHandler routes what the
// configuration calls for; a request flows through one of these files:
//
//	web.go      NewHandler: the routes, and the landing page linking them
//	metrics.go  /metrics: the node's metrics beside the exporter's own,
//	            with the deadline from X-Prometheus-Scrape-Timeout-Seconds
//	probe.go    /probe: a fleet node through the pool; what the pool's
//	            errors are as status codes (400, 409, 503)
//	top.go      /top: the ranking behind beam_process_*, as JSON or as
//	            the page in top.html
//	targets.go  /targets: the nodes in the hosts' EPMDs, for http_sd_configs
package web
