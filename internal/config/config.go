// Package config reads ivr-pin's settings from the environment (envconfig,
// prefix IVRPIN_) in sections, one file each, that own their fields, their
// checks and their conversion into the configuration of the subsystem they
// set up: ARI and the listener (ari.go), the call flow (flow.go), the card
// host (cardhost.go), KeySecure (keysecure.go), the token and the zone PIN
// key (token.go), the attempt limits (limits.go), the audit trail
// (audit.go) and operations (operations.go). It prints the effective
// configuration with every secret shown only as set/unset or as its key
// check value. A malformed value stops start-up with a message that names
// the variable and never echoes the value.
package config

import (
	"errors"
	"fmt"
	"os"
	"reflect"
	"strings"
	"sync"

	"github.com/kelseyhightower/envconfig"
)

// Prefix is the environment prefix of every setting.
const Prefix = "IVRPIN"

// Config is every setting, by section. Each field's envconfig tag is its
// variable name after the prefix; `secret:"true"` marks values never
// printed, `secret:"url"` URLs printed with their secrets masked. The
// sections are embedded, so a setting is also reached as cfg.Field.
type Config struct {
	ARI        `section:"Asterisk ARI, both ways"`
	Flow       `section:"The call flow"`
	CardHost   `section:"The card host (REQ_CARD_PIN_CHANGE)"`
	KeySecure  `section:"KeySecure (a physical card's first PIN)"`
	Token      `section:"The zone PIN key and its token"`
	Rotation   `section:"The zone PIN key's rotation"`
	Limits     `section:"Attempt limits and their store"`
	Audit      `section:"The audit trail"`
	Operations `section:"Operations"`

	// Not settings: where secrets came from, and which secret files were
	// refused (their settings count as given: one cause, one message).
	fromEnv   []string
	fromFiles []string
	refused   map[string]bool
}

// Load reads the environment (and the files the _FILE variables name) and
// checks the values, returning the first problem.
func Load() (*Config, error) {
	var c Config
	if err := process(&c); err != nil {
		return nil, redactEnvconfigError(err)
	}
	if err := c.readSecrets(os.LookupEnv); err != nil {
		return nil, err
	}
	if err := first(c.loadKeys()); err != nil {
		return nil, err
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return &c, nil
}

// LoadAll reads the configuration as Load does but reports every problem
// at once, for serve's start, `ivr-pin check` and `ivr-pin config`: each
// value that does not parse (the variable is then taken as unset, so the
// rest can still be checked), refused secret files, the zone PIN key and
// every section's checks (what serve needs beyond them is ServeProblems).
// It unsets each malformed variable in this process's environment: it is
// for a process that serves or only checks.
func LoadAll() (*Config, []error) {
	var problems []error
	var c Config
	for range 200 {
		c = Config{}
		err := process(&c)
		var pe *envconfig.ParseError
		if !errors.As(err, &pe) {
			if err != nil {
				problems = append(problems, redactEnvconfigError(err))
			}
			break
		}
		problems = append(problems, redactEnvconfigError(err))
		if err := os.Unsetenv(variableOf(pe)); err != nil {
			break
		}
	}
	problems = append(problems, c.readAllSecrets(os.LookupEnv)...)
	problems = append(problems, c.loadKeys()...)
	problems = append(problems, c.Problems()...)
	return &c, dedupe(problems)
}

// process fills c from the IVRPIN_ variables only. envconfig falls back to
// a setting's name without the prefix when the prefixed variable is unset,
// so a shell's LAB (a lab's directory) or LOG_LEVEL (another program's)
// would become IVRPIN_LAB or IVRPIN_LOG_LEVEL. Those unprefixed names are
// hidden while envconfig reads, and put back.
func process(c *Config) error {
	envMu.Lock()
	defer envMu.Unlock()
	for _, s := range settings() {
		if _, prefixed := os.LookupEnv(Prefix + "_" + s.Name); prefixed {
			continue
		}
		if v, ok := os.LookupEnv(s.Name); ok {
			_ = os.Unsetenv(s.Name)
			defer os.Setenv(s.Name, v)
		}
	}
	return envconfig.Process(Prefix, c)
}

// envMu keeps two loads from hiding and restoring the same names at once.
var envMu sync.Mutex

// Problem is a configuration error naming one variable.
type Problem struct {
	Var, Reason string
}

func (p *Problem) Error() string { return Prefix + "_" + p.Var + ": " + p.Reason }

func problem(v, reason string) error { return &Problem{Var: v, Reason: reason} }

// Validate checks each value that can be checked without the network,
// returning the first problem.
func (c *Config) Validate() error { return first(c.Problems()) }

// Problems are every section's problems, in the sections' order.
func (c *Config) Problems() []error {
	var out []error
	out = append(out, c.ARI.problems(c.AllowInsecureHosts)...)
	out = append(out, c.Flow.problems()...)
	out = append(out, c.CardHost.problems(c.AllowInsecureHosts)...)
	out = append(out, c.KeySecure.problems(c.AllowInsecureHosts)...)
	out = append(out, c.Token.problems(c.given, c.tokenLabels())...)
	out = append(out, c.rotationProblems()...)
	out = append(out, c.hostProblems()...)
	out = append(out, c.Limits.problems(c.given, c.AllowInsecureHosts)...)
	out = append(out, c.Audit.problems(c.LimitKey)...)
	out = append(out, c.Operations.problems()...)
	return out
}

// given reports whether a secret setting has a value, or a file that was
// refused (which is its own problem, not a missing setting).
func (c *Config) given(name, value string) bool { return value != "" || c.refused[name] }

// hostProblems are what each configured host needs from other sections: the
// card host its PIN block key (the token's or a software one).
func (c *Config) hostProblems() []error {
	var out []error
	if c.NIURL != "" && (!c.TokenKey() || c.NIEncryptionMethod == methodAsymmetric) && !c.refused["NI_ZPK"] {
		if _, err := c.Encrypter(nil); err != nil {
			out = append(out, err)
		}
	}
	return out
}

// ValidateServe checks what serve needs beyond Validate: the card host, and
// the HMAC key of the attempt limits, which is never kept beside the hashes
// it makes (the console and tests make a fresh one per run).
func (c *Config) ValidateServe() error { return first(c.ServeProblems()) }

// first is the first of problems, or nil.
func first(problems []error) error {
	if len(problems) > 0 {
		return problems[0]
	}
	return nil
}

// ServeProblems are ValidateServe's problems, all of them.
func (c *Config) ServeProblems() []error {
	var out []error
	if c.NIURL == "" {
		out = append(out, problem("NI_URL", "required: serve needs the card host (try `ivr-pin console` for a demo)"))
		// What NI_URL brings with it (the card host's checks check them
		// once it is set).
		if c.NIBankID == "" {
			out = append(out, problem("NI_BANK_ID", "required: the card host's bank_id"))
		}
		if !c.TokenKey() && !c.HasSoftwareZPK() {
			out = append(out, problem("NI_ZPK_LABEL", "required: the zone PIN key, in a PKCS#11 token (NI_ZPK_LABEL with PKCS11_MODULE, PKCS11_TOKEN_LABEL, PKCS11_PIN_FILE), or NI_ZPK_FILE in a lab"))
		}
	}
	out = append(out, c.softwareNextKeyProblems()...)
	if c.HasSoftwareZPK() && !c.Lab {
		out = append(out, problem(c.GivenAs("NI_ZPK"), "a zone PIN key in software is for labs (set IVRPIN_LAB=true there); production keeps it in an HSM: NI_ZPK_LABEL with PKCS11_MODULE, PKCS11_TOKEN_LABEL, PKCS11_PIN_FILE (docs/operations.md)"))
	}
	if c.AuditFile != "" && !c.given("AUDIT_KEY", c.AuditKey) && c.AuditKeyLabel == "" && !c.Lab {
		out = append(out, problem("AUDIT_KEY", "required with AUDIT_FILE outside a lab: it chains the audit records so a record removed, inserted or changed shows; make one with `openssl rand -hex 32` and give it as AUDIT_KEY_FILE (docs/operations.md)"))
	}
	if !c.given("LIMIT_KEY", c.LimitKey) {
		out = append(out, problem("LIMIT_KEY", "required: the key that hashes card numbers and caller ids for the limits is never stored beside the hashes; make one with `openssl rand -hex 32` and give it as LIMIT_KEY_FILE (the same on every instance)"))
	}
	return out
}

// Warnings are what serve runs with but warns of, each naming its
// variables: secrets read from the environment, a software zone PIN key,
// links a lab lets travel in clear.
func (c *Config) Warnings() []error {
	var out []error
	if env := c.SecretsFromEnvironment(); len(env) > 0 {
		out = append(out, fmt.Errorf("%s: secrets given in the environment, which anything running as this user can read (/proc/PID/environ): give them as files (the _FILE variables: systemd LoadCredential=, Docker secrets)", strings.Join(env, ", ")))
	}
	if c.Lab {
		out = append(out, problem("LAB", "true: lab mode: a software zone PIN key or a SoftHSM2 token is accepted; never in production"))
	}
	if c.HasSoftwareZPK() {
		out = append(out, problem("NI_ZPK", "the zone PIN key is in software, in this process's memory; a production line keeps it in an HSM (IVRPIN_NI_ZPK_LABEL with IVRPIN_PKCS11_*)"))
	}
	if links := c.InsecureARILinks(); len(links) > 0 {
		out = append(out, fmt.Errorf("%s: IVRPIN_ALLOW_INSECURE_HOSTS=true lets the ARI link, which carries every digit a caller types and the ARI password, travel in clear beyond this machine; never in production", strings.Join(links, ", ")))
	}
	if c.AllowInsecureHosts {
		out = append(out, problem("ALLOW_INSECURE_HOSTS", "true: PIN blocks, tokens and card details may travel in plain http to other machines; never in production"))
	}
	return out
}

// redactEnvconfigError keeps the variable name and the expected type and
// drops the value envconfig puts in its messages.
func redactEnvconfigError(err error) error {
	var pe *envconfig.ParseError
	if errors.As(err, &pe) {
		return fmt.Errorf("%s: malformed value (want %s)", variableOf(pe), typeWords(pe.TypeName))
	}
	return errors.New("configuration: " + err.Error())
}

// variableOf is the variable a parse error is about, with the prefix.
func variableOf(pe *envconfig.ParseError) string {
	if strings.HasPrefix(pe.KeyName, Prefix+"_") {
		return pe.KeyName
	}
	return Prefix + "_" + pe.KeyName
}

// typeWords says what a value of a setting's type looks like.
func typeWords(typ string) string {
	switch {
	case strings.HasSuffix(typ, "Duration"):
		return "a duration such as 500ms, 5s, 2m or 1h"
	case typ == "int":
		return "a whole number"
	case typ == "bool":
		return "true or false"
	case strings.HasPrefix(typ, "map"):
		return "key:value pairs, comma separated"
	case strings.HasPrefix(typ, "[]"):
		return "a comma-separated list"
	}
	return "a " + typ
}

// dedupe drops a problem said twice (a key checked by two checks).
func dedupe(in []error) []error {
	seen := map[string]bool{}
	var out []error
	for _, e := range in {
		if !seen[e.Error()] {
			seen[e.Error()] = true
			out = append(out, e)
		}
	}
	return out
}

// setting is one setting's field: its variable name (without the prefix),
// its section's title, and where it is in Config.
type setting struct {
	reflect.StructField
	Name, Section string
}

// settings lists every setting, section by section, as declared.
func settings() []setting {
	t := reflect.TypeOf(Config{})
	var out []setting
	for _, f := range reflect.VisibleFields(t) {
		if name := f.Tag.Get("envconfig"); name != "" && f.IsExported() && !f.Anonymous {
			out = append(out, setting{StructField: f, Name: name, Section: t.Field(f.Index[0]).Tag.Get("section")})
		}
	}
	return out
}
