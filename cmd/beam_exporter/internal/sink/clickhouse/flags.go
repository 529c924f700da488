// The sink's flags and the configuration they make, the password read from a file or the environment.

package clickhouse

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/alecthomas/kingpin/v2"
)

// PasswordEnv names the environment variable that may carry the password.
// There is no flag for the password itself: it would show in ps.
const PasswordEnv = "BEAM_EXPORTER_CLICKHOUSE_PASSWORD"

// maxPasswordLen guards against pointing the flag at a large file by mistake.
const maxPasswordLen = 4096

// Flags are the --sink.clickhouse.* flags, as parsed.
type Flags struct {
	url, database, table, user, passwordFile, deployment, pod string
	interval, timeout                                         time.Duration
	bufferRows                                                int
	createTable                                               bool
}

// AddFlags adds the --sink.clickhouse.* flags to app. The sink is on when
// --sink.clickhouse.url is given.
func AddFlags(app *kingpin.Application) *Flags {
	f := &Flags{}
	host := os.Getenv("HOSTNAME")
	app.Flag("sink.clickhouse.url", "Write the top processes to ClickHouse through its HTTP interface at this URL (http://host:8123). Off when empty.").StringVar(&f.url)
	app.Flag("sink.clickhouse.database", "ClickHouse database of the table.").Default("default").StringVar(&f.database)
	app.Flag("sink.clickhouse.table", "ClickHouse table the rows go to.").Default("beam_top_processes").StringVar(&f.table)
	app.Flag("sink.clickhouse.user", "ClickHouse user.").Default("default").StringVar(&f.user)
	app.Flag("sink.clickhouse.password-file", "File holding the ClickHouse user's password. The environment variable "+PasswordEnv+", when set and not empty, takes precedence. Without either, no password.").StringVar(&f.passwordFile)
	app.Flag("sink.clickhouse.interval", "Shortest time between two rankings the sink asks of a node, and so between its samples.").Default("5s").DurationVar(&f.interval)
	app.Flag("sink.clickhouse.timeout", "Deadline of one request to ClickHouse.").Default("10s").DurationVar(&f.timeout)
	app.Flag("sink.clickhouse.buffer-rows", "Rows kept while ClickHouse cannot take them; beyond, the oldest are dropped.").Default("50000").IntVar(&f.bufferRows)
	app.Flag("sink.clickhouse.create-table", "Create the table if it does not exist, in the variant the server takes (Knock's schema from ClickHouse 22.3, the portable one before).").BoolVar(&f.createTable)
	app.Flag("sink.clickhouse.deployment", "The deployment column (default: the pod name of $HOSTNAME without its ReplicaSet or StatefulSet suffix).").Default(deploymentOf(host)).StringVar(&f.deployment)
	app.Flag("sink.clickhouse.pod", "The pod column (default: $HOSTNAME, which Kubernetes sets to the pod's name).").Default(host).StringVar(&f.pod)
	return f
}

// Enabled reports whether the flags ask for the sink.
func (f Flags) Enabled() bool { return f.url != "" }

// Config checks the flags and reads the password. Errors name the flag.
func (f Flags) Config() (Config, error) {
	c := Config{
		Database: f.database, Table: f.table, User: f.user,
		Interval: f.interval, Timeout: f.timeout, BufferRows: f.bufferRows, CreateTable: f.createTable,
		Deployment: f.deployment, Pod: f.pod,
	}
	u, err := url.Parse(f.url)
	switch {
	case err != nil:
		return c, fmt.Errorf("--sink.clickhouse.url: %w", err)
	case u.Scheme != "http" && u.Scheme != "https":
		return c, fmt.Errorf("--sink.clickhouse.url %q: want an http:// or https:// URL of ClickHouse's HTTP interface", f.url)
	case u.Host == "":
		return c, fmt.Errorf("--sink.clickhouse.url %q has no host", f.url)
	case u.User != nil:
		// Whatever is in the URL shows in ps.
		return c, fmt.Errorf("--sink.clickhouse.url carries a user or password; give the user with --sink.clickhouse.user and the password with --sink.clickhouse.password-file or %s", PasswordEnv)
	}
	for _, p := range []string{"user", "password", "query", "database"} {
		if u.Query().Has(p) {
			return c, fmt.Errorf("--sink.clickhouse.url sets %q; the sink sets it (from --sink.clickhouse.user, --sink.clickhouse.password-file or %s, --sink.clickhouse.database)", p, PasswordEnv)
		}
	}
	c.URL = u
	for flag, name := range map[string]string{"--sink.clickhouse.database": f.database, "--sink.clickhouse.table": f.table} {
		if !validName.MatchString(name) {
			return c, fmt.Errorf("%s %q: want letters, digits and _, not starting with a digit", flag, name)
		}
	}
	switch {
	case f.interval < time.Second:
		return c, fmt.Errorf("--sink.clickhouse.interval must be at least 1s, got %s", f.interval)
	case f.timeout <= 0:
		return c, fmt.Errorf("--sink.clickhouse.timeout must be positive, got %s", f.timeout)
	case f.bufferRows < 1:
		return c, fmt.Errorf("--sink.clickhouse.buffer-rows must be at least 1, got %d", f.bufferRows)
	}
	c.Password, c.PasswordSource, c.PasswordExposed, err = loadPassword(f.passwordFile)
	return c, err
}

// loadPassword takes the password from the environment when it is set and
// not empty, else from path, else there is none. Errors name the file,
// never the password.
func loadPassword(path string) (password, source string, exposed bool, err error) {
	if v := strings.TrimRight(os.Getenv(PasswordEnv), "\r\n"); v != "" {
		return v, "environment", false, nil
	}
	if path == "" {
		return "", "none", false, nil
	}
	fail := func(err error) (string, string, bool, error) {
		return "", "", false, fmt.Errorf("--sink.clickhouse.password-file: %w", err)
	}
	info, err := os.Stat(path)
	if err != nil {
		return fail(err)
	}
	if !info.Mode().IsRegular() {
		return fail(fmt.Errorf("%s is not a regular file", path))
	}
	if info.Size() > maxPasswordLen {
		return fail(fmt.Errorf("%s is %d bytes, more than a password can be (%d)", path, info.Size(), maxPasswordLen))
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return fail(err)
	}
	v := strings.TrimRight(string(b), "\r\n")
	if v == "" {
		return fail(fmt.Errorf("%s is empty", path))
	}
	if strings.ContainsAny(v, "\r\n") {
		return fail(errors.New(path + " has more than one line"))
	}
	return v, path, info.Mode().Perm()&0o077 != 0, nil
}

// Pod names Kubernetes makes: <deployment>-<pod-template-hash>-<5 random>
// for a Deployment's pods, <statefulset>-<ordinal> for a StatefulSet's.
var (
	replicaSetPod  = regexp.MustCompile(`^(.+)-[a-z0-9]{5,10}-[a-z0-9]{5}$`)
	statefulSetPod = regexp.MustCompile(`^(.+)-[0-9]+$`)
)

// deploymentOf guesses the deployment (or StatefulSet) from a pod name;
// "" when the name is neither shape.
func deploymentOf(pod string) string {
	if m := replicaSetPod.FindStringSubmatch(pod); m != nil {
		return m[1]
	}
	if m := statefulSetPod.FindStringSubmatch(pod); m != nil {
		return m[1]
	}
	return ""
}
