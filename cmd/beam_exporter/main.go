// The flags, wired to the packages that do the work: one node, a fleet, or both.

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

func run() int {
	var (
		nodeName      = kingpin.Flag("erlang.node", "The node to monitor on /metrics, as name@host (short or long name). Needed unless --config.file sets up a fleet.").String()
		configFile    = kingpin.Flag("config.file", "YAML file of auth modules (cookie and TLS per cluster); enables /probe?target=name@host&auth_module=NAME.").String()
		maxTargets    = kingpin.Flag("fleet.max-targets", "Most nodes /probe keeps connections to at once; a probe beyond gets 503.").Default("200").Int()
		idleTimeout   = kingpin.Flag("fleet.idle-timeout", "A node not probed for this long is disconnected.").Default("5m").Duration()
		epmdHosts     = kingpin.Flag("discovery.epmd-host", "Host whose EPMD /targets lists, for Prometheus's http_sd_configs (repeatable).").Strings()
		localName     = kingpin.Flag("erlang.local-name", "The exporter's own node name. Keep it stable: every distinct name costs the target an atom forever. Default: beam_exporter@<this host>.").String()
		cookieFile    = kingpin.Flag("erlang.cookie-file", "File holding the distribution cookie. The environment variable "+erlnode.CookieEnv+" takes precedence.").Default(erlnode.DefaultCookieFile()).String()
		distPort      = kingpin.Flag("erlang.port", "Dial this distribution port directly instead of asking EPMD (0: ask EPMD).").Default("0").Uint16()
		epmdPort      = kingpin.Flag("erlang.epmd-port", "Port of EPMD on the node's host.").Default("4369").Uint16()
		netTickTime   = kingpin.Flag("erlang.net-ticktime", "The node's net_ticktime: a connection silent this long is dead.").Default("60s").Duration()
		distTLS       = kingpin.Flag("erlang.tls", "Connect with TLS distribution, to a node started with -proto_dist inet_tls.").Bool()
		tlsFiles      erlnode.TLSFiles
		loadProbe     = kingpin.Flag("erlang.load-probe", "Load the exporter's probe module on the node when a collector needs it. --no-erlang.load-probe forbids all code loading; the collectors that need it then report themselves unavailable.").Default("true").Bool()
		fastTier      = kingpin.Flag("collector.tier.fast", "Cache lifetime of the fast tier (scheduler utilization, run queues, memory, reductions).").Default("15s").Duration()
		slowTier      = kingpin.Flag("collector.tier.slow", "Cache lifetime of the slow tier (everything else).").Default("30s").Duration()
		metricsPath   = kingpin.Flag("web.telemetry-path", "Path under which to expose metrics.").Default("/metrics").String()
		timeoutOffset = kingpin.Flag("web.scrape-timeout-offset", "Kept back from Prometheus's scrape timeout, so the answer arrives in time.").Default("500ms").Duration()
		maxTimeout    = kingpin.Flag("web.default-scrape-timeout", "Scrape deadline when the request carries no X-Prometheus-Scrape-Timeout-Seconds header.").Default("10s").Duration()
		logLevel      = kingpin.Flag("log.level", "Only log messages with the given severity or above.").Default("info").Enum("debug", "info", "warn", "error")
		logFormat     = kingpin.Flag("log.format", "Output format of log messages.").Default("logfmt").Enum("logfmt", "json")
		toolkitFlags  = kingpinflag.AddFlags(kingpin.CommandLine, ":9882")
	)
	sinkFlags := clickhouse.AddFlags(kingpin.CommandLine)
	kingpin.Flag("erlang.tls.ca-file", "PEM file of the CA that signed the node's certificate (default: the system's roots).").StringVar(&tlsFiles.CAFile)
	kingpin.Flag("erlang.tls.cert-file", "PEM certificate the exporter presents to the node.").StringVar(&tlsFiles.CertFile)
	kingpin.Flag("erlang.tls.key-file", "PEM private key of --erlang.tls.cert-file.").StringVar(&tlsFiles.KeyFile)
	kingpin.Flag("erlang.tls.server-name", "Name expected in the node's certificate (default: the host part of --erlang.node).").StringVar(&tlsFiles.ServerName)
	kingpin.Flag("erlang.tls.insecure-skip-verify", "Accept any certificate from the node. For tests only.").BoolVar(&tlsFiles.InsecureSkipVerify)
	kingpin.Version(version.Print("beam_exporter"))
	kingpin.HelpFlag.Short('h')
	kingpin.CommandLine.UsageWriter(os.Stdout)
	if _, err := kingpin.CommandLine.Parse(os.Args[1:]); err != nil {
		fmt.Fprintf(os.Stderr, "beam_exporter: %v\n", err)
		return 2
	}
	logger := newLogger(*logFormat, *logLevel)
	tiers := collector.Tiers{Fast: *fastTier, Slow: *slowTier}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	own := prometheus.NewRegistry()
	own.MustRegister(
		versioncollector.NewCollector("beam_exporter"),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	surface := web.Config{
		MetricsPath: *metricsPath, Own: own, NodeName: *nodeName,
		EPMDHosts: *epmdHosts, EPMDPort: int(*epmdPort),
		Timeouts: web.Timeouts{Offset: *timeoutOffset, Default: *maxTimeout},
		Logger:   logger,
	}

	if *nodeName == "" && *configFile == "" {
		fmt.Fprintln(os.Stderr, "beam_exporter: give --erlang.node (one node, on /metrics) or --config.file (a fleet, through /probe), or both")
		return 2
	}
	if err := validate(*localName, tiers, toolkitFlags); err != nil {
		fmt.Fprintf(os.Stderr, "beam_exporter: %v\n", err)
		return 2
	}
	if *nodeName != "" {
		// Sidecar: one node, on /metrics beside the exporter's own metrics.
		cookie, err := nodeCookie(*nodeName, *cookieFile)
		if err != nil {
			fmt.Fprintf(os.Stderr, "beam_exporter: %v\n", err)
			return 2
		}
		tlsConfig, err := distributionTLS(*distTLS, tlsFiles)
		if err != nil {
			fmt.Fprintf(os.Stderr, "beam_exporter: %v\n", err)
			return 2
		}
		if cookie.Exposed {
			level.Warn(logger).Log("msg", "the cookie file can be read by other users; it grants full control of the cluster", "file", cookie.Source)
		}
		if erlnode.TrustsSystemRoots(tlsConfig) {
			level.Warn(logger).Log("msg", "TLS distribution without --erlang.tls.ca-file checks the node's certificate against the system's roots: any publicly issued certificate for its host passes; give the private CA that signs your nodes' certificates")
		}
		client, err := erlnode.New(erlnode.Config{
			Target:      *nodeName,
			LocalName:   *localName,
			Cookie:      cookie.Value,
			EPMDPort:    int(*epmdPort),
			DistPort:    int(*distPort),
			NetTickTime: *netTickTime,
			LoadProbe:   *loadProbe,
			TLS:         tlsConfig,
			Session:     collector.Session(collector.Enabled()),
			Logger:      logger,
		})
		if err != nil {
			level.Error(logger).Log("msg", "cannot start", "err", err)
			return 1
		}
		defer client.Close()
		exporter, err := collector.NewExporter(client, tiers, logger)
		if err != nil {
			level.Error(logger).Log("msg", "cannot start", "err", err)
			return 1
		}
		go client.Run(ctx)
		surface.Node = exporter
		level.Info(logger).Log("msg", "monitoring one node on "+*metricsPath, "node", *nodeName, "cookie_source", cookie.Source)
	}
	if *configFile != "" {
		// Fleet: any node, on demand, through /probe.
		modules, err := config.LoadAuthModules(*configFile)
		if err != nil {
			fmt.Fprintf(os.Stderr, "beam_exporter: --config.file: %v\n", err)
			return 2
		}
		pool, err := fleet.New(fleet.Options{
			Modules: modules, Tiers: tiers, MaxTargets: *maxTargets, IdleTimeout: *idleTimeout,
			LocalName: *localName, EPMDPort: int(*epmdPort), NetTickTime: *netTickTime, LoadProbe: *loadProbe, Logger: logger,
		})
		if err != nil {
			fmt.Fprintf(os.Stderr, "beam_exporter: %v\n", err)
			return 2
		}
		go pool.Run(ctx)
		own.MustRegister(pool)
		surface.Fleet = pool
		level.Info(logger).Log("msg", "serving a fleet on /probe", "auth_modules", len(modules))
	}
	var sinkDone <-chan struct{}
	if sinkFlags.Enabled() {
		// The ClickHouse sink: the rankings of the nodes above, to a table.
		cfg, err := sinkFlags.Config()
		if err != nil {
			fmt.Fprintf(os.Stderr, "beam_exporter: %v\n", err)
			return 2
		}
		cfg.RankingTimeout, cfg.Logger = *maxTimeout, logger
		sink, err := clickhouse.New(ctx, cfg)
		if err != nil {
			fmt.Fprintf(os.Stderr, "beam_exporter: %v\n", err)
			return 2
		}
		own.MustRegister(sink)
		watch := clickhouse.Watch{NodeName: *nodeName, Fleet: surface.Fleet}
		if surface.Node != nil {
			watch.Node = surface.Node
		}
		sinkDone = sink.Start(ctx, watch)
	}
	handler, err := web.NewHandler(surface)
	if err != nil {
		level.Error(logger).Log("msg", "cannot start", "err", err)
		return 1
	}

	level.Info(logger).Log("msg", "starting beam_exporter", "version", version.Info(), "collectors", fmt.Sprint(collector.Enabled()))
	server := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second}
	served := make(chan error, 1)
	go func() {
		served <- toolkitweb.ListenAndServe(server, toolkitFlags, slog.New(sloggokit.NewGoKitHandler(logger, slog.LevelDebug)))
	}()
	select {
	case err := <-served:
		level.Error(logger).Log("msg", "cannot serve", "err", err)
		return 1
	case <-ctx.Done():
	}
	level.Info(logger).Log("msg", "shutting down")
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	server.Shutdown(shutdown)
	if sinkDone != nil {
		<-sinkDone // its last write, at most 5 s
	}
	return 0
}

// validate checks what the flags alone can tell before anything starts.
func validate(localName string, tiers collector.Tiers, webFlags *toolkitweb.FlagConfig) error {
	if localName != "" {
		if _, _, err := erlnode.SplitNodeName(localName); err != nil {
			return fmt.Errorf("--erlang.local-name: %w", err)
		}
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
