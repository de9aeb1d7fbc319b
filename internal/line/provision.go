package line

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"

	"github.com/sirupsen/logrus"

	"github.com/ivr-pin/ivr-pin/internal/audit"
	"github.com/ivr-pin/ivr-pin/internal/config"
	"github.com/ivr-pin/ivr-pin/internal/limits"
	"github.com/ivr-pin/ivr-pin/ivr"
	"github.com/ivr-pin/ivr-pin/pinsvc/hsm"
	"github.com/ivr-pin/ivr-pin/pinsvc/pinblock"
)

// Step is one part of what the line opens before it takes a call.
type Step uint8

// The steps, in the order Provision takes them.
const (
	// KeyStep opens the zone PIN key: in its PKCS#11 token, found by label
	// and pinned by its check value; or the configuration's software key.
	KeyStep Step = 1 << iota
	// StoreStep opens the attempt store (bbolt or Redis) and the limiter.
	StoreStep
	// AuditStep opens the audit file (when one is configured).
	AuditStep
	// ListenStep checks, without keeping them, what serve will listen on:
	// the metrics address and, outbound, the ARI listener's address and
	// TLS pair (serve's own listeners then take them).
	ListenStep
	// AsteriskStep asks Asterisk's ARI, inbound, for its info with the
	// configured credentials (ivr.Probe, as serve's transport does).
	AsteriskStep

	// ServeSteps are what serve opens before it takes a call.
	ServeSteps = KeyStep | StoreStep | AuditStep
	// CheckSteps are what `ivr-pin check` opens and closes: serve's, and
	// what serve meets as it starts.
	CheckSteps = ServeSteps | ListenStep | AsteriskStep
)

// Provisioned is what Provision opened. Close releases it (a Line built on
// it does so itself).
type Provisioned struct {
	// Token holds the zone PIN key when it is in a token (nil: a software
	// key, RSA, or a simulator's key).
	Token *hsm.Token
	// ZPK is the zone PIN key the card host's PIN blocks are made under:
	// the token's, or the configuration's software key (nil for ASYNC_ENC
	// or when KeyStep did not run).
	ZPK pinblock.Cipher
	// NextZPK is the next key found in the token (a rotation:
	// IVRPIN_NI_ZPK_NEXT_LABEL), pinned by its KCV like the current one.
	NextZPK pinblock.Cipher
	// KeySecureKey is KeySecure's apiSecret in the token
	// (IVRPIN_KEYSECURE_KEY_LABEL; nil: the software secret).
	KeySecureKey *hsm.Key
	// AuditKey is the audit chain's HMAC key in the token
	// (IVRPIN_AUDIT_KEY_LABEL; nil: a key file, or none).
	AuditKey *hsm.Key
	// Limiter counts attempts and keeps first-setup marks.
	Limiter *limits.Limiter
	// AuditFile takes the audit records (nil: no file is configured, or
	// AuditStep did not run).
	AuditFile *audit.File
	// Waiting is why Asterisk did not answer AsteriskStep's probe ("" when
	// it did): serve waits for it, so it is not a problem.
	Waiting string
	// LabToken names the token when it is a software one (SoftHSM2): its
	// manufacturer and model. serve refuses it outside IVRPIN_LAB
	// (LabTokenProblem); the lab tools use it.
	LabToken string

	closers []func()
}

// Close releases what Provision opened, last opened first.
func (p *Provisioned) Close() {
	for i := len(p.closers) - 1; i >= 0; i-- {
		p.closers[i]()
	}
	p.closers = nil
}

// Provision opens what the configuration names for the steps asked, each
// failure a *config.Problem naming the setting to fix. Serve builds the
// line on it (Build), `ivr-pin check` runs it and closes, and `ivr-pin
// config` runs its KeyStep, so the three cannot drift apart. Every step
// runs whatever another's fate: the error joins every problem, and what was
// opened is closed on error (the Provisioned returned still says Waiting).
func Provision(ctx context.Context, cfg *config.Config, steps Step, log *logrus.Entry) (*Provisioned, error) {
	if log == nil {
		log = logrus.NewEntry(logrus.StandardLogger())
	}
	p := &Provisioned{}
	var problems []error
	fail := func(v string, err error) {
		var pr *config.Problem
		if !errors.As(err, &pr) {
			err = &config.Problem{Var: v, Reason: err.Error()}
		}
		problems = append(problems, err)
	}
	if steps&KeyStep != 0 {
		if err := p.openKey(cfg, log); err != nil {
			fail("NI_ZPK_LABEL", err)
		}
	}
	if steps&StoreStep != 0 {
		if err := p.openStore(ctx, cfg, log); err != nil {
			fail(cfg.StoreSetting(), err)
		}
	}
	if steps&AuditStep != 0 && cfg.AuditFile != "" {
		key, err := p.auditKey(cfg)
		var f *audit.File
		if err == nil {
			f, err = audit.OpenFile(cfg.AuditFile, key)
		}
		if err != nil {
			fail("AUDIT_FILE", err)
		} else {
			p.AuditFile = f
			p.closers = append(p.closers, func() { _ = f.Close() })
		}
	}
	if steps&ListenStep != 0 {
		problems = append(problems, probeListeners(cfg)...)
	}
	if steps&AsteriskStep != 0 && !cfg.Outbound() {
		if err := p.probeAsterisk(ctx, cfg); err != nil {
			problems = append(problems, err)
		}
	}
	if len(problems) > 0 {
		p.Close()
		return p, errors.Join(problems...)
	}
	return p, nil
}

// openKey finds the zone PIN key: in its token by label, refusing a key the
// token would hand out and one whose KCV is not IVRPIN_NI_ZPK_KCV; or the
// software key of a lab.
func (p *Provisioned) openKey(cfg *config.Config, log *logrus.Entry) error {
	if !cfg.TokenKey() && cfg.HasSoftwareZPK() {
		k, err := cfg.ZPK()
		if err != nil {
			return err
		}
		p.ZPK = k
	}
	if !cfg.TokenKey() && cfg.KeySecureKeyLabel == "" && cfg.AuditKeyLabel == "" {
		return nil
	}
	tok, err := OpenToken(cfg)
	if err != nil {
		return err
	}
	p.Token = tok
	p.closers = append(p.closers, tok.Close)
	if soft, made := tok.Software(); soft {
		p.LabToken = made
	}
	if cfg.KeySecureKeyLabel != "" {
		ks, err := tok.KeySecureKey(cfg.KeySecureKeyLabel, cfg.KeySecureKeyKCV)
		if err != nil {
			return &config.Problem{Var: "KEYSECURE_KEY_LABEL", Reason: err.Error()}
		}
		p.KeySecureKey = ks
		log.WithFields(logrus.Fields{"key": ks.Describe(), "kcv": ks.KCV()}).Info("KeySecure's apiSecret found in the PKCS#11 token")
	}
	if cfg.AuditKeyLabel != "" {
		ak, err := tok.AuditKey(cfg.AuditKeyLabel, cfg.AuditKeyKCV)
		if err != nil {
			return &config.Problem{Var: "AUDIT_KEY_LABEL", Reason: err.Error()}
		}
		p.AuditKey = ak
	}
	if !cfg.TokenKey() {
		return nil
	}
	k, err := tok.Key(cfg.NIZPKLabel, cfg.ZPKAlgorithm(), cfg.NIZPKKCV)
	if err != nil {
		return &config.Problem{Var: "NI_ZPK_LABEL", Reason: err.Error()}
	}
	p.ZPK = k
	if cfg.NIZPKNextLabel != "" {
		next, err := tok.Key(cfg.NIZPKNextLabel, cfg.ZPKAlgorithm(), cfg.NIZPKNextKCV)
		if err != nil {
			return &config.Problem{Var: "NI_ZPK_NEXT_LABEL", Reason: err.Error()}
		}
		p.NextZPK = next
		log.WithFields(logrus.Fields{"key": next.Describe(), "kcv": next.KCV(), "key_id": cfg.NINextKeyID, "from": cfg.NIZPKNextFrom}).
			Info("the next zone PIN key found in the PKCS#11 token: new calls use it from its instant")
	}
	log.WithFields(logrus.Fields{"token": tok.Describe(), "key": k.Describe(), "kcv": k.KCV()}).Info("zone PIN key found in the PKCS#11 token")
	return nil
}

// LabTokenProblem is serve's refusal of a software token outside a lab
// (nil when the token is an HSM's, or IVRPIN_LAB is set).
func (p *Provisioned) LabTokenProblem(cfg *config.Config) error {
	if p.LabToken == "" || cfg.Lab {
		return nil
	}
	return &config.Problem{Var: "PKCS11_MODULE", Reason: "the token is a software one (" + p.LabToken +
		"): its keys are files on this machine's disk, fine for a lab (set IVRPIN_LAB=true there), never for a production zone PIN key, which lives in an HSM"}
}

// OpenToken opens the PKCS#11 token the configuration names: the one place
// the line, check, config and the key ceremony open it. A failure names the
// setting to fix and, for SoftHSM2, the files it must be able to read.
func OpenToken(cfg *config.Config) (*hsm.Token, error) {
	tok, err := hsm.Open(cfg.HSM())
	if err == nil {
		return tok, nil
	}
	hint := softHSMHint(cfg.PKCS11Module)
	switch {
	case errors.Is(err, hsm.ErrModule):
		return nil, &config.Problem{Var: "PKCS11_MODULE", Reason: err.Error() + hint}
	case errors.Is(err, hsm.ErrNoToken):
		return nil, &config.Problem{Var: "PKCS11_TOKEN_LABEL", Reason: err.Error() + hint}
	case errors.Is(err, hsm.ErrPIN):
		return nil, &config.Problem{Var: cfg.GivenAs("PKCS11_PIN"), Reason: err.Error()}
	}
	return nil, &config.Problem{Var: "PKCS11_TOKEN_LABEL", Reason: err.Error()}
}

// softHSMHint says, for SoftHSM2's module, which files it reads: a token
// directory this user cannot read looks like a token that is not there,
// and a configuration file it cannot read like a module that fails.
func softHSMHint(module string) string {
	if !strings.Contains(strings.ToLower(filepath.Base(module)), "softhsm") {
		return ""
	}
	conf := os.Getenv("SOFTHSM2_CONF")
	from := "SOFTHSM2_CONF"
	if conf == "" {
		conf, from = "/etc/softhsm/softhsm2.conf", "the default; SOFTHSM2_CONF is unset"
	}
	dir := "(its directories.tokendir)"
	if b, err := os.ReadFile(conf); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, "="); ok && strings.TrimSpace(k) == "directories.tokendir" {
				dir = strings.TrimSpace(v)
			}
		}
	}
	return fmt.Sprintf("; SoftHSM2 reads its configuration %s (%s) and its token directory %s: both must be readable by this process's user (Debian's /etc/softhsm and /var/lib/softhsm belong to the softhsm group: add the service's user to it; docs/lab.md)", conf, from, dir)
}

// openStore opens the attempt store and its limiter.
func (p *Provisioned) openStore(ctx context.Context, cfg *config.Config, log *logrus.Entry) error {
	sc, err := cfg.StoreConfig()
	if err != nil {
		return err
	}
	sc.OnStoredKey = func() {
		log.Warn("the attempt store held an HMAC key of an earlier version beside its hashes; it is deleted and the store rewritten without it (counts made under it no longer match and expire with their windows)")
	}
	limiter, err := limits.Open(ctx, sc)
	if err != nil {
		return err
	}
	p.Limiter = limiter
	p.closers = append(p.closers, func() { _ = limiter.Store.Close() })
	return nil
}

// probeListeners checks that what serve listens on can be listened on: the
// metrics address and, outbound, the ARI listener with its TLS pair.
func probeListeners(cfg *config.Config) []error {
	var out []error
	if cfg.MetricsAddr != "" {
		if ln, err := net.Listen("tcp", cfg.MetricsAddr); err != nil {
			out = append(out, &config.Problem{Var: "METRICS_ADDR", Reason: "cannot listen: " + err.Error()})
		} else {
			ln.Close()
		}
	}
	if cfg.Outbound() {
		if err := ivr.ProbeListen(cfg.OutboundConfig()); err != nil {
			v := "ARI_LISTEN"
			if errors.Is(err, ivr.ErrTLSPair) {
				v = "ARI_LISTEN_TLS_CERT"
			}
			out = append(out, &config.Problem{Var: v, Reason: err.Error()})
		}
	}
	return out
}

// probeAsterisk asks Asterisk's ARI for its info with the configured
// credentials: refused credentials are a problem (serve stops on them); an
// Asterisk that does not answer is not (serve waits for it), and Waiting
// says why.
func (p *Provisioned) probeAsterisk(ctx context.Context, cfg *config.Config) error {
	ic, err := cfg.InboundConfig()
	if err != nil {
		return err
	}
	switch err := ivr.Probe(ctx, ic); {
	case err == nil:
	case errors.Is(err, ivr.ErrUnauthorized):
		return &config.Problem{Var: "ARI_PASSWORD", Reason: "Asterisk refused IVRPIN_ARI_USERNAME / IVRPIN_ARI_PASSWORD (ari.conf)"}
	default:
		p.Waiting = err.Error()
	}
	return nil
}

// auditKey is the key that chains the audit records: the token's (opened
// by KeyStep), a key file's, or none (nil: unchained, a lab).
func (p *Provisioned) auditKey(cfg *config.Config) (audit.MACKey, error) {
	if cfg.AuditKeyLabel != "" {
		if p.AuditKey == nil {
			return nil, errors.New("the audit key's token is not open")
		}
		return p.AuditKey, nil
	}
	raw, err := cfg.AuditKeyBytes()
	if err != nil {
		return nil, err
	}
	return audit.KeyOf(raw), nil
}
