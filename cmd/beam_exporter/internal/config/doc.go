// Package config reads --config.file: the auth modules of fleet mode, each a
// named way to reach a cluster (its cookie, its TLS files, the node-name
// patterns it may be used for and, optionally, its own set of collectors).
//
// Files:
//
//	authmodules.go  LoadAuthModules, and the YAML it reads
//	targets.go      the targets patterns: which nodes a module may reach
package config
