// Package config reads ivr-pin's settings from the environment (envconfig,
// prefix IVRPIN_), checks them, builds the key objects, and prints the
// effective configuration with every secret shown only as set/unset or as
// its key check value. A malformed value stops start-up with a message that
// names the variable and never echoes the value.
package config

import (
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/kelseyhightower/envconfig"

	"github.com/ivr-pin/ivr-pin/flows"
	"github.com/ivr-pin/ivr-pin/internal/limits"
	"github.com/ivr-pin/ivr-pin/pinsvc/cardhost"
	"github.com/ivr-pin/ivr-pin/pinsvc/hosturl"
	"github.com/ivr-pin/ivr-pin/pinsvc/hsm"
	"github.com/ivr-pin/ivr-pin/pinsvc/keysecure"
	"github.com/ivr-pin/ivr-pin/pinsvc/pinblock"
	"github.com/ivr-pin/ivr-pin/pinsvc/policy"
	"github.com/ivr-pin/ivr-pin/pinsvc/secret"
	"github.com/ivr-pin/ivr-pin/prompts"
)

// Prefix is the environment prefix of every setting.
const Prefix = "IVRPIN"

// Config is every setting. The envconfig tag is the variable name after the
// prefix; `secret:"true"` marks values never printed.
type Config struct {
	// Asterisk ARI.
	ARIURL         string        `envconfig:"ARI_URL" default:"http://127.0.0.1:8088/ari" secret:"url" desc:"ARI base URL"`
	ARIWSURL       string        `envconfig:"ARI_WS_URL" secret:"url" desc:"ARI events WebSocket URL (derived from ARI_URL when unset)"`
	ARIUsername    string        `envconfig:"ARI_USERNAME" default:"ivr-pin" desc:"ARI user (ari.conf)"`
	ARIPassword    string        `envconfig:"ARI_PASSWORD" secret:"true" desc:"ARI password"`
	ARIApplication string        `envconfig:"ARI_APPLICATION" default:"ivr-pin" desc:"Stasis application name"`
	ARITimeout     time.Duration `envconfig:"ARI_TIMEOUT" default:"5s" desc:"timeout of each ARI REST call and of connecting"`
	ARITLSCA       string        `envconfig:"ARI_TLS_CA" desc:"PEM CA bundle that signed Asterisk's certificate (https/wss ARI_URL); unset: the system's roots"`
	// Outbound ARI (Asterisk 22 dials us): set ARI_LISTEN to use it.
	ARIListen         string `envconfig:"ARI_LISTEN" desc:"host:port to accept Asterisk 22's outbound ARI websockets on (path /ari); unset: dial ARI_URL (inbound)"`
	ARIListenUsername string `envconfig:"ARI_LISTEN_USERNAME" default:"asterisk" desc:"username Asterisk must send (websocket_client.conf username)"`
	ARIListenPassword string `envconfig:"ARI_LISTEN_PASSWORD" secret:"true" desc:"password Asterisk must send (websocket_client.conf password); required with ARI_LISTEN"`
	ARIListenTLSCert  string `envconfig:"ARI_LISTEN_TLS_CERT" desc:"PEM certificate file: serve wss (with ARI_LISTEN_TLS_KEY)"`
	ARIListenTLSKey   string `envconfig:"ARI_LISTEN_TLS_KEY" desc:"PEM private key file for ARI_LISTEN_TLS_CERT"`
	// What the listener holds: every link that carries a caller's digits is
	// bounded, and password guessing costs time.
	ARIListenMaxConnections    int      `envconfig:"ARI_LISTEN_MAX_CONNECTIONS" default:"10000" desc:"open connections the listener holds; past it a new one is closed at once and counted (keep it under the process's descriptor limit)"`
	ARIListenMaxCallsPerSocket int      `envconfig:"ARI_LISTEN_MAX_CALLS_PER_SOCKET" default:"1000" desc:"calls one persistent websocket may carry at once (a per-call websocket carries one)"`
	ARIListenMaxFailures       int      `envconfig:"ARI_LISTEN_MAX_FAILURES" default:"20" desc:"failed logins from one source in a minute before it is answered 429 until the minute ends"`
	ARIListenTrustedProxies    []string `envconfig:"ARI_LISTEN_TRUSTED_PROXIES" desc:"addresses or CIDRs of load balancers whose PROXY protocol v2 header names the real source (HAProxy send-proxy-v2); comma separated"`

	// Call flow.
	Languages         []string      `envconfig:"LANGUAGES" default:"en" desc:"prompt languages, comma separated, first is the default"`
	PromptWords       string        `envconfig:"PROMPT_WORDS" desc:"directory of <lang>.toml files whose prompt words replace or add to the shipped ones (docs/prompts.md); unset: the shipped words"`
	ExpiryOrder       string        `envconfig:"EXPIRY_ORDER" default:"MMYY" desc:"order the caller types the expiry in: MMYY (as printed on cards) or YYMM (the card host's order)"`
	FirstDigitTimeout time.Duration `envconfig:"FIRST_DIGIT_TIMEOUT" default:"8s" desc:"wait for the first digit of an entry"`
	InterDigitTimeout time.Duration `envconfig:"INTER_DIGIT_TIMEOUT" default:"5s" desc:"wait between digits"`
	MaxTries          int           `envconfig:"MAX_TRIES" default:"3" desc:"tries per step before goodbye"`
	PINMinLength      int           `envconfig:"PIN_MIN_LENGTH" default:"4" desc:"shortest new PIN for a change"`
	PINMaxLength      int           `envconfig:"PIN_MAX_LENGTH" default:"6" desc:"longest new PIN for a change"`
	AgentTransfer     string        `envconfig:"AGENT_TRANSFER" desc:"dialplan target for 0 (an agent), as context,extension,priority; unset: no agent option"`
	AgentOnFailure    string        `envconfig:"AGENT_ON_FAILURE" default:"offer" desc:"with AGENT_TRANSFER, a call that cannot finish (tries used up, a refusal, a host not available, a limit): offer (press 0 for an agent), transfer (at once) or never"`
	CallTimeout       time.Duration `envconfig:"CALL_TIMEOUT" default:"10m" desc:"hard limit on one call"`
	DrainTimeout      time.Duration `envconfig:"DRAIN_TIMEOUT" default:"2m" desc:"on SIGTERM, how long active calls may finish"`
	DrainFallback     string        `envconfig:"DRAIN_FALLBACK" desc:"during a drain, send new calls here (context,extension,priority); unset: a short closing message"`
	HostWaitAnnounce  time.Duration `envconfig:"HOST_WAIT_ANNOUNCE" default:"2s" desc:"after this long waiting for a host, tell the caller the line is alive"`

	// Card host (REQ_CARD_PIN_CHANGE).
	NIURL              string            `envconfig:"NI_URL" secret:"url" desc:"full URL of the PIN change endpoint; unset: the built-in simulator (console only)"`
	NIBankID           string            `envconfig:"NI_BANK_ID" desc:"bank_id, at most 4 characters"`
	NIEncryptionMethod string            `envconfig:"NI_ENCRYPTION_METHOD" default:"SYMMETRIC_ENC" desc:"SYMMETRIC_ENC or ASYNC_ENC"`
	NIPINBlockFormat   string            `envconfig:"NI_PINBLOCK_FORMAT" default:"ISO0" desc:"ISO0, ISO1, ISO3 or ISO4"`
	NIZPK              string            `envconfig:"NI_ZPK" secret:"true" desc:"software zone PIN key, hex (TDES 16/24 bytes with odd parity; AES for ISO4): labs and the demo only; production sets NI_ZPK_LABEL"`
	NIZPKLabel         string            `envconfig:"NI_ZPK_LABEL" desc:"CKA_LABEL of the zone PIN key in the PKCS#11 token (set instead of NI_ZPK, never both)"`
	NIZPKKCV           string            `envconfig:"NI_ZPK_KCV" desc:"the zone PIN key's check value from the key ceremony (6 hex digits); start-up fails if the key's differs"`
	NICertFile         string            `envconfig:"NI_CERT_FILE" desc:"PEM certificate with the RSA key for ASYNC_ENC"`
	NIRSAPadding       string            `envconfig:"NI_RSA_PADDING" default:"OAEP-SHA256" desc:"OAEP-SHA256, OAEP-SHA1 or PKCS1v15"`
	NIRSAMGF1Hash      string            `envconfig:"NI_RSA_MGF1_HASH" desc:"OAEP's MGF1 hash: SHA1 or SHA256; unset: the OAEP hash (Java's OAEPWithSHA-256AndMGF1Padding is OAEP-SHA256 with SHA1)"`
	NIRSAEncoding      string            `envconfig:"NI_RSA_ENCODING" default:"hex" desc:"hex or base64"`
	NIKeyID            string            `envconfig:"NI_KEY_ID" desc:"encryption_key_id, optional"`
	NIKeyType          string            `envconfig:"NI_KEY_TYPE" desc:"encryption_key_type, optional"`
	NITokenURL         string            `envconfig:"NI_TOKEN_URL" secret:"url" desc:"OAuth2 token URL (client credentials)"`
	NIClientID         string            `envconfig:"NI_CLIENT_ID" desc:"OAuth2 client id"`
	NIClientSecret     string            `envconfig:"NI_CLIENT_SECRET" secret:"true" desc:"OAuth2 client secret"`
	NITLSCert          string            `envconfig:"NI_TLS_CERT" desc:"TLS client certificate (PEM file)"`
	NITLSKey           string            `envconfig:"NI_TLS_KEY" desc:"TLS client key (PEM file)"`
	NITLSCA            string            `envconfig:"NI_TLS_CA" desc:"CA bundle for the card host (PEM file)"`
	NITimeout          time.Duration     `envconfig:"NI_TIMEOUT" default:"10s" desc:"card host request timeout"`
	NICodesWrongPIN    []string          `envconfig:"NI_CODES_WRONG_PIN" default:"105" desc:"error codes meaning the current PIN is wrong (the caller may type it again)"`
	NICodesNotEligible []string          `envconfig:"NI_CODES_NOT_ELIGIBLE" default:"104,106" desc:"error codes meaning the card is blocked or cannot use the line"`
	NICodesExpiry      []string          `envconfig:"NI_CODES_EXPIRY_MISMATCH" default:"103" desc:"error codes meaning the expiry does not match the card (the caller may type it again)"`
	NICodesUnknown     []string          `envconfig:"NI_CODES_UNKNOWN_CARD" default:"102" desc:"error codes meaning the card number is not known"`
	NICodesNoPIN       []string          `envconfig:"NI_CODES_NO_PIN" default:"107" desc:"error codes meaning the card has no PIN yet (offer first setup)"`
	NICodesWeakPIN     []string          `envconfig:"NI_CODES_WEAK_PIN" default:"110" desc:"error codes meaning the new PIN was refused as weak"`
	NISrcApplication   string            `envconfig:"NI_SRC_APPLICATION" default:"IVR" desc:"header src_application"`
	NITargetApp        string            `envconfig:"NI_TARGET_APPLICATION" default:"PCMS" desc:"header target_application"`
	NITimestampFormat  string            `envconfig:"NI_TIMESTAMP_FORMAT" default:"iso8601" desc:"header timestamp: iso8601 (the samples' 2020-05-21T15:13:18.853+04:00) or legacy (DD/MM/YYYY HH:MM:SS, the text)"`
	NISequenceByBIN    map[string]string `envconfig:"NI_SEQUENCE_BY_BIN" desc:"card_sequence_number by PAN prefix when a call does not pass one, as BIN:NN,BIN:NN (longest prefix wins)"`

	// KeySecure open platform.
	KeySecureURL       string        `envconfig:"KEYSECURE_URL" secret:"url" desc:"KeySecure base URL; unset: the built-in simulator (console only)"`
	KeySecureAPIKey    string        `envconfig:"KEYSECURE_API_KEY" secret:"true" desc:"merchant Api-Key"`
	KeySecureAPISecret string        `envconfig:"KEYSECURE_API_SECRET" secret:"true" desc:"merchant apiSecret (16, 24 or 32 bytes)"`
	KeySecureTimeout   time.Duration `envconfig:"KEYSECURE_TIMEOUT" default:"10s" desc:"KeySecure request timeout"`
	KeySecureLanguage  string        `envconfig:"KEYSECURE_LANGUAGE" desc:"Language header: en_US or zh_CN"`
	KeySecureLookback  time.Duration `envconfig:"KEYSECURE_LOOKBACK" default:"17520h" desc:"how far back to search card creation dates"`
	KeySecureTimezone  string        `envconfig:"KEYSECURE_TIMEZONE" desc:"Timezone header (platform default UTC+8)"`
	KeySecureSkew      time.Duration `envconfig:"KEYSECURE_CLOCK_SKEW" default:"2s" desc:"taken off the Timestamp header, so a fast local clock is not refused as 'in the future' (0 to 30s)"`
	KeySecureMaxList   int           `envconfig:"KEYSECURE_MAX_LIST_REQUESTS" default:"40" desc:"card list requests one card search may make"`
	KeySecureMaxCands  int           `envconfig:"KEYSECURE_MAX_CANDIDATES" default:"3" desc:"cards (same last four, physical) whose private info one search may fetch"`
	// PKCS#11 token holding the zone PIN key (an HSM; SoftHSM2 in labs).
	PKCS11Module     string `envconfig:"PKCS11_MODULE" desc:"path of the token's PKCS#11 library (e.g. /usr/lib/softhsm/libsofthsm2.so)"`
	PKCS11TokenLabel string `envconfig:"PKCS11_TOKEN_LABEL" desc:"label of the token that holds the zone PIN key"`
	PKCS11PIN        string `envconfig:"PKCS11_PIN" secret:"true" desc:"the token's user PIN (give it as PKCS11_PIN_FILE)"`
	PKCS11Sessions   int    `envconfig:"PKCS11_SESSIONS" default:"8" desc:"token sessions kept open for PIN block encryption (1 to 64)"`

	AllowInsecureHosts bool `envconfig:"ALLOW_INSECURE_HOSTS" default:"false" desc:"accept plain http host URLs to machines other than this one (a lab only; logged loudly)"`

	// Attempt limits.
	LimitCardMax       int           `envconfig:"LIMIT_CARD_MAX" default:"5" desc:"PIN attempts (and refused expiry dates) per card in the card window; 0 turns the card limit off"`
	LimitCardWindow    time.Duration `envconfig:"LIMIT_CARD_WINDOW" default:"24h" desc:"sliding window of the card limit"`
	LimitCardLockout   time.Duration `envconfig:"LIMIT_CARD_LOCKOUT" default:"24h" desc:"how long a card is refused once past its limit"`
	LimitCallerMax     int           `envconfig:"LIMIT_CALLER_MAX" default:"10" desc:"attempts (PIN submissions, refused card numbers) per caller id in the caller window; 0 turns it off"`
	LimitCallerWindow  time.Duration `envconfig:"LIMIT_CALLER_WINDOW" default:"1h" desc:"sliding window of the caller limit"`
	LimitCallerLockout time.Duration `envconfig:"LIMIT_CALLER_LOCKOUT" default:"1h" desc:"how long a caller id is refused once past its limit"`
	LimitWithheldMax   int           `envconfig:"LIMIT_WITHHELD_MAX" default:"5" desc:"attempts in the caller window shared by all calls without a caller id (withheld, anonymous, empty); at most LIMIT_CALLER_MAX"`
	LimitLineFailedMax int           `envconfig:"LIMIT_LINE_FAILED_MAX" default:"100" desc:"failed card-detail checks (unknown card, expiry or security code that do not match) across the whole line that turn the line guard on: new calls hear 'not available' until the window passes; size it well above the line's busiest window (docs/operations.md); 0 turns it off"`
	LimitLineWindow    time.Duration `envconfig:"LIMIT_LINE_WINDOW" default:"10m" desc:"window of the line guard, and how long it stays on"`
	LimitStore         string        `envconfig:"LIMIT_STORE" default:"/var/lib/ivr-pin/attempts.db" desc:"embedded attempt store file (used when REDIS_URL is unset); its directory must exist and be writable"`
	LimitKey           string        `envconfig:"LIMIT_KEY" secret:"true" desc:"hex HMAC key (at least 16 bytes) that hashes card numbers and caller ids for the limits; serve requires it (the same on every instance), and it is never stored beside the hashes"`

	// Operations.
	AuditFile             string        `envconfig:"AUDIT_FILE" desc:"append-only audit file (one JSON record per call, synced on write); unset: stdout, tagged log=audit"`
	LogLevel              string        `envconfig:"LOG_LEVEL" default:"info" desc:"debug, info, warn or error"`
	LogFormat             string        `envconfig:"LOG_FORMAT" default:"auto" desc:"json, text, or auto (text on a terminal)"`
	InstanceID            string        `envconfig:"INSTANCE_ID" desc:"this instance's name in audit records and the fleet's Redis registry; unset: host name and process id"`
	MetricsAddr           string        `envconfig:"METRICS_ADDR" default:"127.0.0.1:9464" desc:"metrics and health listen address"`
	RedisURL              string        `envconfig:"REDIS_URL" secret:"url" desc:"Redis for attempt limits shared by several instances"`
	RedisPassword         string        `envconfig:"REDIS_PASSWORD" secret:"true" desc:"Redis password (AUTH), replacing any in REDIS_URL; give it as REDIS_PASSWORD_FILE"`
	RedisSentinels        []string      `envconfig:"REDIS_SENTINELS" desc:"Redis Sentinel addresses (host:port, comma separated) instead of REDIS_URL: the client follows a failover to the promoted replica"`
	RedisMaster           string        `envconfig:"REDIS_MASTER" desc:"the master's name in Sentinel (sentinel monitor NAME ...), with REDIS_SENTINELS"`
	RedisSentinelPassword string        `envconfig:"REDIS_SENTINEL_PASSWORD" secret:"true" desc:"Sentinel's own password (requirepass of the sentinels), when set; give it as REDIS_SENTINEL_PASSWORD_FILE"`
	RedisMinReplicas      int           `envconfig:"REDIS_MIN_REPLICAS" default:"-1" desc:"replicas that must hold each limit write (Redis WAIT) before the call goes on, else it fails closed; -1: 1 with REDIS_SENTINELS, 0 with REDIS_URL"`
	RedisWaitTimeout      time.Duration `envconfig:"REDIS_WAIT_TIMEOUT" default:"200ms" desc:"how long a limit write waits for REDIS_MIN_REPLICAS"`

	// Not settings: where secrets came from, and the software zone PIN key
	// once parsed into its cipher (its hex and bytes are not kept).
	fromEnv   []string
	fromFiles []string
	zpkFile   string
	zpk       *secret.Key
	zpkErr    error
}

// Load reads the environment (and the files the _FILE variables name) and
// checks the values.
func Load() (*Config, error) {
	var c Config
	if err := envconfig.Process(Prefix, &c); err != nil {
		return nil, redactEnvconfigError(err)
	}
	if err := c.readSecrets(os.LookupEnv); err != nil {
		return nil, err
	}
	if err := c.loadZPK(); err != nil {
		return nil, err
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return &c, nil
}

// loadZPK parses the software zone PIN key, from its file or its variable,
// into its cipher and drops the hex: the configuration keeps no copy. A
// key read from a file never becomes a string; one from the environment
// stays in the process's environment block, which is one reason production
// keys live in a token.
func (c *Config) loadZPK() error {
	if c.zpkFile != "" {
		b, err := ReadSecretFile(c.zpkFile)
		if err != nil {
			return problem("NI_ZPK_FILE", err.Error())
		}
		defer secret.Zero(b)
		k, err := parseZPK(c.ZPKAlgorithm(), b)
		if err != nil {
			return problem("NI_ZPK_FILE", err.Error())
		}
		c.zpk = k
		return nil
	}
	if c.NIZPK == "" {
		return nil
	}
	if _, err := c.ZPK(); err != nil {
		return err
	}
	c.NIZPK = ""
	return nil
}

// parseZPK decodes hex key material, refuses a weak key, and builds the
// key's cipher; the decoded bytes are wiped.
func parseZPK(alg secret.Algorithm, hexKey []byte) (*secret.Key, error) {
	raw, err := secret.DecodeHex(hexKey)
	if err != nil {
		return nil, err
	}
	defer secret.Zero(raw)
	if w := secret.Weakness(alg, raw); w != "" {
		return nil, errors.New("the key " + w)
	}
	return secret.NewKey(alg, raw)
}

// PKCS11 is the token's configuration.
func (c *Config) PKCS11() hsm.Config {
	return hsm.Config{Module: c.PKCS11Module, TokenLabel: c.PKCS11TokenLabel, PIN: c.PKCS11PIN, Sessions: c.PKCS11Sessions}
}

// ZPKAlgorithm is the zone PIN key's algorithm for the PIN block format.
func (c *Config) ZPKAlgorithm() secret.Algorithm {
	if f, _ := pinblock.ParseFormat(c.NIPINBlockFormat); f == pinblock.ISO4 {
		return secret.AES
	}
	return secret.TDES
}

// HasSoftwareZPK reports whether a software zone PIN key is configured
// (IVRPIN_NI_ZPK or IVRPIN_NI_ZPK_FILE).
func (c *Config) HasSoftwareZPK() bool {
	return c.NIZPK != "" || c.zpkFile != "" || c.zpk != nil || c.zpkErr != nil
}

// ZPKFile is IVRPIN_NI_ZPK_FILE, the software zone PIN key's file ("" when
// the key is in the environment, a token, or unset).
func (c *Config) ZPKFile() string { return c.zpkFile }

// TokenKey reports whether the zone PIN key is in a PKCS#11 token.
func (c *Config) TokenKey() bool { return c.NIZPKLabel != "" }

// redactEnvconfigError keeps the variable name and the expected type and
// drops the value envconfig puts in its messages.
func redactEnvconfigError(err error) error {
	var pe *envconfig.ParseError
	if errors.As(err, &pe) {
		name := pe.KeyName
		if !strings.HasPrefix(name, Prefix+"_") {
			name = Prefix + "_" + name
		}
		return fmt.Errorf("%s: malformed value (want %s)", name, typeWords(pe.TypeName))
	}
	return errors.New("configuration: " + err.Error())
}

// Problem is a configuration error naming one variable.
type Problem struct {
	Var, Reason string
}

func (p *Problem) Error() string { return Prefix + "_" + p.Var + ": " + p.Reason }

func problem(v, reason string) error { return &Problem{Var: v, Reason: reason} }

// Validate checks each value that can be checked without the network: the
// named checks of checks, in order, stopping at the first problem.
func (c *Config) Validate() error {
	for _, check := range c.checks() {
		if err := check(); err != nil {
			return err
		}
	}
	return nil
}

// Problems runs every named check and returns each one's problem: what
// `ivr-pin check` lists, all at once.
func (c *Config) Problems() []error {
	var out []error
	for _, check := range c.checks() {
		if err := check(); err != nil {
			out = append(out, err)
		}
	}
	return out
}

// checks are Validate's checks, each of one kind of setting (its name
// says which), reporting the first problem of its kind.
func (c *Config) checks() []func() error {
	return []func() error{
		c.checkARI, c.validateARILinks, c.checkListener, c.checkCallFlow, c.checkTargets, c.checkDurations,
		c.checkCardHost, c.checkKeySecure, c.validateKeyCustody, c.checkHosts, c.checkLimits, c.checkLogging,
	}
}

// checkARI checks the inbound ARI URLs, the Redis URL and the ARI password.
func (c *Config) checkARI() error {
	if u, err := url.Parse(c.ARIURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return problem("ARI_URL", "must be an http or https URL")
	}
	if c.ARIWSURL != "" {
		if u, err := url.Parse(c.ARIWSURL); err != nil || (u.Scheme != "ws" && u.Scheme != "wss") || u.Host == "" {
			return problem("ARI_WS_URL", "must be a ws or wss URL")
		}
	}
	if c.RedisURL != "" {
		if u, err := url.Parse(c.RedisURL); err != nil || (u.Scheme != "redis" && u.Scheme != "rediss") || u.Host == "" {
			return problem("REDIS_URL", "must be a redis:// or rediss:// URL")
		}
	}
	if c.ARIPassword != "" {
		if w := weakPassword(c.ARIPassword); w != "" {
			return problem("ARI_PASSWORD", w)
		}
	}
	return nil
}

// checkListener checks the outbound listener: its address, its login and its TLS pair.
func (c *Config) checkListener() error {
	if c.ARIListen != "" {
		_, port, err := net.SplitHostPort(c.ARIListen)
		if err != nil || port == "" {
			return problem("ARI_LISTEN", "must be host:port")
		}
		if c.ARIListenPassword == "" {
			return problem("ARI_LISTEN_PASSWORD", "required with ARI_LISTEN: Asterisk must authenticate")
		}
		if w := weakPassword(c.ARIListenPassword); w != "" {
			return problem("ARI_LISTEN_PASSWORD", w)
		}
		if c.ARIListenUsername == "" {
			return problem("ARI_LISTEN_USERNAME", "must not be empty")
		}
		if (c.ARIListenTLSCert == "") != (c.ARIListenTLSKey == "") {
			return problem("ARI_LISTEN_TLS_CERT", "set both ARI_LISTEN_TLS_CERT and ARI_LISTEN_TLS_KEY, or neither")
		}
	}
	return nil
}

// checkCallFlow checks the application, the languages and their prompt words, and the caller-facing choices.
func (c *Config) checkCallFlow() error {
	if c.ARIApplication == "" {
		return problem("ARI_APPLICATION", "must not be empty")
	}
	if len(c.Languages) == 0 || c.Languages[0] == "" {
		return problem("LANGUAGES", "needs at least one language")
	}
	words, err := c.Prompts()
	if err != nil {
		return problem("PROMPT_WORDS", err.Error())
	}
	seen := map[string]bool{}
	for _, l := range c.Languages {
		if seen[l] {
			return problem("LANGUAGES", "lists "+strconv.Quote(l)+" twice")
		}
		seen[l] = true
		if err := words.Check([]string{l}); err != nil {
			return problem("LANGUAGES", strconv.Quote(l)+": "+err.Error())
		}
	}
	switch policy.ExpiryOrder(c.ExpiryOrder) {
	case policy.MMYY, policy.YYMM:
	default:
		return problem("EXPIRY_ORDER", "must be MMYY or YYMM, not "+strconv.Quote(c.ExpiryOrder))
	}
	switch flows.AgentOnFailure(c.AgentOnFailure) {
	case flows.AgentOffer, flows.AgentTransfer, flows.AgentNever:
	default:
		return problem("AGENT_ON_FAILURE", "must be offer, transfer or never, not "+strconv.Quote(c.AgentOnFailure))
	}
	return nil
}

// checkTargets checks the dialplan targets, the tries and the PIN lengths.
func (c *Config) checkTargets() error {
	for _, t := range []struct{ name, value string }{{"AGENT_TRANSFER", c.AgentTransfer}, {"DRAIN_FALLBACK", c.DrainFallback}} {
		if t.value != "" && flows.ParseTarget(t.value) == nil {
			return problem(t.name, "must be context,extension,priority with a priority of 1 or more")
		}
	}
	if c.MaxTries < 1 || c.MaxTries > 9 {
		return problem("MAX_TRIES", "must be 1 to 9")
	}
	if c.PINMinLength < 4 || c.PINMaxLength > 12 || c.PINMinLength > c.PINMaxLength {
		return problem("PIN_MIN_LENGTH", "PIN lengths must satisfy 4 <= min <= max <= 12")
	}
	return nil
}

// checkDurations checks every duration is positive.
func (c *Config) checkDurations() error {
	for _, d := range []struct {
		name  string
		value time.Duration
	}{
		{"ARI_TIMEOUT", c.ARITimeout}, {"FIRST_DIGIT_TIMEOUT", c.FirstDigitTimeout}, {"INTER_DIGIT_TIMEOUT", c.InterDigitTimeout},
		{"CALL_TIMEOUT", c.CallTimeout}, {"DRAIN_TIMEOUT", c.DrainTimeout}, {"HOST_WAIT_ANNOUNCE", c.HostWaitAnnounce},
		{"NI_TIMEOUT", c.NITimeout}, {"KEYSECURE_TIMEOUT", c.KeySecureTimeout}, {"KEYSECURE_LOOKBACK", c.KeySecureLookback},
		{"LIMIT_CARD_WINDOW", c.LimitCardWindow}, {"LIMIT_CARD_LOCKOUT", c.LimitCardLockout},
		{"LIMIT_CALLER_WINDOW", c.LimitCallerWindow}, {"LIMIT_CALLER_LOCKOUT", c.LimitCallerLockout}, {"LIMIT_LINE_WINDOW", c.LimitLineWindow},
	} {
		if d.value <= 0 {
			return problem(d.name, "must be a positive duration")
		}
	}
	return nil
}

// checkCardHost checks the card host's PIN block, encryption, fields and codes.
func (c *Config) checkCardHost() error {
	if _, err := pinblock.ParseFormat(c.NIPINBlockFormat); err != nil {
		return problem("NI_PINBLOCK_FORMAT", "must be ISO0, ISO1, ISO3 or ISO4")
	}
	switch c.NIEncryptionMethod {
	case cardhost.MethodSymmetric, cardhost.MethodAsymmetric:
	default:
		return problem("NI_ENCRYPTION_METHOD", "must be SYMMETRIC_ENC or ASYNC_ENC")
	}
	if f, _ := pinblock.ParseFormat(c.NIPINBlockFormat); f == pinblock.ISO4 && c.NIEncryptionMethod == cardhost.MethodSymmetric {
		return problem("NI_PINBLOCK_FORMAT", "ISO4 gives 32 hex characters, over the card host's documented 20; agree a longer field with the bank first")
	}
	if len(c.NIBankID) > cardhost.MaxBankID {
		return problem("NI_BANK_ID", "at most 4 characters")
	}
	for _, u := range []struct{ name, value string }{{"NI_URL", c.NIURL}, {"NI_TOKEN_URL", c.NITokenURL}, {"KEYSECURE_URL", c.KeySecureURL}} {
		if u.value == "" {
			continue
		}
		if err := hosturl.Check(u.value, c.AllowInsecureHosts); err != nil {
			return problem(u.name, err.Error())
		}
	}
	if f, _ := pinblock.ParseFormat(c.NIPINBlockFormat); f == pinblock.ISO4 && c.NIEncryptionMethod == cardhost.MethodAsymmetric {
		return problem("NI_PINBLOCK_FORMAT", "ISO4 is an AES format and cannot go under RSA (ASYNC_ENC); use ISO0, ISO1 or ISO3")
	}
	switch c.NIRSAMGF1Hash {
	case "", pinblock.MGF1SHA1, pinblock.MGF1SHA256:
	default:
		return problem("NI_RSA_MGF1_HASH", "must be SHA1 or SHA256, or unset")
	}
	if c.NIRSAMGF1Hash != "" && c.NIRSAPadding == pinblock.PaddingPKCS1v15 {
		return problem("NI_RSA_MGF1_HASH", "goes with OAEP padding only")
	}
	if len(c.NISrcApplication) == 0 || len(c.NISrcApplication) > cardhost.MaxApplication {
		return problem("NI_SRC_APPLICATION", "1 to 10 characters")
	}
	if len(c.NITargetApp) == 0 || len(c.NITargetApp) > cardhost.MaxApplication {
		return problem("NI_TARGET_APPLICATION", "1 to 10 characters")
	}
	if _, err := c.niTimestampLayout(); err != nil {
		return err
	}
	seenCode := map[string]string{}
	for _, l := range []struct {
		name  string
		codes []string
	}{
		{"NI_CODES_WRONG_PIN", c.NICodesWrongPIN}, {"NI_CODES_EXPIRY_MISMATCH", c.NICodesExpiry}, {"NI_CODES_UNKNOWN_CARD", c.NICodesUnknown},
		{"NI_CODES_NOT_ELIGIBLE", c.NICodesNotEligible}, {"NI_CODES_NO_PIN", c.NICodesNoPIN}, {"NI_CODES_WEAK_PIN", c.NICodesWeakPIN},
	} {
		for _, code := range l.codes {
			if other, dup := seenCode[code]; dup {
				return problem(l.name, "code "+strconv.Quote(code)+" is also in IVRPIN_"+other+": a refusal must have one reason")
			}
			seenCode[code] = l.name
		}
	}
	for bin, seq := range c.NISequenceByBIN {
		if !allDigits(bin) || len(bin) > 11 || len(seq) != 2 || !allDigits(seq) {
			return problem("NI_SEQUENCE_BY_BIN", "must be BIN:NN pairs (1 to 11 digits : two digits)")
		}
	}
	return nil
}

// checkKeySecure checks KeySecure's bounds.
func (c *Config) checkKeySecure() error {
	if c.KeySecureSkew <= 0 || c.KeySecureSkew > 30*time.Second {
		return problem("KEYSECURE_CLOCK_SKEW", "must be more than 0s and at most 30s")
	}
	if c.KeySecureMaxList < 1 || c.KeySecureMaxList > 1000 {
		return problem("KEYSECURE_MAX_LIST_REQUESTS", "must be 1 to 1000")
	}
	if c.KeySecureMaxCands < 1 || c.KeySecureMaxCands > 20 {
		return problem("KEYSECURE_MAX_CANDIDATES", "must be 1 to 20")
	}
	return nil
}

// checkHosts checks what each configured host needs besides its URL.
func (c *Config) checkHosts() error {
	if c.NIURL != "" {
		if !c.TokenKey() || c.NIEncryptionMethod == cardhost.MethodAsymmetric {
			if _, err := c.Encrypter(nil); err != nil {
				return err
			}
		}
		if c.NIBankID == "" {
			return problem("NI_BANK_ID", "required when NI_URL is set")
		}
		if c.NITokenURL != "" && (c.NIClientID == "" || c.NIClientSecret == "") {
			return problem("NI_TOKEN_URL", "needs NI_CLIENT_ID and NI_CLIENT_SECRET")
		}
		if (c.NITLSCert == "") != (c.NITLSKey == "") {
			return problem("NI_TLS_CERT", "NI_TLS_CERT and NI_TLS_KEY go together")
		}
	}
	if c.KeySecureURL != "" {
		if c.KeySecureAPIKey == "" {
			return problem("KEYSECURE_API_KEY", "required when KEYSECURE_URL is set")
		}
		if _, err := keysecure.SecretKey(c.KeySecureAPISecret); err != nil {
			return problem("KEYSECURE_API_SECRET", "must be 16, 24 or 32 bytes")
		}
	}
	return nil
}

// checkLimits checks the attempt limits and their key.
func (c *Config) checkLimits() error {
	if c.LimitCardMax < 0 {
		return problem("LIMIT_CARD_MAX", "cannot be negative")
	}
	if c.LimitLineFailedMax < 0 {
		return problem("LIMIT_LINE_FAILED_MAX", "cannot be negative")
	}
	if c.LimitCallerMax < 0 {
		return problem("LIMIT_CALLER_MAX", "cannot be negative")
	}
	if c.LimitWithheldMax < 1 || (c.LimitCallerMax > 0 && c.LimitWithheldMax > c.LimitCallerMax) {
		return problem("LIMIT_WITHHELD_MAX", "must be 1 to LIMIT_CALLER_MAX: calls without a caller id share one bucket")
	}
	if c.RedisURL != "" && c.LimitKey == "" {
		return problem("LIMIT_KEY", "required with REDIS_URL: every instance must hash cards the same way")
	}
	if len(c.RedisSentinels) > 0 {
		switch {
		case c.RedisURL != "":
			return problem("REDIS_SENTINELS", "give REDIS_URL or REDIS_SENTINELS, not both")
		case c.RedisMaster == "":
			return problem("REDIS_MASTER", "required with REDIS_SENTINELS: the name the sentinels monitor")
		case c.LimitKey == "":
			return problem("LIMIT_KEY", "required with REDIS_SENTINELS: every instance must hash cards the same way")
		}
		for _, a := range c.RedisSentinels {
			if _, _, err := net.SplitHostPort(a); err != nil {
				return problem("REDIS_SENTINELS", "must be host:port addresses, comma separated")
			}
		}
	}
	if c.RedisMinReplicas < -1 || c.RedisWaitTimeout <= 0 {
		return problem("REDIS_MIN_REPLICAS", "must be -1 (automatic), 0 or more, with a positive REDIS_WAIT_TIMEOUT")
	}
	if c.LimitKey != "" {
		if k, err := hex.DecodeString(c.LimitKey); err != nil || len(k) < 16 {
			return problem("LIMIT_KEY", "must be at least 16 bytes of hex")
		}
	}
	return nil
}

// checkLogging checks the log level and format.
func (c *Config) checkLogging() error {
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		return problem("LOG_LEVEL", "must be debug, info, warn or error")
	}
	switch c.LogFormat {
	case "auto", "json", "text":
	default:
		return problem("LOG_FORMAT", "must be json, text or auto")
	}
	return nil
}

// clearARILink is an ARI link that would travel in clear beyond loopback.
type clearARILink struct{ name, fix string }

// clearARILinks lists them: an inbound URL that is not https/wss to a host
// that is not loopback, a listener off loopback without TLS.
func (c *Config) clearARILinks() []clearARILink {
	var out []clearARILink
	if c.ARIListen == "" {
		for _, u := range []struct{ name, value, secure string }{{"ARI_URL", c.ARIURL, "https"}, {"ARI_WS_URL", c.ARIWSURL, "wss"}} {
			if p, err := url.Parse(u.value); u.value != "" && err == nil && p.Scheme != u.secure && !hosturl.IsLoopback(p.Hostname()) {
				out = append(out, clearARILink{u.name, "is in clear to a host that is not loopback: it carries every digit a caller types; use " +
					u.secure + " (Asterisk's http.conf tlsenable)"})
			}
		}
	} else if c.ARIListenTLSCert == "" {
		if host, _, err := net.SplitHostPort(c.ARIListen); err == nil && !hosturl.IsLoopback(host) {
			out = append(out, clearARILink{"ARI_LISTEN", "listens beyond loopback without TLS: set ARI_LISTEN_TLS_CERT and ARI_LISTEN_TLS_KEY (Asterisk dials wss with tls_enabled = yes)"})
		}
	}
	return out
}

// validateARILinks refuses an ARI link that would carry callers' digits in
// clear to another machine, unless a lab allows it with
// IVRPIN_ALLOW_INSECURE_HOSTS (serve then warns); and checks the listener's
// bounds.
func (c *Config) validateARILinks() error {
	if links := c.clearARILinks(); len(links) > 0 && !c.AllowInsecureHosts {
		return problem(links[0].name, links[0].fix+", or IVRPIN_ALLOW_INSECURE_HOSTS=true in a lab")
	}
	if c.ARITLSCA != "" {
		if _, err := os.Stat(c.ARITLSCA); err != nil {
			return problem("ARI_TLS_CA", "cannot read "+c.ARITLSCA)
		}
	}
	if c.ARIListenMaxConnections < 1 {
		return problem("ARI_LISTEN_MAX_CONNECTIONS", "must be at least 1")
	}
	if c.ARIListenMaxCallsPerSocket < 1 {
		return problem("ARI_LISTEN_MAX_CALLS_PER_SOCKET", "must be at least 1")
	}
	if c.ARIListenMaxFailures < 1 {
		return problem("ARI_LISTEN_MAX_FAILURES", "must be at least 1")
	}
	for _, p := range c.ARIListenTrustedProxies {
		if _, _, err := net.ParseCIDR(p); err != nil && net.ParseIP(p) == nil {
			return problem("ARI_LISTEN_TRUSTED_PROXIES", "must be addresses or CIDRs, comma separated")
		}
	}
	return nil
}

// InsecureARILinks lists the ARI links that IVRPIN_ALLOW_INSECURE_HOSTS lets
// travel in clear beyond loopback (serve warns of each).
func (c *Config) InsecureARILinks() []string {
	var out []string
	for _, l := range c.clearARILinks() {
		out = append(out, Prefix+"_"+l.name)
	}
	return out
}

// ValidateServe checks what serve needs beyond Validate: the card host, and
// the HMAC key of the attempt limits, which is never kept beside the hashes
// it makes (the console and tests make a fresh one per run).
func (c *Config) ValidateServe() error {
	if p := c.serveProblems(); len(p) > 0 {
		return p[0]
	}
	return nil
}

// serveProblems are ValidateServe's problems, all of them.
func (c *Config) serveProblems() []error {
	var out []error
	if c.NIURL == "" {
		out = append(out, problem("NI_URL", "required: serve needs the card host (try `ivr-pin console` for a demo)"))
		// What NI_URL brings with it (checkHosts checks them once it is set).
		if c.NIBankID == "" {
			out = append(out, problem("NI_BANK_ID", "required: the card host's bank_id"))
		}
		if !c.TokenKey() && !c.HasSoftwareZPK() {
			out = append(out, problem("NI_ZPK_LABEL", "required: the zone PIN key, in a PKCS#11 token (NI_ZPK_LABEL with PKCS11_MODULE, PKCS11_TOKEN_LABEL, PKCS11_PIN_FILE), or NI_ZPK_FILE in a lab"))
		}
	}
	if c.LimitKey == "" {
		out = append(out, problem("LIMIT_KEY", "required: the key that hashes card numbers and caller ids for the limits is never stored beside the hashes; make one with `openssl rand -hex 32` and give it as LIMIT_KEY_FILE (the same on every instance)"))
	}
	return out
}

// validateKeyCustody checks where the zone PIN key is: a software key, or a
// key in a PKCS#11 token with everything needed to reach it.
func (c *Config) validateKeyCustody() error {
	if c.TokenKey() && c.HasSoftwareZPK() {
		return problem("NI_ZPK_LABEL", "IVRPIN_NI_ZPK (or _FILE) is set too: the zone PIN key is either in the token or in software, never both")
	}
	if c.NIZPKKCV != "" {
		if len(c.NIZPKKCV) != 6 || !isHex(c.NIZPKKCV) {
			return problem("NI_ZPK_KCV", "must be the key's 6 hex digit check value")
		}
		if k := c.zpk; k != nil && !strings.EqualFold(k.KCV(), c.NIZPKKCV) {
			return problem("NI_ZPK_KCV", "does not match the key: its KCV is "+k.KCV())
		}
	}
	if c.PKCS11Sessions < 1 || c.PKCS11Sessions > 64 {
		return problem("PKCS11_SESSIONS", "must be 1 to 64")
	}
	if c.PKCS11Module != "" {
		if st, err := os.Stat(c.PKCS11Module); err != nil || st.IsDir() {
			return problem("PKCS11_MODULE", "no such file: "+c.PKCS11Module)
		}
	}
	if !c.TokenKey() {
		return nil
	}
	for _, need := range []struct{ name, value string }{
		{"PKCS11_MODULE", c.PKCS11Module}, {"PKCS11_TOKEN_LABEL", c.PKCS11TokenLabel}, {"PKCS11_PIN", c.PKCS11PIN},
	} {
		if need.value == "" {
			return problem(need.name, "required with NI_ZPK_LABEL: the zone PIN key is in a PKCS#11 token")
		}
	}
	return nil
}

// ZPK parses the software zone PIN key for the configured format (once: the
// cipher is kept, the hex is not).
func (c *Config) ZPK() (*secret.Key, error) {
	if c.zpk != nil || c.zpkErr != nil {
		return c.zpk, c.zpkErr
	}
	if c.NIZPK == "" {
		return nil, problem("NI_ZPK", "required for SYMMETRIC_ENC (or NI_ZPK_LABEL, a key in a PKCS#11 token)")
	}
	b := []byte(c.NIZPK)
	defer secret.Zero(b)
	k, err := parseZPK(c.ZPKAlgorithm(), b)
	if err != nil {
		c.zpkErr = problem("NI_ZPK", err.Error())
		return nil, c.zpkErr
	}
	c.zpk = k
	return k, nil
}

// Encrypter builds the card host's PIN block encrypter. tokenKey is the
// zone PIN key found in the PKCS#11 token (NI_ZPK_LABEL); nil means the
// software key.
func (c *Config) Encrypter(tokenKey pinblock.Cipher) (pinblock.Encrypter, error) {
	f, err := pinblock.ParseFormat(c.NIPINBlockFormat)
	if err != nil {
		return nil, problem("NI_PINBLOCK_FORMAT", err.Error())
	}
	if c.NIEncryptionMethod == cardhost.MethodAsymmetric {
		if c.NICertFile == "" {
			return nil, problem("NI_CERT_FILE", "required for ASYNC_ENC")
		}
		pub, err := pinblock.LoadCertificate(c.NICertFile)
		if err != nil {
			return nil, problem("NI_CERT_FILE", err.Error())
		}
		switch c.NIRSAPadding {
		case pinblock.PaddingOAEPSHA256, pinblock.PaddingOAEPSHA1, pinblock.PaddingPKCS1v15:
		default:
			return nil, problem("NI_RSA_PADDING", "must be OAEP-SHA256, OAEP-SHA1 or PKCS1v15")
		}
		switch c.NIRSAEncoding {
		case pinblock.EncodingHex, pinblock.EncodingBase64:
		default:
			return nil, problem("NI_RSA_ENCODING", "must be hex or base64")
		}
		r, err := pinblock.NewRSAEncrypter(pub, f, c.NIRSAPadding, c.NIRSAMGF1Hash, c.NIRSAEncoding)
		if err != nil {
			return nil, problem("NI_RSA_MGF1_HASH", err.Error())
		}
		return r, nil
	}
	if tokenKey != nil {
		z, err := pinblock.NewZPK(tokenKey, f)
		if err != nil {
			return nil, problem("NI_ZPK_LABEL", err.Error())
		}
		return z, nil
	}
	if c.TokenKey() {
		return nil, problem("NI_ZPK_LABEL", "the key in the token is not open")
	}
	k, err := c.ZPK()
	if err != nil {
		return nil, err
	}
	z, err := pinblock.NewZPK(k, f)
	if err != nil {
		return nil, problem("NI_ZPK", err.Error())
	}
	return z, nil
}

// CardHost is the card-host client configuration (NIURL must be set);
// tokenKey as for Encrypter.
func (c *Config) CardHost(tokenKey pinblock.Cipher) (cardhost.Config, error) {
	enc, err := c.Encrypter(tokenKey)
	if err != nil {
		return cardhost.Config{}, err
	}
	layout, err := c.niTimestampLayout()
	if err != nil {
		return cardhost.Config{}, err
	}
	return cardhost.Config{
		URL: c.NIURL, BankID: c.NIBankID, EncryptionMethod: c.NIEncryptionMethod,
		EncryptionKeyID: c.NIKeyID, EncryptionKeyType: c.NIKeyType, Timeout: c.NITimeout, Encrypter: enc,
		Codes: cardhost.Codes{WrongPIN: c.NICodesWrongPIN, ExpiryMismatch: c.NICodesExpiry, UnknownCard: c.NICodesUnknown,
			NotEligible: c.NICodesNotEligible, NoPINYet: c.NICodesNoPIN, WeakPIN: c.NICodesWeakPIN},
		TokenURL: c.NITokenURL, ClientID: c.NIClientID, ClientSecret: c.NIClientSecret,
		TLSCert: c.NITLSCert, TLSKey: c.NITLSKey, TLSCA: c.NITLSCA,
		SrcApplication: c.NISrcApplication, TargetApplication: c.NITargetApp, TimestampLayout: layout,
		SequenceByBIN: c.NISequenceByBIN, AllowInsecure: c.AllowInsecureHosts,
	}, nil
}

// niTimestampLayout is the card host header's timestamp form.
func (c *Config) niTimestampLayout() (string, error) {
	switch c.NITimestampFormat {
	case "iso8601":
		return cardhost.TimestampLayout, nil
	case "legacy":
		return cardhost.LegacyTimestampLayout, nil
	}
	return "", problem("NI_TIMESTAMP_FORMAT", "must be iso8601 or legacy")
}

func isHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i] | 0x20
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// KeySecure is the KeySecure client configuration (KeySecureURL must be set).
func (c *Config) KeySecure() (keysecure.Config, error) {
	k, err := keysecure.SecretKey(c.KeySecureAPISecret)
	if err != nil {
		return keysecure.Config{}, problem("KEYSECURE_API_SECRET", "must be 16, 24 or 32 bytes")
	}
	return keysecure.Config{BaseURL: c.KeySecureURL, APIKey: c.KeySecureAPIKey, APISecret: k,
		Timeout: c.KeySecureTimeout, Language: c.KeySecureLanguage, Timezone: c.KeySecureTimezone, Lookback: c.KeySecureLookback,
		ClockSkew: c.KeySecureSkew, MaxListRequests: c.KeySecureMaxList, MaxCandidates: c.KeySecureMaxCands,
		AllowInsecure: c.AllowInsecureHosts}, nil
}

// WebsocketURL is ARI_WS_URL or the events URL derived from ARI_URL.
func (c *Config) WebsocketURL() string {
	if c.ARIWSURL != "" {
		return c.ARIWSURL
	}
	u, _ := url.Parse(c.ARIURL)
	if u.Scheme == "https" {
		u.Scheme = "wss"
	} else {
		u.Scheme = "ws"
	}
	u.Path = strings.TrimRight(u.Path, "/") + "/events"
	return u.String()
}

// Print writes every setting as NAME=value, one a line, sorted, with secrets
// shown as <set>/<unset> and keys as their KCV.
func (c *Config) Print(w io.Writer) {
	lines := []string{}
	v := reflect.ValueOf(c).Elem()
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name := Prefix + "_" + f.Tag.Get("envconfig")
		val := fmt.Sprint(v.Field(i).Interface())
		switch x := v.Field(i).Interface().(type) {
		case []string:
			val = strings.Join(x, ",")
		case map[string]string:
			pairs := make([]string, 0, len(x))
			for k, v := range x {
				pairs = append(pairs, k+":"+v)
			}
			sort.Strings(pairs)
			val = strings.Join(pairs, ",")
		}
		switch f.Tag.Get("secret") {
		case "true":
			val = setOrUnset(val)
			if f.Name == "NIZPK" && c.HasSoftwareZPK() {
				if k, err := c.ZPK(); err == nil {
					val = "<set, KCV " + k.KCV() + ">"
				}
			}
			if val != "<unset>" && c.fromFile(name) {
				val = strings.Replace(val, "<set", "<set from "+name+FileSuffix, 1)
			}
			if f.Name == "KeySecureAPISecret" && c.KeySecureAPISecret != "" {
				if k, err := keysecure.SecretKey(c.KeySecureAPISecret); err == nil {
					val = "<set, KCV " + k.KCV() + ">"
				}
			}
		case "url":
			val = RedactURL(val)
		}
		lines = append(lines, name+"="+val)
	}
	sort.Strings(lines)
	for _, l := range lines {
		fmt.Fprintln(w, l)
	}
}

func setOrUnset(v string) string {
	if v == "" {
		return "<unset>"
	}
	return "<set>"
}

// RedactURL shows a URL with every secret it may carry (a password in the
// user info, any query value: tokens and keys travel there) as <set>. A
// value that does not parse is shown only as <set>/<unset>.
func RedactURL(v string) string {
	u, err := url.Parse(v)
	if err != nil || v == "" || u.Host == "" {
		return setOrUnset(v)
	}
	out := u.Scheme + "://"
	if u.User != nil {
		out += u.User.Username()
		if _, has := u.User.Password(); has {
			out += ":<set>"
		}
		out += "@"
	}
	out += u.Host + u.EscapedPath()
	if u.RawQuery != "" {
		q := u.Query()
		keys := make([]string, 0, len(q))
		for k := range q {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for i, k := range keys {
			sep := "&"
			if i == 0 {
				sep = "?"
			}
			out += sep + url.QueryEscape(k) + "=<set>"
		}
	}
	return out
}

// Describe lists each setting's variable, default and description, for the
// README's configuration table (`ivr-pin config --table`).
func Describe(w io.Writer) {
	t := reflect.TypeOf(Config{})
	fmt.Fprintln(w, "| Variable | Default | Meaning |")
	fmt.Fprintln(w, "|---|---|---|")
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		def := f.Tag.Get("default")
		if def == "" {
			def = "(unset)"
		}
		fmt.Fprintf(w, "| `%s_%s` | `%s` | %s |\n", Prefix, f.Tag.Get("envconfig"), def, f.Tag.Get("desc"))
	}
}

// LimitSettings returns the attempt limiter's settings.
func (c *Config) LimitSettings() limits.Settings {
	return limits.Settings{
		Card:      limits.Rule{Max: c.LimitCardMax, Window: c.LimitCardWindow, Lockout: c.LimitCardLockout},
		Caller:    limits.Rule{Max: c.LimitCallerMax, Window: c.LimitCallerWindow, Lockout: c.LimitCallerLockout},
		Withheld:  limits.Rule{Max: c.LimitWithheldMax, Window: c.LimitCallerWindow, Lockout: c.LimitCallerLockout},
		StorePath: c.LimitStore, RedisURL: c.RedisURL, KeyHex: c.LimitKey, RedisPassword: c.RedisPassword,
		RedisSentinels: c.RedisSentinels, RedisMaster: c.RedisMaster, RedisSentinelPassword: c.RedisSentinelPassword,
		RedisMinReplicas: c.redisMinReplicas(), RedisWaitTimeout: c.RedisWaitTimeout,
	}
}

// Prompts is the prompt catalogue: the shipped words with PROMPT_WORDS's
// files laid over them.
func (c *Config) Prompts() (*prompts.Catalogue, error) { return prompts.Load(c.PromptWords) }

// redisMinReplicas resolves REDIS_MIN_REPLICAS's automatic -1: a limit
// write must be on one replica with Sentinel (so a failover keeps it), and
// waits for none on a single Redis.
func (c *Config) redisMinReplicas() int {
	if c.RedisMinReplicas >= 0 {
		return c.RedisMinReplicas
	}
	if len(c.RedisSentinels) > 0 {
		return 1
	}
	return 0
}

// SharedStore reports whether the attempt store is Redis (a URL or
// Sentinel), shared by every instance.
func (c *Config) SharedStore() bool { return c.RedisURL != "" || len(c.RedisSentinels) > 0 }
