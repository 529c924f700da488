// A minimal EPMD client (NAMES request) and starting the host's epmd daemon.

package erltest

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"
)

// EPMDAddr is where every node registers: the host's epmd. Nodes in roots
// share the host's network namespace, so they use it too.
const EPMDAddr = "127.0.0.1:4369"

// epmdMu serializes starting epmd within this process.
var epmdMu sync.Mutex

// ensureEPMD makes sure an epmd answers on EPMDAddr, starting the host's
// `epmd -daemon` if not. Nodes are started with -start_epmd false so that
// a root's own epmd binary never runs: exactly one epmd, the host's.
func ensureEPMD() error {
	epmdMu.Lock()
	defer epmdMu.Unlock()
	if _, err := EPMDNames(); err == nil {
		return nil
	}
	path, err := exec.LookPath("epmd")
	if err != nil {
		return errors.New("no epmd answers on " + EPMDAddr + " and epmd is not on PATH (apt-get install erlang-base)")
	}
	// -daemon forks and detaches, so the daemon outlives this test binary
	// and is shared by every test binary and node.
	if out, err := exec.Command(path, "-daemon").CombinedOutput(); err != nil {
		return fmt.Errorf("epmd -daemon: %v: %s", err, strings.TrimSpace(string(out)))
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := EPMDNames()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("epmd started but does not answer on %s: %w", EPMDAddr, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// EPMDNames asks the host's epmd for the registered node names (short
// names, without @host) and their distribution ports.
func EPMDNames() (map[string]int, error) {
	conn, err := net.DialTimeout("tcp", EPMDAddr, 2*time.Second)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	// NAMES_REQ: 2-byte length, then 110 ('n').
	if _, err := conn.Write([]byte{0, 1, 110}); err != nil {
		return nil, err
	}
	r := bufio.NewReader(conn)
	var port [4]byte // epmd's own port number
	if _, err := io.ReadFull(r, port[:]); err != nil {
		return nil, fmt.Errorf("epmd NAMES reply: %w", err)
	}
	names := map[string]int{}
	for {
		line, err := r.ReadString('\n')
		// Each line: "name <name> at port <port>".
		if f := strings.Fields(line); len(f) == 5 && f[0] == "name" && f[2] == "at" && f[3] == "port" {
			if p, perr := strconv.Atoi(f[4]); perr == nil {
				names[f[1]] = p
			}
		}
		if err == io.EOF {
			return names, nil
		}
		if err != nil {
			return nil, err
		}
	}
}
