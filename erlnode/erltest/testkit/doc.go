// Package testkit holds the small helpers that tests in several packages
// share, so that each is written once: HTTP GETs, a buffer a process writes
// while the test reads it, files written into a test's directory, polling
// for a condition, and free ports.
//
// It sits under erltest, the project's test harness, because the top level
// of the repository holds only cmd, collector, erlnode, dashboards and alerts.
//
// Files:
//
//	http.go   Get, and FreeAddr for a server the test starts
//	buffer.go LockedBuffer, the output of a process or a logger
//	files.go  WriteFile, with the exact permissions a test asks for
//	wait.go   WaitFor, polling until a condition holds
package testkit
