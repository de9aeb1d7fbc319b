//go:build cgo

package hsm

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/miekg/pkcs11"

	"github.com/ivr-pin/ivr-pin/pinsvc/secret"
)

// sessionWait bounds how long an encryption waits for a free session: a
// token that is that busy is as good as down for a caller.
const sessionWait = 5 * time.Second

// Token is an open PKCS#11 token with the user logged in and a pool of
// sessions. It is safe for concurrent use.
type Token struct {
	cfg Config

	// mu guards the module state below: encryptions hold it for reading,
	// reopening holds it for writing, so nothing encrypts on a session
	// that is being replaced.
	mu     sync.RWMutex
	p      *pkcs11.Ctx
	slot   uint
	pool   chan pkcs11.SessionHandle
	login  pkcs11.SessionHandle // the session that logged in; kept open
	broken error                // why the token is not usable, or nil
	keys   []*Key
	// made is the token's manufacturer and model (C_GetTokenInfo).
	made string
}

// Key is a secret key in the token, used for one block at a time. It
// implements pinblock.Cipher.
type Key struct {
	tok     *Token
	label   string
	alg     secret.Algorithm
	typ     KeyType
	kcv     string
	purpose Purpose
	// handle is valid for the token's current module state; reopening
	// finds it again (guarded by tok.mu).
	handle pkcs11.ObjectHandle
}

// Open loads the module, finds the token by its label, logs in as the user
// and opens the session pool. Errors name what failed, never the PIN.
func Open(cfg Config) (*Token, error) {
	if cfg.Sessions <= 0 {
		cfg.Sessions = 8
	}
	if cfg.Module == "" || cfg.TokenLabel == "" {
		return nil, errors.New("a PKCS#11 module and a token label are needed")
	}
	p := pkcs11.New(cfg.Module)
	if p == nil {
		return nil, fmt.Errorf("%w %s cannot be loaded", ErrModule, cfg.Module)
	}
	t := &Token{cfg: cfg, p: p}
	if err := t.start(); err != nil {
		p.Destroy()
		return nil, err
	}
	return t, nil
}

// start initialises the module and opens the sessions (mu held or not yet
// shared).
func (t *Token) start() error {
	if err := t.p.Initialize(); err != nil && !isCode(err, pkcs11.CKR_CRYPTOKI_ALREADY_INITIALIZED) {
		return fmt.Errorf("%w %s did not start (C_Initialize: %w)", ErrModule, t.cfg.Module, err)
	}
	slots, err := t.p.GetSlotList(true)
	if err != nil {
		t.stop()
		return fmt.Errorf("PKCS#11 slot list: %w", err)
	}
	found := false
	var labels []string
	for _, s := range slots {
		ti, err := t.p.GetTokenInfo(s)
		label := strings.TrimRight(ti.Label, " \x00")
		if err == nil && label == t.cfg.TokenLabel {
			t.slot, found = s, true
			t.made = strings.TrimSpace(strings.TrimRight(ti.ManufacturerID, " \x00")) + " " + strings.TrimSpace(strings.TrimRight(ti.Model, " \x00"))
			break
		}
		if err == nil && label != "" {
			labels = append(labels, strconv.Quote(label))
		}
	}
	if !found {
		t.stop()
		have := "none"
		if len(labels) > 0 {
			have = strings.Join(labels, ", ")
		}
		return fmt.Errorf("%w: no token labelled %q among the module's (it has: %s)", ErrNoToken, t.cfg.TokenLabel, have)
	}
	t.login, err = t.p.OpenSession(t.slot, pkcs11.CKF_SERIAL_SESSION|pkcs11.CKF_RW_SESSION)
	if err != nil {
		t.stop()
		return fmt.Errorf("PKCS#11 open session: %w", err)
	}
	if err := t.p.Login(t.login, pkcs11.CKU_USER, t.cfg.PIN); err != nil && !isCode(err, pkcs11.CKR_USER_ALREADY_LOGGED_IN) {
		t.stop()
		if isCode(err, pkcs11.CKR_PIN_INCORRECT) || isCode(err, pkcs11.CKR_PIN_LEN_RANGE) {
			return fmt.Errorf("%w was refused (CKR_PIN_INCORRECT)", ErrPIN)
		}
		if isCode(err, pkcs11.CKR_PIN_LOCKED) {
			return fmt.Errorf("%w is locked (CKR_PIN_LOCKED): its security officer must reset it", ErrPIN)
		}
		return fmt.Errorf("PKCS#11 login: %w", err)
	}
	t.pool = make(chan pkcs11.SessionHandle, t.cfg.Sessions)
	for i := 0; i < t.cfg.Sessions; i++ {
		s, err := t.p.OpenSession(t.slot, pkcs11.CKF_SERIAL_SESSION)
		if err != nil {
			t.stop()
			return fmt.Errorf("PKCS#11 open session: %w", err)
		}
		t.pool <- s
	}
	return nil
}

// stop closes every session and finalises the module (its library stays
// loaded, for the next start).
func (t *Token) stop() {
	_ = t.p.CloseAllSessions(t.slot)
	_ = t.p.Finalize()
	t.pool = nil
}

// Close ends the sessions and unloads the module.
func (t *Token) Close() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.p == nil {
		return
	}
	t.stop()
	t.p.Destroy()
	t.p = nil
	if t.broken == nil {
		t.broken = errors.New("closed")
	}
}

// Describe names the token (never the PIN).
func (t *Token) Describe() string {
	return fmt.Sprintf("PKCS#11 token %q (%s)", t.cfg.TokenLabel, t.cfg.Module)
}

// Software reports whether the token is a software one (SoftHSM2): fine
// for a lab, not a place for a production key; made is its manufacturer
// and model as C_GetTokenInfo gives them.
func (t *Token) Software() (soft bool, made string) {
	return strings.Contains(strings.ToLower(t.made), "softhsm"), t.made
}

// Ready is nil while the token encrypts, else why it does not.
func (t *Token) Ready() error {
	t.mu.RLock()
	defer t.mu.RUnlock()
	if t.broken != nil {
		return fmt.Errorf("%w: %w", ErrNotReady, t.broken)
	}
	return nil
}

// Key finds the key labelled label for alg, refuses one the token would
// hand out in clear, and checks its KCV against wantKCV when that is set.
// The key is then kept: reopening the token finds it again and checks that
// its KCV is unchanged.
func (t *Token) Key(label string, alg secret.Algorithm, wantKCV string) (*Key, error) {
	return t.keyFor(label, alg, wantKCV, PINBlocks)
}

// KeySecureKey finds KeySecure's apiSecret, an AES key that encrypts and
// decrypts and does nothing else, pinned by its KCV as Key pins a zone PIN
// key.
func (t *Token) KeySecureKey(label, wantKCV string) (*Key, error) {
	return t.keyFor(label, secret.AES, wantKCV, KeySecureSecret)
}

// AuditKey finds the audit trail's chain key, an HMAC key that signs and
// does nothing else, pinned by its KCV (HMAC over a zero block) when one
// is given.
func (t *Token) AuditKey(label, wantKCV string) (*Key, error) {
	return t.keyFor(label, 0, wantKCV, AuditMAC)
}

// Sum is HMAC-SHA256 of the parts, joined, in the token (an audit key).
// Failures mark the token broken, as encryption's do.
func (k *Key) Sum(parts ...[]byte) ([]byte, error) {
	if k.purpose != AuditMAC {
		return nil, errors.New("this key does not sign")
	}
	var data []byte
	for _, p := range parts {
		data = append(data, p...)
	}
	mac := make([]byte, 32)
	err := k.onSession(mac, func(t *Token, s pkcs11.SessionHandle) ([]byte, error) {
		out, err := t.sign(s, k.handle, data)
		if err == nil && len(out) != 32 {
			err = fmt.Errorf("the token returned a %d-byte HMAC-SHA256", len(out))
		}
		return out, err
	})
	if err != nil {
		return nil, err
	}
	return mac, nil
}

func (t *Token) keyFor(label string, alg secret.Algorithm, wantKCV string, purpose Purpose) (*Key, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.broken != nil {
		return nil, fmt.Errorf("%w: %w", ErrNotReady, t.broken)
	}
	k := &Key{tok: t, label: label, alg: alg, purpose: purpose}
	info, err := t.find(k)
	if err != nil {
		return nil, err
	}
	if wantKCV != "" && !strings.EqualFold(wantKCV, info.KCV) {
		return nil, fmt.Errorf("key %q has KCV %s, not the %s configured", label, info.KCV, strings.ToUpper(wantKCV))
	}
	k.kcv, k.typ = info.KCV, info.Type
	t.keys = append(t.keys, k)
	return k, nil
}

// find looks the key up by label on the login session and fills its
// handle (mu held for writing).
func (t *Token) find(k *Key) (Info, error) {
	h, err := t.findOne(t.login, k.label)
	if err != nil {
		return Info{}, err
	}
	info, err := t.inspect(t.login, h, k.label)
	if err != nil {
		return Info{}, err
	}
	if k.purpose == AuditMAC {
		if !info.Type.IsHMAC() {
			return Info{}, fmt.Errorf("key %q is not an HMAC key (key import --purpose audit --type hmac256)", k.label)
		}
	} else if info.Type.IsHMAC() || info.Type.Algorithm() != k.alg || info.Type == "" {
		return Info{}, fmt.Errorf("key %q is not a %s key", k.label, k.alg)
	}
	if p := info.ProblemFor(k.purpose); p != "" {
		return Info{}, fmt.Errorf("key %q refused: %s", k.label, p)
	}
	k.handle = h
	return info, nil
}

func (t *Token) findOne(s pkcs11.SessionHandle, label string) (pkcs11.ObjectHandle, error) {
	hs, err := t.findAll(s, label)
	if err != nil {
		return 0, err
	}
	switch len(hs) {
	case 0:
		return 0, fmt.Errorf("%w: %q", ErrNoKey, label)
	case 1:
		return hs[0], nil
	}
	return 0, fmt.Errorf("%d secret keys are labelled %q: a label must name one key", len(hs), label)
}

func (t *Token) findAll(s pkcs11.SessionHandle, label string) ([]pkcs11.ObjectHandle, error) {
	tmpl := []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_SECRET_KEY),
		pkcs11.NewAttribute(pkcs11.CKA_LABEL, label),
	}
	if err := t.p.FindObjectsInit(s, tmpl); err != nil {
		return nil, fmt.Errorf("PKCS#11 find: %w", err)
	}
	defer func() { _ = t.p.FindObjectsFinal(s) }()
	var all []pkcs11.ObjectHandle
	for i := 0; i < 100; i++ {
		hs, _, err := t.p.FindObjects(s, 16)
		if err != nil {
			return nil, fmt.Errorf("PKCS#11 find: %w", err)
		}
		if len(hs) == 0 {
			break
		}
		all = append(all, hs...)
	}
	return all, nil
}

// boolAttrs are the attributes Inspect reports, by name.
var boolAttrs = []struct {
	name string
	typ  uint
}{
	{"CKA_TOKEN", pkcs11.CKA_TOKEN}, {"CKA_PRIVATE", pkcs11.CKA_PRIVATE},
	{"CKA_SENSITIVE", pkcs11.CKA_SENSITIVE}, {"CKA_EXTRACTABLE", pkcs11.CKA_EXTRACTABLE},
	{"CKA_ALWAYS_SENSITIVE", pkcs11.CKA_ALWAYS_SENSITIVE}, {"CKA_NEVER_EXTRACTABLE", pkcs11.CKA_NEVER_EXTRACTABLE},
	{"CKA_ENCRYPT", pkcs11.CKA_ENCRYPT}, {"CKA_DECRYPT", pkcs11.CKA_DECRYPT},
	{"CKA_WRAP", pkcs11.CKA_WRAP}, {"CKA_UNWRAP", pkcs11.CKA_UNWRAP},
	{"CKA_SIGN", pkcs11.CKA_SIGN}, {"CKA_VERIFY", pkcs11.CKA_VERIFY}, {"CKA_DERIVE", pkcs11.CKA_DERIVE},
	{"CKA_MODIFIABLE", pkcs11.CKA_MODIFIABLE}, {"CKA_COPYABLE", pkcs11.CKA_COPYABLE},
	{"CKA_DESTROYABLE", pkcs11.CKA_DESTROYABLE},
}

// inspect reads a key's type and attributes, one at a time (a token that
// does not know one attribute fails the whole request otherwise), and its
// KCV when the key may encrypt.
func (t *Token) inspect(s pkcs11.SessionHandle, h pkcs11.ObjectHandle, label string) (Info, error) {
	info := Info{Label: label, Attributes: map[string]bool{}}
	for _, a := range boolAttrs {
		got, err := t.p.GetAttributeValue(s, h, []*pkcs11.Attribute{pkcs11.NewAttribute(a.typ, nil)})
		if err != nil || len(got) != 1 || len(got[0].Value) != 1 {
			continue
		}
		info.Attributes[a.name] = got[0].Value[0] != 0
	}
	kt, err := t.ulong(s, h, pkcs11.CKA_KEY_TYPE)
	if err != nil {
		return info, fmt.Errorf("PKCS#11 key type of %q: %w", label, err)
	}
	switch kt {
	case pkcs11.CKK_DES2:
		info.Type = TDES2
	case pkcs11.CKK_DES3:
		info.Type = TDES3
	case pkcs11.CKK_GENERIC_SECRET, pkcs11.CKK_SHA256_HMAC:
		if n, err := t.ulong(s, h, pkcs11.CKA_VALUE_LEN); err == nil && n == 32 {
			info.Type = HMAC256
		}
	case pkcs11.CKK_AES:
		n, err := t.ulong(s, h, pkcs11.CKA_VALUE_LEN)
		if err != nil {
			return info, fmt.Errorf("PKCS#11 key length of %q: %w", label, err)
		}
		switch n {
		case 16:
			info.Type = AES128
		case 24:
			info.Type = AES192
		case 32:
			info.Type = AES256
		}
	}
	if info.Type == "" {
		return info, fmt.Errorf("key %q is of a type a zone PIN key cannot have (CKK 0x%x)", label, kt)
	}
	if info.Type.IsHMAC() {
		if info.Attributes["CKA_SIGN"] {
			kcv, err := secret.HMACKCV(func(data []byte) ([]byte, error) { return t.sign(s, h, data) })
			if err != nil {
				return info, fmt.Errorf("KCV of %q: %w", label, err)
			}
			info.KCV = kcv
		}
		return info, nil
	}
	if info.Attributes["CKA_ENCRYPT"] {
		kcv, err := secret.KCV(blockSize(info.Type.Algorithm()), func(dst, src []byte) error {
			out, err := t.encrypt(s, h, info.Type.Algorithm(), src)
			copy(dst, out)
			return err
		})
		if err != nil {
			return info, fmt.Errorf("KCV of %q: %w", label, err)
		}
		info.KCV = kcv
	}
	return info, nil
}

func (t *Token) ulong(s pkcs11.SessionHandle, h pkcs11.ObjectHandle, typ uint) (uint, error) {
	got, err := t.p.GetAttributeValue(s, h, []*pkcs11.Attribute{pkcs11.NewAttribute(typ, nil)})
	if err != nil {
		return 0, err
	}
	if len(got) != 1 || len(got[0].Value) == 0 {
		return 0, errors.New("no value")
	}
	var v uint
	for i := len(got[0].Value) - 1; i >= 0; i-- { // CK_ULONG in host (little-endian) order
		v = v<<8 | uint(got[0].Value[i])
	}
	return v, nil
}

func blockSize(alg secret.Algorithm) int {
	if alg == secret.AES {
		return 16
	}
	return 8
}

func mechanism(alg secret.Algorithm) []*pkcs11.Mechanism {
	if alg == secret.AES {
		return []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_AES_ECB, nil)}
	}
	return []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_DES3_ECB, nil)}
}

// encrypt enciphers one block on session s.
func (t *Token) encrypt(s pkcs11.SessionHandle, h pkcs11.ObjectHandle, alg secret.Algorithm, block []byte) ([]byte, error) {
	if err := t.p.EncryptInit(s, mechanism(alg), h); err != nil {
		return nil, err
	}
	out, err := t.p.Encrypt(s, block)
	if err != nil {
		return nil, err
	}
	if len(out) != len(block) {
		return nil, fmt.Errorf("the token returned %d bytes for a %d-byte block", len(out), len(block))
	}
	return out, nil
}

// sign is HMAC-SHA256 of data under an audit key, on session s.
func (t *Token) sign(s pkcs11.SessionHandle, h pkcs11.ObjectHandle, data []byte) ([]byte, error) {
	if err := t.p.SignInit(s, []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_SHA256_HMAC, nil)}, h); err != nil {
		return nil, err
	}
	return t.p.Sign(s, data)
}

// Algorithm is the key's block cipher.
func (k *Key) Algorithm() secret.Algorithm { return k.alg }

// BlockSize is the cipher's block size in bytes.
func (k *Key) BlockSize() int { return blockSize(k.alg) }

// KCV is the key check value the token computed when the key was found.
func (k *Key) KCV() string { return k.kcv }

// Describe is safe to log.
func (k *Key) Describe() string {
	if k.purpose == AuditMAC {
		return fmt.Sprintf("HMAC-SHA256 key KCV %s in PKCS#11 token %q (label %q)", k.kcv, k.tok.cfg.TokenLabel, k.label)
	}
	return fmt.Sprintf("%s-%d key KCV %s in PKCS#11 token %q (label %q)", k.alg, k.typ.Len()*8, k.kcv, k.tok.cfg.TokenLabel, k.label)
}

// String implements fmt.Stringer.
func (k *Key) String() string { return k.Describe() }

// EncryptBlock enciphers one block in the token. Any failure marks the token
// broken: every encryption then fails at once, without touching the module,
// until Watch has reopened it (a call never waits for a reopen). Nothing of
// the block is in the error.
func (k *Key) EncryptBlock(dst, src []byte) error {
	return k.onSession(dst, func(t *Token, s pkcs11.SessionHandle) ([]byte, error) {
		return t.encrypt(s, k.handle, k.alg, src)
	})
}

// DecryptBlock deciphers one block in the token: KeySecure's secret only
// (a zone PIN key never decrypts). Failures mark the token broken as
// EncryptBlock's do.
func (k *Key) DecryptBlock(dst, src []byte) error {
	if k.purpose != KeySecureSecret {
		return errors.New("this key does not decrypt")
	}
	return k.onSession(dst, func(t *Token, s pkcs11.SessionHandle) ([]byte, error) {
		if err := t.p.DecryptInit(s, mechanism(k.alg), k.handle); err != nil {
			return nil, err
		}
		out, err := t.p.Decrypt(s, src)
		if err == nil && len(out) != len(src) {
			err = fmt.Errorf("the token returned %d bytes for a %d-byte block", len(out), len(src))
		}
		return out, err
	})
}

// onSession runs op on a session of the pool, waiting for one (bounded),
// and copies its result to dst. Any failure marks the token broken: every
// operation then fails at once, without touching the module, until Watch
// has reopened it (a call never waits for a reopen). Nothing of the block
// is in the error.
func (k *Key) onSession(dst []byte, op func(*Token, pkcs11.SessionHandle) ([]byte, error)) error {
	t := k.tok
	t.mu.RLock()
	if t.broken != nil {
		err := t.broken
		t.mu.RUnlock()
		return fmt.Errorf("%w: %w", ErrNotReady, err)
	}
	pool := t.pool
	var s pkcs11.SessionHandle
	select {
	case s = <-pool:
	default:
		// All sessions busy: wait, bounded (a timer only on this path).
		wait := time.NewTimer(sessionWait)
		select {
		case s = <-pool:
			wait.Stop()
		case <-wait.C:
			t.mu.RUnlock()
			return fmt.Errorf("%w: no free session in %s", ErrNotReady, sessionWait)
		}
	}
	out, err := op(t, s)
	pool <- s
	t.mu.RUnlock()
	if err != nil {
		t.fail(err)
		return fmt.Errorf("%w: %w", ErrNotReady, err)
	}
	copy(dst, out)
	secret.Zero(out)
	return nil
}

// fail marks the token broken after an error from the module.
func (t *Token) fail(err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.broken == nil {
		t.broken = err
	}
}

// reopen finalises the module and starts it again, finds every kept key
// and checks that its KCV has not changed. It leaves the token ready, or
// broken with the reason.
func (t *Token) reopen() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.p == nil {
		return
	}
	t.stop()
	if err := t.start(); err != nil {
		t.broken = err
		return
	}
	for _, k := range t.keys {
		info, err := t.find(k)
		if err != nil {
			t.stop()
			t.broken = err
			return
		}
		if info.KCV != k.kcv {
			t.stop()
			t.broken = fmt.Errorf("key %q now has KCV %s, not %s: a different key", k.label, info.KCV, k.kcv)
			return
		}
	}
	t.broken = nil
}

// probe checks that every kept key still gives its KCV (an audit key by
// its HMAC, the others by encryption).
func (t *Token) probe() error {
	t.mu.RLock()
	keys := append([]*Key(nil), t.keys...)
	t.mu.RUnlock()
	for _, k := range keys {
		var got string
		var err error
		if k.purpose == AuditMAC {
			got, err = secret.HMACKCV(func(d []byte) ([]byte, error) { return k.Sum(d) })
		} else {
			got, err = secret.KCV(k.BlockSize(), k.EncryptBlock)
		}
		if err != nil {
			return err
		}
		if got != k.kcv {
			err := fmt.Errorf("key %q now encrypts to KCV %s, not %s", k.label, got, k.kcv)
			t.fail(err)
			return err
		}
	}
	return nil
}

// Watch probes the token every interval until ctx ends: a ready token is
// checked (its keys still give their KCVs), a broken one is reopened.
// onChange, when set, hears each change of state (nil: ready again).
func (t *Token) Watch(ctx context.Context, every time.Duration, onChange func(error)) {
	tick := time.NewTicker(every)
	defer tick.Stop()
	last := t.Ready()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		t.mu.RLock()
		broken := t.broken != nil
		keys := len(t.keys)
		t.mu.RUnlock()
		if broken {
			t.reopen()
		} else if keys > 0 {
			_ = t.probe()
		}
		now := t.Ready()
		if (now == nil) != (last == nil) && onChange != nil {
			onChange(now)
		}
		last = now
	}
}

// Inspect reports the key labelled label: type, attributes and KCV.
func (t *Token) Inspect(label string) (Info, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.broken != nil {
		return Info{}, fmt.Errorf("%w: %w", ErrNotReady, t.broken)
	}
	h, err := t.findOne(t.login, label)
	if err != nil {
		return Info{}, err
	}
	return t.inspect(t.login, h, label)
}

// Import creates a key from raw in the token with the attributes a zone
// PIN key must have: a token object, private, sensitive, never extractable,
// for encryption only, neither modifiable nor copyable. An existing key
// with the label is refused unless replace, and then destroyed once the new
// one is in place. raw is not kept; the caller wipes it.
func (t *Token) Import(label string, typ KeyType, raw []byte, replace bool) (Info, error) {
	return t.ImportFor(label, typ, raw, replace, PINBlocks)
}

// ImportFor is Import for a key of purpose: KeySecure's secret (AES) may
// decrypt too.
func (t *Token) ImportFor(label string, typ KeyType, raw []byte, replace bool, purpose Purpose) (Info, error) {
	if purpose == KeySecureSecret && (typ.IsHMAC() || typ.Algorithm() != secret.AES) {
		return Info{}, errors.New("KeySecure's secret is an AES key")
	}
	if (purpose == AuditMAC) != typ.IsHMAC() {
		return Info{}, errors.New("the audit key, and only it, is an hmac256 key")
	}
	if len(raw) != typ.Len() {
		return Info{}, fmt.Errorf("a %s key is %d bytes", typ, typ.Len())
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.broken != nil {
		return Info{}, fmt.Errorf("%w: %w", ErrNotReady, t.broken)
	}
	old, err := t.findAll(t.login, label)
	if err != nil {
		return Info{}, err
	}
	if len(old) > 0 && !replace {
		return Info{}, fmt.Errorf("the token already has a key labelled %q (use --replace to put a new one in its place)", label)
	}
	var ckk uint
	switch typ {
	case TDES2:
		ckk = pkcs11.CKK_DES2
	case TDES3:
		ckk = pkcs11.CKK_DES3
	case HMAC256:
		ckk = pkcs11.CKK_GENERIC_SECRET
	default:
		ckk = pkcs11.CKK_AES
	}
	value := pkcs11.NewAttribute(pkcs11.CKA_VALUE, raw)
	defer secret.Zero(value.Value) // the binding's copy
	tmpl := []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_SECRET_KEY),
		pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, ckk),
		pkcs11.NewAttribute(pkcs11.CKA_LABEL, label),
		pkcs11.NewAttribute(pkcs11.CKA_TOKEN, true),
		pkcs11.NewAttribute(pkcs11.CKA_PRIVATE, true),
		pkcs11.NewAttribute(pkcs11.CKA_SENSITIVE, true),
		pkcs11.NewAttribute(pkcs11.CKA_EXTRACTABLE, false),
		pkcs11.NewAttribute(pkcs11.CKA_ENCRYPT, purpose != AuditMAC),
		pkcs11.NewAttribute(pkcs11.CKA_DECRYPT, purpose == KeySecureSecret),
		pkcs11.NewAttribute(pkcs11.CKA_WRAP, false),
		pkcs11.NewAttribute(pkcs11.CKA_UNWRAP, false),
		pkcs11.NewAttribute(pkcs11.CKA_SIGN, purpose == AuditMAC),
		pkcs11.NewAttribute(pkcs11.CKA_VERIFY, false),
		pkcs11.NewAttribute(pkcs11.CKA_DERIVE, false),
		pkcs11.NewAttribute(pkcs11.CKA_MODIFIABLE, false),
		pkcs11.NewAttribute(pkcs11.CKA_COPYABLE, false),
		value,
	}
	h, err := t.p.CreateObject(t.login, tmpl)
	if err != nil {
		return Info{}, fmt.Errorf("PKCS#11 create key %q: %w", label, err)
	}
	info, err := t.inspect(t.login, h, label)
	if err == nil {
		if p := info.ProblemFor(purpose); p != "" {
			err = fmt.Errorf("the token did not keep the attributes asked for: %s", p)
		}
	}
	if err != nil {
		_ = t.p.DestroyObject(t.login, h)
		return Info{}, err
	}
	for _, o := range old {
		if err := t.p.DestroyObject(t.login, o); err != nil {
			return info, fmt.Errorf("the new key is in place, but the old one with the label could not be destroyed (%w): destroy it before serve starts", err)
		}
	}
	return info, nil
}

// isCode reports whether err is the PKCS#11 return value code.
func isCode(err error, code uint) bool {
	var e pkcs11.Error
	return errors.As(err, &e) && uint(e) == code
}
