// The flags, wired to the packages that do the work: one node, a fleet, the sink, or all three.

package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/alecthomas/kingpin/v2"
	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	versioncollector "github.com/prometheus/client_golang/prometheus/collectors/version"
	"github.com/prometheus/common/version"
	toolkitweb "github.com/prometheus/exporter-toolkit/web"
	"github.com/prometheus/exporter-toolkit/web/kingpinflag"
	sloggokit "github.com/tjhop/slog-gokit"

	"github.com/beam-exporter/beam_exporter/cmd/beam_exporter/internal/config"
	"github.com/beam-exporter/beam_exporter/cmd/beam_exporter/internal/fleet"
	"github.com/beam-exporter/beam_exporter/cmd/beam_exporter/internal/sink/clickhouse"
	"github.com/beam-exporter/beam_exporter/cmd/beam_exporter/internal/web"
	"github.com/beam-exporter/beam_exporter/collector"
	"github.com/beam-exporter/beam_exporter/erlnode"
)

func main() {
	os.Exit(run())
}

// options are the parsed flags.
type options struct {
	nodeName, configFile, localName, cookieFile, metricsPath string
	epmdHosts                                                []string
	maxTargets                                               int
	idleTimeout, netTickTime                                 time.Duration
	distPort, epmdPort                                       uint16
	distTLS, loadProbe                                       bool
	tlsFiles                                                 erlnode.TLSFiles
	tiers                                                    collector.Tiers
	timeouts                                                 web.Timeouts
	logLevel, logFormat                                      string
	toolkit                                                  *toolkitweb.FlagConfig
	sink                                                     *clickhouse.Flags
}

// usageError is a mistake in the flags or the files they name: exit status 2.
type usageError struct{ error }

func usagef(format string, args ...any) error { return usageError{fmt.Errorf(format, args...)} }

func run() int {
	o, err := parseFlags(os.Args[1:])
	if err != nil {
		fmt.Fprintf(os.Stderr, "beam_exporter: %v\n", err)
		return 2
	}
	logger := newLogger(o.logFormat, o.logLevel)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := serve(ctx, o, logger); err != nil {
		if errors.As(err, new(usageError)) {
			fmt.Fprintf(os.Stderr, "beam_exporter: %v\n", err)
			return 2
		}
		level.Error(logger).Log("msg", "cannot start or serve", "err", err)
		return 1
	}
	return 0
}

// parseFlags reads the command line and checks what the flags alone can tell.
func parseFlags(args []string) (*options, error) {
	o := &options{}
	kingpin.Flag("erlang.node", "The node to monitor on /metrics, as name@host (short or long name). Needed unless --config.file sets up a fleet.").StringVar(&o.nodeName)
	kingpin.Flag("config.file", "YAML file of auth modules (cookie and TLS per cluster); enables /probe?target=name@host&auth_module=NAME.").StringVar(&o.configFile)
	kingpin.Flag("fleet.max-targets", "Most nodes /probe keeps connections to at once; a probe beyond gets 503.").Default("200").IntVar(&o.maxTargets)
	kingpin.Flag("fleet.idle-timeout", "A node not probed for this long is disconnected.").Default("5m").DurationVar(&o.idleTimeout)
	kingpin.Flag("discovery.epmd-host", "Host whose EPMD /targets lists, for Prometheus's http_sd_configs (repeatable).").StringsVar(&o.epmdHosts)
	kingpin.Flag("erlang.local-name", "The exporter's own node name. Keep it stable: every distinct name costs the target an atom forever. Default: beam_exporter@<this host>.").StringVar(&o.localName)
	kingpin.Flag("erlang.cookie-file", "File holding the distribution cookie. The environment variable "+erlnode.CookieEnv+" takes precedence.").Default(erlnode.DefaultCookieFile()).StringVar(&o.cookieFile)
	kingpin.Flag("erlang.port", "Dial this distribution port directly instead of asking EPMD (0: ask EPMD).").Default("0").Uint16Var(&o.distPort)
	kingpin.Flag("erlang.epmd-port", "Port of EPMD on the node's host.").Default("4369").Uint16Var(&o.epmdPort)
	kingpin.Flag("erlang.net-ticktime", "The node's net_ticktime: a connection silent this long is dead.").Default("60s").DurationVar(&o.netTickTime)
	kingpin.Flag("erlang.tls", "Connect with TLS distribution, to a node started with -proto_dist inet_tls.").BoolVar(&o.distTLS)
	kingpin.Flag("erlang.tls.ca-file", "PEM file of the CA that signed the node's certificate (default: the system's roots).").StringVar(&o.tlsFiles.CAFile)
	kingpin.Flag("erlang.tls.cert-file", "PEM certificate the exporter presents to the node.").StringVar(&o.tlsFiles.CertFile)
	kingpin.Flag("erlang.tls.key-file", "PEM private key of --erlang.tls.cert-file.").StringVar(&o.tlsFiles.KeyFile)
	kingpin.Flag("erlang.tls.server-name", "Name expected in the node's certificate (default: the host part of --erlang.node).").StringVar(&o.tlsFiles.ServerName)
	kingpin.Flag("erlang.tls.insecure-skip-verify", "Accept any certificate from the node. For tests only.").BoolVar(&o.tlsFiles.InsecureSkipVerify)
	kingpin.Flag("erlang.load-probe", "Load the exporter's probe module on the node when a collector needs it. --no-erlang.load-probe forbids all code loading; the collectors that need it then report themselves unavailable.").Default("true").BoolVar(&o.loadProbe)
	kingpin.Flag("collector.tier.fast", "Cache lifetime of the fast tier (scheduler utilization, run queues, memory, resident memory, reductions).").Default("15s").DurationVar(&o.tiers.Fast)
	kingpin.Flag("collector.tier.slow", "Cache lifetime of the slow tier (everything else).").Default("30s").DurationVar(&o.tiers.Slow)
	kingpin.Flag("web.telemetry-path", "Path under which to expose metrics.").Default("/metrics").StringVar(&o.metricsPath)
	kingpin.Flag("web.scrape-timeout-offset", "Kept back from Prometheus's scrape timeout, so the answer arrives in time.").Default("500ms").DurationVar(&o.timeouts.Offset)
	kingpin.Flag("web.default-scrape-timeout", "Scrape deadline when the request carries no X-Prometheus-Scrape-Timeout-Seconds header.").Default("10s").DurationVar(&o.timeouts.Default)
	kingpin.Flag("log.level", "Only log messages with the given severity or above.").Default("info").EnumVar(&o.logLevel, "debug", "info", "warn", "error")
	kingpin.Flag("log.format", "Output format of log messages.").Default("logfmt").EnumVar(&o.logFormat, "logfmt", "json")
	o.toolkit = kingpinflag.AddFlags(kingpin.CommandLine, ":9882")
	o.sink = clickhouse.AddFlags(kingpin.CommandLine)
	kingpin.Version(version.Print("beam_exporter"))
	kingpin.HelpFlag.Short('h')
	kingpin.CommandLine.UsageWriter(os.Stdout)
	if _, err := kingpin.CommandLine.Parse(args); err != nil {
		return nil, err
	}
	if o.nodeName == "" && o.configFile == "" {
		return nil, errors.New("give --erlang.node (one node, on /metrics) or --config.file (a fleet, through /probe), or both")
	}
	if err := validate(o.localName, o.netTickTime, o.tiers, o.toolkit); err != nil {
		return nil, err
	}
	return o, nil
}

// serve starts what the flags ask for (one node, a fleet, the sink) and
// serves HTTP until ctx ends.
func serve(ctx context.Context, o *options, logger log.Logger) error {
	own := prometheus.NewRegistry()
	own.MustRegister(
		versioncollector.NewCollector("beam_exporter"),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	surface := web.Config{
		MetricsPath: o.metricsPath, Own: own, NodeName: o.nodeName,
		EPMDHosts: o.epmdHosts, EPMDPort: int(o.epmdPort),
		Timeouts: o.timeouts, Logger: logger,
	}
	if o.nodeName != "" {
		exporter, closeClient, err := startSidecar(ctx, o, logger)
		if err != nil {
			return err
		}
		defer closeClient()
		surface.Node = exporter
	}
	if o.configFile != "" {
		pool, err := startFleet(ctx, o, logger)
		if err != nil {
			return err
		}
		own.MustRegister(pool)
		surface.Fleet = pool
	}
	var sinkDone <-chan struct{}
	if o.sink.Enabled() {
		// The ClickHouse sink: the rankings of the nodes above, to a table.
		cfg, err := o.sink.Config()
		if err != nil {
			return usageError{err}
		}
		cfg.RankingTimeout, cfg.Logger = o.timeouts.Default, logger
		sink, err := clickhouse.New(ctx, cfg)
		if err != nil {
			return usageError{err}
		}
		own.MustRegister(sink)
		watch := clickhouse.Watch{NodeName: o.nodeName, Fleet: surface.Fleet}
		if surface.Node != nil {
			watch.Node = surface.Node
		}
		sinkDone = sink.Start(ctx, watch)
	}
	handler, err := web.NewHandler(surface)
	if err != nil {
		return err
	}

	level.Info(logger).Log("msg", "starting beam_exporter", "version", version.Info(), "collectors", fmt.Sprint(collector.Enabled()))
	server := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second}
	served := make(chan error, 1)
	go func() {
		served <- toolkitweb.ListenAndServe(server, o.toolkit, slog.New(sloggokit.NewGoKitHandler(logger, slog.LevelDebug)))
	}()
	select {
	case err := <-served:
		return fmt.Errorf("serving HTTP: %w", err)
	case <-ctx.Done():
	}
	level.Info(logger).Log("msg", "shutting down")
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	server.Shutdown(shutdown)
	if sinkDone != nil {
		<-sinkDone // its last write, at most 5 s
	}
	return nil
}

// startSidecar connects to the one node of --erlang.node, served on /metrics
// beside the exporter's own metrics. closeClient ends the connection.
func startSidecar(ctx context.Context, o *options, logger log.Logger) (exporter *collector.Exporter, closeClient func(), err error) {
	cookie, err := nodeCookie(o.nodeName, o.cookieFile)
	if err != nil {
		return nil, nil, usageError{err}
	}
	tlsConfig, err := distributionTLS(o.distTLS, o.tlsFiles)
	if err != nil {
		return nil, nil, usageError{err}
	}
	if cookie.Exposed {
		level.Warn(logger).Log("msg", "the cookie file can be read by other users; it grants full control of the cluster", "file", cookie.Source)
	}
	if erlnode.TrustsSystemRoots(tlsConfig) {
		level.Warn(logger).Log("msg", "TLS distribution without --erlang.tls.ca-file checks the node's certificate against the system's roots: any publicly issued certificate for its host passes; give the private CA that signs your nodes' certificates")
	}
	client, err := erlnode.New(erlnode.Config{
		Target:      o.nodeName,
		LocalName:   o.localName,
		Cookie:      cookie.Value,
		EPMDPort:    int(o.epmdPort),
		DistPort:    int(o.distPort),
		NetTickTime: o.netTickTime,
		LoadProbe:   o.loadProbe,
		TLS:         tlsConfig,
		Session:     collector.Session(collector.Enabled()),
		Logger:      logger,
	})
	if err != nil {
		return nil, nil, err
	}
	exporter, err = collector.NewExporter(client, o.tiers, logger)
	if err != nil {
		client.Close()
		return nil, nil, err
	}
	go client.Run(ctx)
	level.Info(logger).Log("msg", "monitoring one node on "+o.metricsPath, "node", o.nodeName, "cookie_source", cookie.Source)
	return exporter, func() { client.Close() }, nil
}

// startFleet builds the pool behind /probe: any node the auth modules of
// --config.file allow, connected on demand.
func startFleet(ctx context.Context, o *options, logger log.Logger) (*fleet.Fleet, error) {
	modules, err := config.LoadAuthModules(o.configFile)
	if err != nil {
		return nil, usagef("--config.file: %w", err)
	}
	pool, err := fleet.New(fleet.Options{
		Modules: modules, Tiers: o.tiers, MaxTargets: o.maxTargets, IdleTimeout: o.idleTimeout,
		LocalName: o.localName, EPMDPort: int(o.epmdPort), NetTickTime: o.netTickTime, LoadProbe: o.loadProbe, Logger: logger,
	})
	if err != nil {
		return nil, usageError{err}
	}
	go pool.Run(ctx)
	level.Info(logger).Log("msg", "serving a fleet on /probe", "auth_modules", len(modules))
	return pool, nil
}

// validate checks what the flags alone can tell before anything starts.
func validate(localName string, netTickTime time.Duration, tiers collector.Tiers, webFlags *toolkitweb.FlagConfig) error {
	if localName != "" {
		if _, _, err := erlnode.SplitNodeName(localName); err != nil {
			return fmt.Errorf("--erlang.local-name: %w", err)
		}
	}
	if netTickTime == 0 {
		return errors.New("--erlang.net-ticktime must be at least 1s") // 0 would mean the default to erlnode
	}
	if err := erlnode.ValidateNetTickTime(netTickTime); err != nil {
		return fmt.Errorf("--erlang.net-ticktime: %w", err)
	}
	if err := tiers.Validate(); err != nil {
		return err
	}
	if err := collector.ValidateFlags(); err != nil {
		return err
	}
	if path := *webFlags.WebConfigFile; path != "" {
		if err := toolkitweb.Validate(path); err != nil {
			return fmt.Errorf("--web.config.file %s: %w", path, err)
		}
	}
	return nil
}

// nodeCookie checks the node's name and reads the cookie to reach it.
func nodeCookie(nodeName, cookieFile string) (erlnode.Cookie, error) {
	if _, _, err := erlnode.SplitNodeName(nodeName); err != nil {
		return erlnode.Cookie{}, fmt.Errorf("--erlang.node: %w", err)
	}
	return erlnode.LoadCookie(cookieFile)
}

// distributionTLS is nil for plain distribution, and refuses TLS settings
// given without --erlang.tls rather than ignore them.
func distributionTLS(enabled bool, files erlnode.TLSFiles) (*tls.Config, error) {
	if !enabled {
		if files != (erlnode.TLSFiles{}) {
			return nil, errors.New("--erlang.tls.* flags are set, but --erlang.tls is not")
		}
		return nil, nil
	}
	cfg, err := files.Config()
	if err != nil {
		return nil, fmt.Errorf("--erlang.tls: %w", err)
	}
	return cfg, nil
}

func newLogger(format, lvl string) log.Logger {
	var logger log.Logger
	if format == "json" {
		logger = log.NewJSONLogger(log.NewSyncWriter(os.Stderr))
	} else {
		logger = log.NewLogfmtLogger(log.NewSyncWriter(os.Stderr))
	}
	logger = level.NewFilter(logger, level.Allow(level.ParseDefault(lvl, level.InfoValue())))
	return log.With(logger, "ts", log.DefaultTimestampUTC)
}
