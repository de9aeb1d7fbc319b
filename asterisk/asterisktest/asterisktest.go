// Package asterisktest runs a real Asterisk for a test, in the spirit of
// net/http/httptest: Start extracts the Asterisk named by IVRPIN_TEST_ASTERISK
// (once per test binary), writes a configuration made from the project's own
// asterisk/conf files with test overlays for ports, passwords and paths only,
// starts Asterisk in the foreground of a child process on free loopback
// ports, waits for ARI to answer, and stops it by its PID when the test
// ends.
//
// IVRPIN_TEST_ASTERISK is either a tarball (.tar.xz, .tar.gz) of an
// Asterisk installed with --prefix, such as ../shared/asterisk's, or the
// directory of such an installation (sbin/asterisk, lib/asterisk/modules,
// var/lib/asterisk/documentation). Tests that need Asterisk skip when it is
// unset, and fail when CI=true and it is set but Asterisk does not come up.
package asterisktest

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ivr-pin/ivr-pin/internal/testkit"
)

// EnvVar names the Asterisk to run.
const EnvVar = "IVRPIN_TEST_ASTERISK"

// ARIUser is the ARI user of the project's ari.conf.
const ARIUser = "ivr-pin"

// Asterisk is one running Asterisk.
type Asterisk struct {
	// Root holds this instance's etc, log, run, spool and lib directories.
	Root string
	// LogDir is Asterisk's log directory; Console is the file that holds
	// what Asterisk wrote on its console (stdout and stderr).
	LogDir, Console string
	// ARIURL is the ARI base URL (http://127.0.0.1:PORT/ari), WSURL its
	// events WebSocket; ARIPassword is this instance's fresh password.
	ARIURL, WSURL, ARIPassword string
	// ARIURLTLS and WSURLTLS are ARI over https/wss (Options.HTTPSCert).
	ARIURLTLS, WSURLTLS string
	// SIPAddr is the PJSIP UDP transport (127.0.0.1:PORT).
	SIPAddr string
	// OperatorGroup is the unix group cli_permissions.conf's operators'
	// section names here: the shipped "asterisk" may not exist on a test
	// machine, so it is this process's own group.
	OperatorGroup string

	install install
	t       testing.TB
	mu      sync.Mutex
	cmd     *exec.Cmd
	exited  chan struct{}
	// exitState is how the process ended, once exited is closed.
	exitState *os.ProcessState
}

// Options adjust a test's Asterisk. The zero value is the shipped
// configuration.
type Options struct {
	// Files adds or replaces whole configuration files (name -> content),
	// for test-only peers such as an outbound websocket client. The
	// project's files are never edited beyond ports, passwords and paths.
	Files map[string]string
	// OutboundURI and OutboundPassword point the shipped outbound websocket
	// client (websocket_client.conf [ivr-pin]) at a test's ivr-pin
	// listener (ws://127.0.0.1:port/ari) or load balancer.
	OutboundURI, OutboundPassword string
	// OutboundPersistent switches that client to one persistent websocket
	// for every call (connection_type = persistent).
	OutboundPersistent bool
	// OutboundCA turns TLS on in that client (tls_enabled = yes, with the
	// default certificate and host name verification) and trusts this CA
	// file (ca_list_file); OutboundURI is then wss://.
	OutboundCA string
	// SystemName names this Asterisk among several (asterisk.conf
	// systemname, which prefixes its channel ids) and gives it an entity
	// id of its own: two servers feeding one ivr-pin fleet must not share
	// channel ids.
	SystemName string
	// HTTPSCert and HTTPSKey turn on Asterisk's TLS HTTP server
	// (http.conf tlsenable) on a port of its own, beside the plain one the
	// harness uses: ARIURLTLS and WSURLTLS reach ARI through it.
	HTTPSCert, HTTPSKey string
}

// Start runs an Asterisk for t and stops it when t ends.
func Start(t testing.TB, opts Options) *Asterisk {
	t.Helper()
	src := os.Getenv(EnvVar)
	if src == "" {
		t.Skipf("%s is not set: no real Asterisk to test with (see README.md)", EnvVar)
	}
	fail := t.Fatalf
	if os.Getenv("CI") != "true" {
		// A developer with a broken Asterisk gets a skip that says why; CI
		// must not pass on a skip.
		fail = t.Skipf
	}
	inst, err := prepare(src)
	if err != nil {
		fail("%s=%s: %v", EnvVar, src, err)
	}
	a := &Asterisk{install: inst, t: t, Root: t.TempDir()}
	if err := a.configure(opts); err != nil {
		fail("configure Asterisk: %v", err)
	}
	if err := a.start(); err != nil {
		if errors.Is(err, ErrUnsupportedCPU) {
			// Not a broken configuration: this build cannot run on this
			// processor at all. Skipped even in CI, and said loudly.
			t.Skipf("%s=%s: %v", EnvVar, src, err)
		}
		fail("start Asterisk: %v\n%s", err, tail(a.Console, 40))
	}
	t.Cleanup(func() { _ = a.Stop() })
	return a
}

// ErrUnsupportedCPU is an Asterisk killed by SIGILL as it starts: the
// build uses instructions this processor lacks (the shared 22.10.1 build
// was compiled for a CPU with AVX-512, and dies in ast_str_to_eid on one
// without). It needs a build for a baseline x86-64 target.
var ErrUnsupportedCPU = errors.New("this Asterisk build dies of SIGILL on this processor (it was compiled for CPU features, such as AVX-512, that this machine lacks): rebuild it for a baseline x86-64 target")

// install is an Asterisk on disk.
type install struct {
	bin, lib, modules, docs string
}

var (
	prepareMu sync.Mutex
	prepared  = map[string]install{}
)

// prepare finds or extracts the installation, once per test binary (and
// once per machine for a tarball: the extraction is keyed by its checksum
// and renamed into place, so parallel test binaries share it).
func prepare(src string) (install, error) {
	prepareMu.Lock()
	defer prepareMu.Unlock()
	if in, ok := prepared[src]; ok {
		return in, nil
	}
	dir := src
	if st, err := os.Stat(src); err != nil {
		return install{}, err
	} else if !st.IsDir() {
		if dir, err = extract(src); err != nil {
			return install{}, err
		}
	}
	in, err := locate(dir)
	if err != nil {
		return install{}, err
	}
	prepared[src] = in
	return in, nil
}

func extract(tarball string) (string, error) {
	f, err := os.Open(tarball)
	if err != nil {
		return "", err
	}
	h := sha256.New()
	_, err = io.Copy(h, f)
	f.Close()
	if err != nil {
		return "", err
	}
	dest := filepath.Join(os.TempDir(), "ivrpin-asterisk-"+hex.EncodeToString(h.Sum(nil))[:16])
	if _, err := os.Stat(dest); err == nil {
		return dest, nil
	}
	tmp, err := os.MkdirTemp(os.TempDir(), "ivrpin-asterisk-extract-")
	if err != nil {
		return "", err
	}
	if out, err := exec.Command("tar", "-xf", tarball, "-C", tmp).CombinedOutput(); err != nil {
		os.RemoveAll(tmp)
		return "", fmt.Errorf("tar: %v: %s", err, out)
	}
	if err := os.Rename(tmp, dest); err != nil {
		os.RemoveAll(tmp)
		if _, statErr := os.Stat(dest); statErr == nil {
			return dest, nil // another test binary got there first
		}
		return "", err
	}
	return dest, nil
}

// locate finds sbin/asterisk and its modules in dir or one level below (a
// tarball holds asterisk-VERSION/).
func locate(dir string) (install, error) {
	roots := []string{dir}
	if entries, err := os.ReadDir(dir); err == nil {
		for _, e := range entries {
			if e.IsDir() {
				roots = append(roots, filepath.Join(dir, e.Name()))
			}
		}
	}
	for _, r := range roots {
		in := install{bin: filepath.Join(r, "sbin", "asterisk"), lib: filepath.Join(r, "lib"),
			modules: filepath.Join(r, "lib", "asterisk", "modules"), docs: filepath.Join(r, "var", "lib", "asterisk", "documentation")}
		if _, err := os.Stat(in.bin); err == nil {
			if _, err := os.Stat(in.modules); err != nil {
				return install{}, fmt.Errorf("%s has no lib/asterisk/modules", r)
			}
			return in, nil
		}
	}
	return install{}, errors.New("no sbin/asterisk found")
}

// ConfDir is the project's asterisk/conf.
func ConfDir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "conf")
}

// SoundsDir is the project's prompts/sounds.
func SoundsDir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "prompts", "sounds")
}

func (a *Asterisk) path(parts ...string) string {
	return filepath.Join(append([]string{a.Root}, parts...)...)
}

// configure writes the configuration: the project's files with overlays for
// ports, passwords and paths.
func (a *Asterisk) configure(opts Options) error {
	for _, d := range []string{"etc", "log", "run", "spool", "lib", "db", "lib/sounds"} {
		if err := os.MkdirAll(a.path(d), 0o755); err != nil {
			return err
		}
	}
	a.LogDir, a.Console = a.path("log"), a.path("log", "console.txt")
	if err := os.Symlink(a.install.docs, a.path("lib", "documentation")); err != nil {
		return err
	}
	// Sounds: the project's prompts in every language, and Debian's core
	// English sounds when installed (asterisk-core-sounds-en-wav).
	langs, _ := os.ReadDir(SoundsDir())
	for _, l := range langs {
		if !l.IsDir() {
			continue // sounds/MANIFEST
		}
		if err := os.MkdirAll(a.path("lib", "sounds", l.Name()), 0o755); err != nil {
			return err
		}
		if err := os.Symlink(filepath.Join(SoundsDir(), l.Name(), "ivr-pin"), a.path("lib", "sounds", l.Name(), "ivr-pin")); err != nil {
			return err
		}
	}
	if core, err := os.ReadDir("/usr/share/asterisk/sounds/en"); err == nil {
		for _, e := range core {
			_ = os.Symlink(filepath.Join("/usr/share/asterisk/sounds/en", e.Name()), a.path("lib", "sounds", "en", e.Name()))
		}
	}
	pw := make([]byte, 12)
	_, _ = rand.Read(pw)
	a.ARIPassword = hex.EncodeToString(pw)
	httpPort, err := testkit.FreePort()
	if err != nil {
		return err
	}
	sipPort, err := testkit.FreePort()
	if err != nil {
		return err
	}
	a.ARIURL = fmt.Sprintf("http://127.0.0.1:%d/ari", httpPort)
	a.WSURL = fmt.Sprintf("ws://127.0.0.1:%d/ari/events", httpPort)
	a.SIPAddr = fmt.Sprintf("127.0.0.1:%d", sipPort)

	files := map[string]string{}
	entries, err := os.ReadDir(ConfDir())
	if err != nil {
		return err
	}
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".conf") {
			b, err := os.ReadFile(filepath.Join(ConfDir(), e.Name()))
			if err != nil {
				return err
			}
			files[e.Name()] = string(b)
		}
	}
	a.OperatorGroup = "root"
	if g, err := user.LookupGroupId(strconv.Itoa(os.Getgid())); err == nil {
		a.OperatorGroup = g.Name
	}
	overlay := []struct {
		file, pattern, with string
	}{
		{"asterisk.conf", `(?s)\[directories\](\(!\))?.*?\n\[options\]`, a.directories() + "\n[options]"},
		{"cli_permissions.conf", `(?m)^\[@asterisk\]$`, "[@" + a.OperatorGroup + "]"},
		{"http.conf", `(?m)^bindaddr\s*=.*$`, "bindaddr = 127.0.0.1"},
		{"http.conf", `(?m)^bindport\s*=.*$`, "bindport = " + strconv.Itoa(httpPort)},
		{"ari.conf", `(?m)^password_format\s*=.*$`, "password_format = plain"},
		{"ari.conf", `(?m)^password\s*=.*$`, "password = " + a.ARIPassword},
		{"pjsip.conf", `(?m)^bind\s*=.*$`, "bind = " + a.SIPAddr},
	}
	if opts.OutboundURI != "" {
		overlay = append(overlay, []struct{ file, pattern, with string }{
			{"websocket_client.conf", `(?m)^uri\s*=.*$`, "uri = " + opts.OutboundURI},
			{"websocket_client.conf", `(?m)^password\s*=.*$`, "password = " + opts.OutboundPassword},
		}...)
		if opts.OutboundPersistent {
			overlay = append(overlay, struct{ file, pattern, with string }{"websocket_client.conf", `(?m)^connection_type\s*=.*$`, "connection_type = persistent"})
		}
		if opts.OutboundCA != "" {
			overlay = append(overlay, []struct{ file, pattern, with string }{
				{"websocket_client.conf", `(?m)^tls_enabled\s*=.*$`, "tls_enabled = yes"},
				{"websocket_client.conf", `(?m)^;ca_list_file\s*=.*$`, "ca_list_file = " + opts.OutboundCA},
			}...)
		}
	}
	if opts.SystemName != "" {
		sum := sha256.Sum256([]byte(opts.SystemName))
		overlay = append(overlay, struct{ file, pattern, with string }{"asterisk.conf", `(?m)^entityid\s*=.*$`,
			fmt.Sprintf("entityid = 02:fc:00:00:%02x:%02x\nsystemname = %s", sum[0], sum[1], opts.SystemName)})
	}
	if opts.HTTPSCert != "" {
		tlsPort, err := testkit.FreePort()
		if err != nil {
			return err
		}
		a.ARIURLTLS = fmt.Sprintf("https://127.0.0.1:%d/ari", tlsPort)
		a.WSURLTLS = fmt.Sprintf("wss://127.0.0.1:%d/ari/events", tlsPort)
		overlay = append(overlay, []struct{ file, pattern, with string }{
			{"http.conf", `(?m)^; tlsenable = yes$`, "tlsenable = yes"},
			{"http.conf", `(?m)^; tlsbindaddr = .*$`, "tlsbindaddr = 127.0.0.1:" + strconv.Itoa(tlsPort)},
			{"http.conf", `(?m)^; tlscertfile = .*$`, "tlscertfile = " + opts.HTTPSCert},
			{"http.conf", `(?m)^; tlsprivatekey = .*$`, "tlsprivatekey = " + opts.HTTPSKey},
		}...)
	}
	for _, o := range overlay {
		re := regexp.MustCompile(o.pattern)
		if !re.MatchString(files[o.file]) {
			return fmt.Errorf("%s: nothing matches %s: the overlay is out of date with conf/", o.file, o.pattern)
		}
		files[o.file] = re.ReplaceAllLiteralString(files[o.file], o.with)
	}
	// The shipped modules.conf (what a bank loads, and what it keeps out),
	// less modules that only add noise to a test's log, and an RTP port
	// range of this instance's own.
	if !strings.Contains(files["modules.conf"], "autoload = yes") {
		return errors.New("modules.conf: the shipped file no longer autoloads: the harness's additions assume it does")
	}
	files["modules.conf"] += "; the test harness's own: noise in a test's log\nnoload = res_config_pgsql.so\nnoload = res_config_sqlite3.so\nnoload = res_statsd.so\n"
	rtpStart := 20000 + 2*(sipPort%5000)
	files["rtp.conf"] = fmt.Sprintf("[general]\nrtpstart = %d\nrtpend = %d\n", rtpStart, rtpStart+399)
	for name, content := range opts.Files {
		files[name] = content
	}
	for name, content := range files {
		if err := os.WriteFile(a.path("etc", name), []byte(content), 0o600); err != nil {
			return err
		}
	}
	return nil
}

func (a *Asterisk) directories() string {
	return strings.Join([]string{"[directories]",
		"astetcdir => " + a.path("etc"),
		"astmoddir => " + a.install.modules,
		"astvarlibdir => " + a.path("lib"),
		"astdbdir => " + a.path("db"),
		"astkeydir => " + a.path("lib"),
		"astdatadir => " + a.path("lib"),
		"astagidir => " + a.path("lib", "agi-bin"),
		"astspooldir => " + a.path("spool"),
		"astrundir => " + a.path("run"),
		"astlogdir => " + a.path("log"),
		"astsbindir => " + filepath.Dir(a.install.bin),
	}, "\n")
}

func (a *Asterisk) start() error {
	console, err := os.OpenFile(a.Console, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	cmd := exec.Command(a.install.bin, "-f", "-n", "-C", a.path("etc", "asterisk.conf"))
	cmd.Env = append(os.Environ(), "LD_LIBRARY_PATH="+a.install.lib)
	cmd.Dir = a.Root
	cmd.Stdout, cmd.Stderr = console, console
	// It dies with the test binary, even one that panics on its -timeout.
	if err := testkit.Start(a.t, cmd); err != nil {
		console.Close()
		return err
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		console.Close()
		a.mu.Lock()
		a.exitState = cmd.ProcessState
		a.mu.Unlock()
		close(exited)
	}()
	a.mu.Lock()
	a.cmd, a.exited = cmd, exited
	a.mu.Unlock()
	return a.waitReady(30 * time.Second)
}

// waitReady polls ARI until it answers 200 (a few seconds) or Asterisk exits.
func (a *Asterisk) waitReady(limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		select {
		case <-a.exited:
			a.mu.Lock()
			st := a.exitState
			a.mu.Unlock()
			if ws, ok := st.Sys().(syscall.WaitStatus); ok && ws.Signaled() && ws.Signal() == syscall.SIGILL {
				return ErrUnsupportedCPU
			}
			return errors.New("asterisk exited before ARI answered")
		default:
		}
		code, _, err := a.Get("/asterisk/info")
		if err == nil && code == http.StatusOK {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("ARI did not answer within %s", limit)
}

// Stop ends Asterisk by its PID: SIGTERM, then SIGKILL after 10 s.
func (a *Asterisk) Stop() error {
	a.mu.Lock()
	cmd, exited := a.cmd, a.exited
	a.cmd = nil
	a.mu.Unlock()
	if cmd == nil {
		return nil
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
		return nil
	case <-time.After(10 * time.Second):
		_ = cmd.Process.Kill()
		<-exited
		return errors.New("asterisk did not stop on SIGTERM")
	}
}

// Restart stops Asterisk and starts it again on the same ports and
// configuration, as an operator's restart does.
func (a *Asterisk) Restart() error {
	if err := a.Stop(); err != nil {
		return err
	}
	return a.start()
}

// PID is the running Asterisk's process id (0 when stopped).
func (a *Asterisk) PID() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.cmd == nil {
		return 0
	}
	return a.cmd.Process.Pid
}

// Get calls an ARI route (relative to /ari) as the project's ARI user.
func (a *Asterisk) Get(route string) (int, []byte, error) {
	return a.Do(http.MethodGet, route, nil)
}

// Do calls an ARI route (relative to /ari).
func (a *Asterisk) Do(method, route string, body io.Reader) (int, []byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, a.ARIURL+route, body)
	if err != nil {
		return 0, nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.SetBasicAuth(ARIUser, a.ARIPassword)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, b, err
}

// CLI runs an Asterisk CLI command against this instance (asterisk -rx).
func (a *Asterisk) CLI(command string) (string, error) {
	cmd := exec.Command(a.install.bin, "-C", a.path("etc", "asterisk.conf"), "-rx", command)
	cmd.Env = append(os.Environ(), "LD_LIBRARY_PATH="+a.install.lib)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// Logs returns everything Asterisk wrote: its console and every file in its
// log directory.
func (a *Asterisk) Logs() string { return readTree(a.LogDir) }

// Spool is everything under Asterisk's spool directory (recordings,
// voicemail, outgoing calls): with the shipped modules, nothing a call
// writes.
func (a *Asterisk) Spool() string { return readTree(a.path("spool")) }

// Database is Asterisk's own database directory (astdb.sqlite3: what
// `database put` and the dialplan's DB() keep), as raw bytes.
func (a *Asterisk) Database() string { return readTree(a.path("db")) }

// readTree is every file under dir, each headed by its path.
func readTree(dir string) string {
	var b bytes.Buffer
	_ = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		data, err := os.ReadFile(p)
		if err == nil {
			fmt.Fprintf(&b, "==> %s <==\n%s\n", p, data)
		}
		return nil
	})
	return b.String()
}

func tail(path string, n int) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	var lines []string
	for sc := bufio.NewScanner(f); sc.Scan(); {
		lines = append(lines, sc.Text())
		if len(lines) > n {
			lines = lines[1:]
		}
	}
	return strings.Join(lines, "\n")
}
