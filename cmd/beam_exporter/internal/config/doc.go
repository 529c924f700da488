// Package config reads --config.file: the auth modules of fleet mode, each a
// named way to reach a cluster (its cookie, its TLS files and, optionally,
// its own set of collectors).
//
// Files:
//
//	authmodules.go  LoadAuthModules, and the YAML it reads
package config
