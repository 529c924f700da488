// Package chtest starts Debian's clickhouse-server for tests, with its data
// in a temporary directory and only an HTTP port, on loopback.
//
// A test package shares one server (Shared): it takes about a second to
// start and 100 MB to run. Its users are default
// (no password) and sink (password Password).
package chtest

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Password is the password of the user sink.
const Password = "sink-password"

// startTimeout bounds a start until /ping answers.
const startTimeout = 60 * time.Second

// Server is a running (or stopped) clickhouse-server.
type Server struct {
	// URL is the server's HTTP interface, http://127.0.0.1:PORT/.
	URL     string
	Version string // what SELECT version() answers, e.g. 18.16.1

	dir    string
	config string
	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
}

// Binary finds clickhouse-server, which root's PATH may lack (/usr/sbin).
func Binary() (string, error) {
	if p, err := exec.LookPath("clickhouse-server"); err == nil {
		return p, nil
	}
	if _, err := os.Stat("/usr/sbin/clickhouse-server"); err == nil {
		return "/usr/sbin/clickhouse-server", nil
	}
	return "", errors.New("clickhouse-server is missing: apt-get install clickhouse-server (make deps does)")
}

// Start starts a server on a free loopback port, with its data in a new
// temporary directory, and waits until it answers.
func Start() (*Server, error) {
	dir, err := os.MkdirTemp("", "beam-exporter-clickhouse-")
	if err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	s := &Server{URL: fmt.Sprintf("http://127.0.0.1:%d/", port), dir: dir, config: filepath.Join(dir, "config.xml")}
	files := map[string]string{
		"config.xml": fmt.Sprintf(configXML, dir, dir, port, dir, dir, dir, dir),
		"users.xml":  fmt.Sprintf(usersXML, Password),
	}
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o600); err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
	}
	if err := s.Restart(); err != nil {
		s.Close()
		return nil, err
	}
	v, err := s.Query("SELECT version()")
	if err != nil {
		s.Close()
		return nil, err
	}
	s.Version = v
	return s, nil
}

// The server's configuration: HTTP only, on loopback, small caches, and
// every path under the test's directory.
const configXML = `<?xml version="1.0"?>
<yandex>
  <logger><level>warning</level><log>%s/server.log</log><errorlog>%s/error.log</errorlog></logger>
  <http_port>%d</http_port>
  <listen_host>127.0.0.1</listen_host>
  <path>%s/data/</path>
  <tmp_path>%s/tmp/</tmp_path>
  <user_files_path>%s/user_files/</user_files_path>
  <format_schema_path>%s/format_schemas/</format_schema_path>
  <users_config>users.xml</users_config>
  <default_profile>default</default_profile>
  <default_database>default</default_database>
  <mark_cache_size>67108864</mark_cache_size>
  <uncompressed_cache_size>67108864</uncompressed_cache_size>
  <max_concurrent_queries>50</max_concurrent_queries>
</yandex>
`

const usersXML = `<?xml version="1.0"?>
<yandex>
  <profiles><default></default></profiles>
  <users>
    <default><password></password><networks><ip>127.0.0.1</ip></networks><profile>default</profile><quota>default</quota></default>
    <sink><password>%s</password><networks><ip>127.0.0.1</ip></networks><profile>default</profile><quota>default</quota></sink>
  </users>
  <quotas><default></default></quotas>
</yandex>
`

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// Restart starts the server again after Stop, on the same port and data.
func (s *Server) Restart() error {
	bin, err := Binary()
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		return errors.New("chtest: the server is running")
	}
	out, err := os.OpenFile(filepath.Join(s.dir, "stdout.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer out.Close()
	cmd := exec.Command(bin, "--config-file="+s.config)
	cmd.Dir = s.dir
	cmd.Stdout, cmd.Stderr = out, out
	// Pdeathsig: if the test binary dies, the server goes with it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting clickhouse-server: %w", err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	s.cmd, s.exited = cmd, exited
	deadline := time.Now().Add(startTimeout)
	for {
		if resp, err := http.Get(s.URL + "ping"); err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK && strings.TrimSpace(string(body)) == "Ok." {
				return nil
			}
		}
		select {
		case <-exited:
			s.cmd = nil
			return fmt.Errorf("clickhouse-server exited while starting: %s", s.logTail())
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("clickhouse-server did not answer /ping within %s: %s", startTimeout, s.logTail())
		}
	}
}

// Stop stops the server (SIGTERM, then SIGKILL after 30 s) and waits
// until its port is closed.
func (s *Server) Stop() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return nil
	}
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(30 * time.Second):
		syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
		<-s.exited
	}
	s.cmd = nil
	return nil
}

// Close stops the server and removes its directory.
func (s *Server) Close() {
	s.Stop()
	os.RemoveAll(s.dir)
}

// Query runs one statement as the default user and returns its answer,
// trimmed; an answer other than 200 OK is an error carrying it.
func (s *Server) Query(statement string) (string, error) {
	resp, err := http.Post(s.URL, "text/plain", strings.NewReader(statement))
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	text := strings.TrimSpace(string(body))
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("ClickHouse answered %d to %q: %s", resp.StatusCode, statement, text)
	}
	return text, nil
}

// Host is the server's host:port.
func (s *Server) Host() string {
	u, _ := url.Parse(s.URL)
	return u.Host
}

func (s *Server) logTail() string {
	var b strings.Builder
	for _, name := range []string{"stdout.log", "error.log"} {
		text, _ := os.ReadFile(filepath.Join(s.dir, name))
		if len(text) > 2000 {
			text = text[len(text)-2000:]
		}
		fmt.Fprintf(&b, "\n%s:\n%s", name, text)
	}
	return b.String()
}

// Shared is a package's one server: started by the first test that asks
// for it, and closed by TestMain once every test has run.
type Shared struct {
	once   sync.Once
	server *Server
	err    error
}

// Get starts the server on first use and fails t when it cannot.
func (sh *Shared) Get(t testing.TB) *Server {
	t.Helper()
	sh.once.Do(func() { sh.server, sh.err = Start() })
	if sh.err != nil {
		t.Fatal(sh.err)
	}
	return sh.server
}

// Close stops the server, if one was started.
func (sh *Shared) Close() {
	if sh.server != nil {
		sh.server.Close()
	}
}
