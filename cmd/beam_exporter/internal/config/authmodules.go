// Auth modules: named ways to reach a cluster (cookie, TLS, collectors and targets), from --config.file.

package config

import (
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/beam-exporter/beam_exporter/erlnode"
)

// authModuleConfig is one entry of auth_modules in the config file. Exactly
// one cookie source is given.
type authModuleConfig struct {
	CookieFile string `yaml:"cookie_file"`
	CookieEnv  string `yaml:"cookie_env"`
	// Cookie is the cookie itself, accepted only from a config file that
	// nobody but its owner can read (mode 0600 or stricter).
	Cookie string    `yaml:"cookie"`
	TLS    *tlsFiles `yaml:"tls"`
	// Collectors, when given, replaces the --collector.* flags for the
	// nodes probed with this module.
	Collectors *[]string `yaml:"collectors"`
	// Targets are the node-name patterns the module may be used for; none
	// refuses every target.
	Targets []string `yaml:"targets"`
}

// tlsFiles is erlnode.TLSFiles as the config file spells it; the two
// convert into each other, so a field added to one must be added to both.
type tlsFiles struct {
	CAFile             string `yaml:"ca_file"`
	CertFile           string `yaml:"cert_file"`
	KeyFile            string `yaml:"key_file"`
	ServerName         string `yaml:"server_name"`
	InsecureSkipVerify bool   `yaml:"insecure_skip_verify"`
}

// AuthModule is a loaded auth module, ready to connect with.
type AuthModule struct {
	Name   string
	Cookie string
	TLS    *tls.Config // nil for plain distribution
	// Collectors is the module's own set of collectors; nil means the
	// flags decide. The fleet checks the names against the registry.
	Collectors []string
	// Targets are the nodes the cookie may be offered to: the handshake
	// proves the cookie to whoever answers, so a module is used only for
	// the nodes its operator named.
	Targets Targets
}

type configFile struct {
	AuthModules map[string]authModuleConfig `yaml:"auth_modules"`
}

// LoadAuthModules reads the config file and every cookie and TLS file it
// names. Errors name the file, the module and the problem.
func LoadAuthModules(path string) (map[string]AuthModule, error) {
	info, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("config file: %w", err)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config file: %w", err)
	}
	var cfg configFile
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	dec.KnownFields(true)
	if err := dec.Decode(&cfg); err != nil && !errors.Is(err, io.EOF) { // EOF: an empty file
		return nil, fmt.Errorf("config file %s: %w", path, err)
	}
	// A second document (after ---) would otherwise be ignored, and the
	// auth modules in it missing without a word. An empty one (a trailing
	// ---) holds nothing to miss.
	for {
		var extra yaml.Node
		err := dec.Decode(&extra)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil || len(extra.Content) > 0 && extra.Content[0].Tag != "!!null" {
			return nil, fmt.Errorf("config file %s holds more than one YAML document; put every auth module under the one auth_modules", path)
		}
	}
	if len(cfg.AuthModules) == 0 {
		return nil, fmt.Errorf("config file %s defines no auth_modules", path)
	}
	private := info.Mode().Perm()&0o077 == 0
	modules := make(map[string]AuthModule, len(cfg.AuthModules))
	for _, name := range slices.Sorted(maps.Keys(cfg.AuthModules)) {
		m, err := loadAuthModule(name, cfg.AuthModules[name], private)
		if err != nil {
			return nil, fmt.Errorf("config file %s: auth module %q: %w", path, name, err)
		}
		modules[name] = m
	}
	return modules, nil
}

func loadAuthModule(name string, c authModuleConfig, private bool) (AuthModule, error) {
	m := AuthModule{Name: name}
	sources := 0
	// The cookie, as the other two sources read it, without surrounding
	// white space; a blank one is no cookie.
	c.Cookie = strings.TrimSpace(c.Cookie)
	for _, s := range []string{c.CookieFile, c.CookieEnv, c.Cookie} {
		if s != "" {
			sources++
		}
	}
	if sources != 1 {
		return m, errors.New("give exactly one of cookie_file, cookie_env and cookie")
	}
	switch {
	case c.CookieFile != "":
		cookie, err := erlnode.ReadCookieFile(c.CookieFile)
		if err != nil {
			return m, err
		}
		m.Cookie = cookie.Value
	case c.CookieEnv != "":
		m.Cookie = strings.TrimSpace(os.Getenv(c.CookieEnv))
		if m.Cookie == "" {
			return m, fmt.Errorf("the environment variable %s is unset or empty", c.CookieEnv)
		}
		if err := erlnode.CheckCookie(m.Cookie); err != nil {
			return m, fmt.Errorf("%s: %w", c.CookieEnv, err)
		}
	default:
		if !private {
			return m, errors.New("an inline cookie needs the config file to be readable by its owner only (chmod 600); or use cookie_file or cookie_env")
		}
		if err := erlnode.CheckCookie(c.Cookie); err != nil {
			return m, err
		}
		m.Cookie = c.Cookie
	}
	if c.Collectors != nil {
		if len(*c.Collectors) == 0 {
			return m, errors.New("collectors is empty; leave it out to use the --collector.* flags")
		}
		seen := map[string]bool{}
		for _, name := range *c.Collectors {
			if seen[name] {
				return m, fmt.Errorf("collectors lists %q twice", name)
			}
			seen[name] = true
		}
		m.Collectors = slices.Sorted(maps.Keys(seen))
	}
	targets, err := ParseTargets(c.Targets...)
	if err != nil {
		return m, fmt.Errorf("targets: %w", err)
	}
	m.Targets = targets
	if c.TLS != nil {
		cfg, err := erlnode.TLSFiles(*c.TLS).Config()
		if err != nil {
			return m, err
		}
		m.TLS = cfg
	}
	return m, nil
}
