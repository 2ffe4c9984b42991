// Package unitgen renders Bitpoll's systemd units, bitpoll.socket and the
// templates bitpoll@.service and bitpoll-migrate@.service, from a Spec and
// the embedded hardening profile, and an nginx server block to put in
// front.
//
// An instance of a template is one generation: bitpoll@7.service serves
// /opt/bitpoll/generations/7 on the listening socket of bitpoll.socket
// (Sockets=), and bitpoll-migrate@7.service runs its migrations once. Two
// instances can accept on the one socket at the same time, so a switch
// starts the new generation before it stops the old one, and no
// connection waits on a restart.
//
// It only produces bytes: writing the files and talking to systemd is the
// installer's job, and reading the admin's config is package config's.
package unitgen

import (
	"github.com/bitpoll-install/bitpoll-install/layout"

	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/coreos/go-systemd/v22/unit"
)

// Unit names.
const (
	SocketUnit      = "bitpoll.socket"
	ServiceTemplate = "bitpoll@.service"
	MigrateTemplate = "bitpoll-migrate@.service"
)

// ServiceUnit is generation n's web service, an instance of ServiceTemplate.
func ServiceUnit(n int) string { return "bitpoll@" + strconv.Itoa(n) + ".service" }

// MigrateUnit is generation n's migration unit, an instance of MigrateTemplate.
func MigrateUnit(n int) string { return "bitpoll-migrate@" + strconv.Itoa(n) + ".service" }

// The state directory: StateDirectory=bitpoll, shared by the service and
// the migration unit through the same dynamic user.
const (
	StateDirectory = "bitpoll"
	StateDir       = "/var/lib/" + StateDirectory
	// ServiceUser is the dynamic user's name; both units name it so they
	// share one uid and so the state directory.
	ServiceUser = "bitpoll"
	// MigratedDir holds the stamp of the store path and database settings
	// whose migrations ran: the installer keeps only the current one's.
	MigratedDir = StateDir + "/migrated"
)

// Credential names the shim reads from $CREDENTIALS_DIRECTORY; they match
// shim's *File constants, which a test checks.
var (
	RequiredCredentials = []string{"secret_key", "field_encryption_key"}
	OptionalCredentials = []string{"db_password", "email_password"}
)

// OutboundWarning is what the unit and install commands say when outbound
// traffic is open to everything.
const OutboundWarning = "outbound traffic is open to every address (outbound.allow = [\"any\"]): bitpoll.service has no IP allow-list, " +
	"so systemd-analyze security rates it above 1.0; list the mail relay and CalDAV servers' addresses instead"

// Paths are the FHS paths the units name.
type Paths struct {
	Opt          string // read-only to the service: store, generations and current
	Current      string // symlink to the current generation
	Generations  string // one symlink per generation, named by its number
	App          string // the app tree, relative to a generation
	Venv         string // the venv, relative to a generation
	Static       string // the collected static files, relative to a generation
	GunicornConf string // gunicorn's --config file (shim.GunicornConf), beside the units' other inputs
	Root         string // an empty root-owned directory: the root of the service's file system view
	Settings     string // the JSON settings file (no secrets)
	SecretsDir   string // credential files, root-only
}

// DefaultPaths are the system paths of package layout, where the units
// run.
func DefaultPaths() Paths {
	return Paths{
		Opt:          layout.Opt,
		Current:      layout.Current,
		Generations:  layout.Generations,
		App:          layout.AppDir,
		Venv:         layout.VenvDir,
		Static:       layout.StaticDir,
		GunicornConf: layout.GunicornConf,
		Root:         layout.ServiceRoot,
		Settings:     layout.Settings,
		SecretsDir:   layout.Secrets,
	}
}

// Spec is what the units depend on.
type Spec struct {
	// Listen is "host:port" (the host may be empty or a bracketed IPv6
	// address) or the absolute path of a unix socket for a reverse proxy.
	Listen string
	// SocketGroup may connect to a unix socket (e.g. "www-data"); empty
	// means everyone may.
	SocketGroup string
	Workers     int
	Timeout     time.Duration // gunicorn's worker timeout, whole seconds
	Project     string        // the Django project module: <Project>.wsgi
	Paths       Paths
	// Credentials are loaded from Paths.SecretsDir: the required ones and
	// any optional ones in use.
	Credentials []string
	// OutboundAllow lists the addresses or CIDR prefixes, beyond localhost,
	// the service may connect to: a mail relay, PostgreSQL, CalDAV servers.
	OutboundAllow []netip.Prefix
	// OutboundAny drops the IP allow-list; see OutboundWarning.
	OutboundAny bool
	// PrivateNetwork gives the service a network namespace of its own with
	// only a loopback device (PrivateNetwork=yes), for a config that needs
	// no outbound connection: the listening socket is passed in by
	// bitpoll.socket, so serving needs no network at all. It cannot be
	// combined with OutboundAllow or OutboundAny.
	PrivateNetwork bool
	// InterpreterDirs are extra read-only directories the venv's
	// interpreter lives in when it is not under /usr.
	InterpreterDirs []string
	// DatabaseSocketDir is the directory of a PostgreSQL server's unix
	// socket (a database URL's host parameter), which the service's empty
	// root must show.
	DatabaseSocketDir string
	// Generation is the generation the socket starts when a connection
	// comes and none runs (at boot, or after a crash): its Service=.
	Generation int
	// DatabaseStamp names the database settings in the migration stamp
	// (shim.Database.Stamp), so that another database migrates again.
	DatabaseStamp string
}

// Unit is one unit file.
type Unit struct {
	Name    string
	Options []*unit.UnitOption
}

// Bytes is the unit file's text.
func (u Unit) Bytes() ([]byte, error) { return Serialize(u.Options) }

// Serialize writes opts as a unit file, after checking that every value
// fits on its line: the unit package writes values as they are.
func Serialize(opts []*unit.UnitOption) ([]byte, error) {
	for _, o := range opts {
		if !directiveName.MatchString(o.Section) || !directiveName.MatchString(o.Name) {
			return nil, fmt.Errorf("serialize unit: [%q] %q is not a section and directive name", o.Section, o.Name)
		}
		if err := checkValue(o.Value); err != nil {
			return nil, fmt.Errorf("serialize unit: %s=: %w", o.Name, err)
		}
	}
	b, err := io.ReadAll(unit.Serialize(opts))
	if err != nil {
		return nil, fmt.Errorf("serialize unit: %w", err)
	}
	return b, nil
}

// maxLine is systemd's limit on a unit file line (LONG_LINE_MAX is larger,
// but go-systemd's parser stops at 2048), kept so that the files round-trip.
const maxLine = 2048

var directiveName = regexp.MustCompile(`^[A-Z][A-Za-z0-9]*$`)

// checkValue refuses what would change a unit file's structure: line
// breaks, other control characters, a trailing backslash (a continuation)
// and overlong lines.
func checkValue(v string) error {
	for _, r := range v {
		if r < 0x20 || r == 0x7f {
			return fmt.Errorf("value %q contains a control character or line break; a unit value must be one line", v)
		}
	}
	if strings.HasSuffix(v, `\`) {
		return fmt.Errorf("value %q ends in a backslash, which would continue the line", v)
	}
	if len(v) > maxLine-64 {
		return fmt.Errorf("value of %d bytes is too long for a unit file line (limit about %d)", len(v), maxLine-64)
	}
	return nil
}

// safePath is what a path in a unit may hold: no spaces, quotes, ":"
// (a separator in BindReadOnlyPaths= and LoadCredential=), "%" (specifiers)
// or "$" (variables).
var safePath = regexp.MustCompile(`^/[A-Za-z0-9._+@/-]*$`)

func checkPath(key, p string) error {
	switch {
	case p == "":
		return fmt.Errorf("%s is empty; want an absolute path", key)
	case !safePath.MatchString(p):
		return fmt.Errorf("%s %q is not a plain absolute path; use letters, digits and . _ + @ / - only", key, p)
	case path.Clean(p) != p:
		return fmt.Errorf("%s %q is not clean; write it as %q", key, p, path.Clean(p))
	}
	return nil
}

var relName = regexp.MustCompile(`^[A-Za-z0-9._+@-]+$`)

var projectName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

var groupName = regexp.MustCompile(`^[a-z_][a-z0-9_-]*$`)

var stampName = regexp.MustCompile(`^[0-9a-f]{12}$`)

// Validate checks s and returns every problem, joined.
func (s *Spec) Validate() error {
	var errs []error
	add := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	if _, err := parseListen(s.Listen); err != nil {
		add(err)
	}
	if s.SocketGroup != "" && !groupName.MatchString(s.SocketGroup) {
		add(fmt.Errorf("socket group %q is not a group name like \"www-data\"", s.SocketGroup))
	}
	if s.Workers < 1 || s.Workers > 256 {
		add(fmt.Errorf("workers %d is out of range; want 1 to 256", s.Workers))
	}
	if s.Timeout < time.Second || s.Timeout%time.Second != 0 {
		add(fmt.Errorf("timeout %v is not a whole number of seconds of at least 1s", s.Timeout))
	}
	if !projectName.MatchString(s.Project) {
		add(fmt.Errorf("project %q is not a Python module name like \"bitpoll\"", s.Project))
	}
	p := s.Paths
	for _, f := range []struct{ key, val string }{
		{"opt directory", p.Opt}, {"current link", p.Current}, {"generations directory", p.Generations}, {"root directory", p.Root},
		{"settings file", p.Settings}, {"secrets directory", p.SecretsDir},
	} {
		add(checkPath(f.key, f.val))
	}
	if p.Current != "" && !strings.HasPrefix(p.Current, p.Opt+"/") {
		add(fmt.Errorf("current link %q is not under the opt directory %q, which is all the service sees of the store", p.Current, p.Opt))
	}
	if p.Root != "" && (p.Root == "/" || p.Root == p.Opt) {
		add(fmt.Errorf("root directory %q must be an empty directory of its own", p.Root))
	}
	if p.Generations != "" && !strings.HasPrefix(p.Generations, p.Opt+"/") {
		add(fmt.Errorf("generations directory %q is not under the opt directory %q, which is all the service sees of the store", p.Generations, p.Opt))
	}
	if s.Generation < 1 {
		add(fmt.Errorf("generation %d is not a generation number (1 or more) for the socket to start", s.Generation))
	}
	if !stampName.MatchString(s.DatabaseStamp) {
		add(fmt.Errorf("database stamp %q is not 12 lowercase hex digits (shim.Database.Stamp)", s.DatabaseStamp))
	}
	for _, f := range []struct{ key, val string }{{"app directory", p.App}, {"venv directory", p.Venv}, {"static directory", p.Static}} {
		if !relName.MatchString(f.val) || f.val == "." || f.val == ".." {
			add(fmt.Errorf("%s %q is not a plain name inside a generation, like %q", f.key, f.val, "venv"))
		}
	}
	for _, c := range RequiredCredentials {
		if !slices.Contains(s.Credentials, c) {
			add(fmt.Errorf("credential %q is missing; the shim needs it", c))
		}
	}
	for _, c := range s.Credentials {
		if !slices.Contains(RequiredCredentials, c) && !slices.Contains(OptionalCredentials, c) {
			add(fmt.Errorf("credential %q is unknown; want one of %s", c, strings.Join(slices.Concat(RequiredCredentials, OptionalCredentials), ", ")))
		}
	}
	for _, a := range s.OutboundAllow {
		if !a.IsValid() {
			add(errors.New("outbound allow-list holds an invalid prefix; give addresses like \"192.0.2.25\" or \"192.0.2.0/24\""))
		} else if a.Bits() == 0 {
			add(fmt.Errorf("outbound allow-list entry %q allows every address; to open outbound to everything say so with OutboundAny", a))
		}
	}
	if s.PrivateNetwork && (s.OutboundAny || len(s.OutboundAllow) > 0) {
		add(errors.New("a private network cannot reach the outbound allow-list; drop PrivateNetwork or the allow-list"))
	}
	for _, d := range s.InterpreterDirs {
		add(checkPath("interpreter directory", d))
	}
	if s.DatabaseSocketDir != "" {
		add(checkPath("database socket directory", s.DatabaseSocketDir))
	}
	return errors.Join(errs...)
}

// listen is a parsed Spec.Listen.
type listen struct {
	unix       bool
	host, port string
}

func parseListen(s string) (listen, error) {
	if strings.HasPrefix(s, "/") {
		if err := checkPath("listen socket", s); err != nil {
			return listen{}, err
		}
		if len(s) > 107 { // sun_path holds 108 bytes with the NUL
			return listen{}, fmt.Errorf("listen socket %q is longer than the 107 bytes a unix socket path may have", s)
		}
		return listen{unix: true}, nil
	}
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return listen{}, fmt.Errorf("listen %q is neither host:port nor an absolute unix socket path: %v", s, err)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 || strconv.Itoa(n) != port {
		return listen{}, fmt.Errorf("listen %q has port %q; want 1 to 65535", s, port)
	}
	if host != "" {
		if _, err := netip.ParseAddr(host); err != nil {
			return listen{}, fmt.Errorf("listen %q has host %q; want an IP address (systemd does not resolve names)", s, host)
		}
	}
	return listen{host: host, port: port}, nil
}

// Render returns bitpoll.socket, bitpoll@.service and bitpoll-migrate@.service.
func Render(s Spec) ([]Unit, error) {
	if err := s.Validate(); err != nil {
		return nil, fmt.Errorf("render units: %w", err)
	}
	hard, err := Hardening()
	if err != nil {
		return nil, err
	}
	units := []Unit{
		{SocketUnit, socketOptions(s)},
		{ServiceTemplate, serviceOptions(s, hard)},
		{MigrateTemplate, migrateOptions(s, hard)},
	}
	for _, u := range units {
		if _, err := u.Bytes(); err != nil {
			return nil, fmt.Errorf("render %s: %w", u.Name, err)
		}
	}
	return units, nil
}

func opt(section, name, value string) *unit.UnitOption {
	return &unit.UnitOption{Section: section, Name: name, Value: value}
}

func socketOptions(s Spec) []*unit.UnitOption {
	l, _ := parseListen(s.Listen)
	stream := s.Listen
	if !l.unix && l.host == "" {
		stream = l.port // systemd's form for "every address"
	}
	o := []*unit.UnitOption{
		opt("Unit", "Description", "Bitpoll listening socket"),
		opt("Socket", "ListenStream", stream),
		// Only when no generation runs; a switch starts the next one itself.
		opt("Socket", "Service", ServiceUnit(s.Generation)),
	}
	if l.unix {
		mode := "0666"
		if s.SocketGroup != "" {
			mode = "0660"
			o = append(o, opt("Socket", "SocketGroup", s.SocketGroup))
		}
		o = append(o, opt("Socket", "SocketMode", mode), opt("Socket", "RemoveOnStop", "true"))
	} else {
		o = append(o, opt("Socket", "NoDelay", "true"))
		if l.host == "" || l.host == "::" {
			// Both families on one socket, whatever the host's sysctl says.
			o = append(o, opt("Socket", "BindIPv6Only", "both"))
		}
	}
	return append(o, opt("Install", "WantedBy", "sockets.target"))
}

// gunicornArgs runs gunicorn on the inherited socket (it reads LISTEN_FDS),
// logging to stderr, which the journal collects.
func gunicornArgs(s Spec) []string {
	t := strconv.Itoa(int(s.Timeout / time.Second))
	return []string{
		path.Join(instanceDir(s.Paths), s.Paths.Venv, "bin", "gunicorn"),
		// It warms the app in the master, so that no worker, and no switch
		// to new workers, answers a first request cold.
		"--config", s.Paths.GunicornConf,
		"--workers", strconv.Itoa(s.Workers),
		"--timeout", t,
		"--graceful-timeout", t,
		// gunicorn 25+ opens a control socket under $HOME by default: the
		// service has no home, and needs no runtime control.
		"--no-control-socket",
		"--access-logfile", "-",
		"--error-logfile", "-",
		// The app is imported before systemd hears READY=1, so a switch
		// that waits for it waits until workers can answer.
		"--preload",
		s.Project + ".wsgi",
	}
}

// instanceDir is the generation of a template's instance: %i is its number.
func instanceDir(p Paths) string { return path.Join(p.Generations, "%i") }

// common is what both the service and the migration unit run with: the
// same user, state, settings, credentials and confinement.
func common(s Spec, hard []Directive) []*unit.UnitOption {
	p := s.Paths
	o := []*unit.UnitOption{
		opt("Service", "User", ServiceUser),
		opt("Service", "StateDirectory", StateDirectory),
		opt("Service", "StateDirectoryMode", "0700"),
		opt("Service", "WorkingDirectory", path.Join(instanceDir(p), p.App)),
		opt("Service", "Environment", "BITPOLL_SETTINGS_FILE="+p.Settings),
		// Each generation serves its own static files, whatever current
		// points at while two run side by side.
		opt("Service", "Environment", "BITPOLL_STATIC_ROOT="+path.Join(instanceDir(p), p.Static)),
		// The store is read-only and already compiled.
		opt("Service", "Environment", "PYTHONDONTWRITEBYTECODE=1"),
		opt("Service", "Environment", "PYTHONUNBUFFERED=1"),
	}
	for _, c := range s.Credentials {
		o = append(o, opt("Service", "LoadCredential", c+":"+path.Join(p.SecretsDir, c)))
	}
	for _, d := range hard {
		for _, v := range d.Values {
			o = append(o, opt("Service", d.Name, v))
		}
	}
	return append(o, view(s)...)
}

// view is the service's file system: an empty root with the store, the
// interpreter, the settings file and the few files of /etc that name
// resolution and TLS need, all read-only. StateDirectory= and the
// credentials are mounted in by systemd.
func view(s Spec) []*unit.UnitOption {
	p := s.Paths
	ro := []string{p.Opt, "/usr", "-/bin", "-/lib", "-/lib64", p.Settings,
		"-/etc/hosts", "-/etc/resolv.conf", "-/etc/nsswitch.conf", "-/etc/host.conf", "-/etc/gai.conf",
		"-/etc/localtime", "-/etc/ssl/certs"}
	for _, d := range append(slices.Clone(s.InterpreterDirs), s.DatabaseSocketDir) {
		if d != "" && !slices.Contains(ro, d) {
			ro = append(ro, d)
		}
	}
	o := []*unit.UnitOption{
		opt("Service", "RootDirectory", p.Root),
		opt("Service", "BindReadOnlyPaths", strings.Join(ro, " ")),
	}
	if s.PrivateNetwork {
		// Nothing but the service's own loopback device: see Spec.
		o = append(o, opt("Service", "PrivateNetwork", "true"))
	}
	if !s.OutboundAny {
		allow := []string{"localhost"}
		for _, a := range s.OutboundAllow {
			allow = append(allow, a.Masked().String())
		}
		o = append(o,
			opt("Service", "IPAddressDeny", "any"),
			opt("Service", "IPAddressAllow", strings.Join(allow, " ")))
	}
	return o
}

func serviceOptions(s Spec, hard []Directive) []*unit.UnitOption {
	o := []*unit.UnitOption{
		opt("Unit", "Description", "Bitpoll, polls and meeting scheduling (generation %i)"),
		opt("Unit", "Requires", SocketUnit+" bitpoll-migrate@%i.service"),
		opt("Unit", "After", SocketUnit+" bitpoll-migrate@%i.service network.target"),
		opt("Service", "Type", "notify"),
		// The listening socket, shared with the generation before during a
		// switch.
		opt("Service", "Sockets", SocketUnit),
		opt("Service", "NotifyAccess", "main"),
		opt("Service", "ExecStart", strings.Join(gunicornArgs(s), " ")),
		// gunicorn reloads its workers on SIGHUP; sh's kill, since Debian's
		// minimal systems have no /bin/kill.
		opt("Service", "ExecReload", `/bin/sh -c 'kill -s HUP "$$MAINPID"'`),
		opt("Service", "Restart", "on-failure"),
		opt("Service", "RestartSec", "1s"),
		opt("Service", "TimeoutStopSec", strconv.Itoa(int(s.Timeout/time.Second)+10)+"s"),
	}
	o = append(o, common(s, hard)...)
	return append(o, opt("Install", "WantedBy", "multi-user.target"))
}

// migrateScript runs the migrations of the instance's generation once: a
// stamp named after the store path and the database settings marks them
// done (the NixOS module names its stamps the same way), so a restart
// skips them, and another store path or database runs them. The
// installer runs this unit before a generation takes traffic and keeps
// only the current generation's stamp. "$$" is systemd's escape for "$".
func migrateScript(s Spec) string {
	p := s.Paths
	return strings.Join([]string{
		"gen=$$(readlink -f " + instanceDir(p) + ")",
		`stamp=` + MigratedDir + `/$${gen##*/}-` + s.DatabaseStamp,
		`if [ -e "$$stamp" ]; then echo "migrations of $${gen##*/} already applied"; exit 0; fi`,
		`"$$gen/` + p.Venv + `/bin/python" "$$gen/` + p.App + `/manage.py" migrate --noinput`,
		"mkdir -p " + MigratedDir,
		`touch "$$stamp"`,
	}, "; ")
}

func migrateOptions(s Spec, hard []Directive) []*unit.UnitOption {
	o := []*unit.UnitOption{
		opt("Unit", "Description", "Bitpoll database migrations, once per generation (generation %i)"),
		opt("Unit", "Before", "bitpoll@%i.service"),
		opt("Unit", "After", "network.target"),
		opt("Service", "Type", "oneshot"),
		opt("Service", "ExecStart", "/bin/sh -euc '"+migrateScript(s)+"'"),
		opt("Service", "TimeoutStartSec", "infinity"),
	}
	return append(o, common(s, hard)...)
}

// Text renders all units into one listing with a header per file, as the
// unit command prints them.
func Text(units []Unit) ([]byte, error) {
	var b bytes.Buffer
	for i, u := range units {
		data, err := u.Bytes()
		if err != nil {
			return nil, err
		}
		if i > 0 {
			b.WriteString("\n")
		}
		fmt.Fprintf(&b, "# %s\n", u.Name)
		b.Write(data)
	}
	return b.Bytes(), nil
}
