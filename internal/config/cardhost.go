package config

import (
	"errors"
	"strconv"
	"time"

	"github.com/ivr-pin/ivr-pin/pinsvc/cardhost"
	"github.com/ivr-pin/ivr-pin/pinsvc/hosturl"
	"github.com/ivr-pin/ivr-pin/pinsvc/pinblock"
	"github.com/ivr-pin/ivr-pin/pinsvc/secret"
)

// methodAsymmetric is the card host's RSA encryption method.
const methodAsymmetric = cardhost.MethodAsymmetric

// CardHost is the card host's REQ_CARD_PIN_CHANGE endpoint: where it is,
// how its PIN blocks are made, how the line logs in, and what its answer
// codes mean.
type CardHost struct {
	NIURL              string            `envconfig:"NI_URL" secret:"url" desc:"full URL of the PIN change endpoint; unset: the built-in simulator (console only)"`
	NIBankID           string            `envconfig:"NI_BANK_ID" desc:"bank_id, at most 4 characters"`
	NIEncryptionMethod string            `envconfig:"NI_ENCRYPTION_METHOD" default:"SYMMETRIC_ENC" desc:"SYMMETRIC_ENC or ASYNC_ENC"`
	NIPINBlockFormat   string            `envconfig:"NI_PINBLOCK_FORMAT" default:"ISO0" desc:"ISO0, ISO1, ISO3 or ISO4"`
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
}

// problems checks the PIN block, the encryption, the fields, the URLs and
// the answer codes, every problem once.
func (h *CardHost) problems(allowInsecure bool) []error {
	var out []error
	add := func(v, reason string) { out = append(out, problem(v, reason)) }
	f, ferr := pinblock.ParseFormat(h.NIPINBlockFormat)
	if ferr != nil {
		add("NI_PINBLOCK_FORMAT", "must be ISO0, ISO1, ISO3 or ISO4")
	}
	switch h.NIEncryptionMethod {
	case cardhost.MethodSymmetric:
		if f == pinblock.ISO4 && ferr == nil {
			add("NI_PINBLOCK_FORMAT", "ISO4 gives 32 hex characters, over the card host's documented 20; agree a longer field with the bank first")
		}
	case cardhost.MethodAsymmetric:
		if f == pinblock.ISO4 && ferr == nil {
			add("NI_PINBLOCK_FORMAT", "ISO4 is an AES format and cannot go under RSA (ASYNC_ENC); use ISO0, ISO1 or ISO3")
		}
	default:
		add("NI_ENCRYPTION_METHOD", "must be SYMMETRIC_ENC or ASYNC_ENC")
	}
	if len(h.NIBankID) > cardhost.MaxBankID {
		add("NI_BANK_ID", "at most 4 characters")
	}
	for _, u := range []struct{ name, value string }{{"NI_URL", h.NIURL}, {"NI_TOKEN_URL", h.NITokenURL}} {
		if u.value == "" {
			continue
		}
		if err := hostURLProblem(u.name, u.value, allowInsecure); err != nil {
			out = append(out, err)
		}
	}
	switch h.NIRSAMGF1Hash {
	case "", pinblock.MGF1SHA1, pinblock.MGF1SHA256:
		if h.NIRSAMGF1Hash != "" && h.NIRSAPadding == pinblock.PaddingPKCS1v15 {
			add("NI_RSA_MGF1_HASH", "goes with OAEP padding only")
		}
	default:
		add("NI_RSA_MGF1_HASH", "must be SHA1 or SHA256, or unset")
	}
	if len(h.NISrcApplication) == 0 || len(h.NISrcApplication) > cardhost.MaxApplication {
		add("NI_SRC_APPLICATION", "1 to 10 characters")
	}
	if len(h.NITargetApp) == 0 || len(h.NITargetApp) > cardhost.MaxApplication {
		add("NI_TARGET_APPLICATION", "1 to 10 characters")
	}
	if _, err := h.timestampLayout(); err != nil {
		out = append(out, err)
	}
	out = append(out, h.codeProblems()...)
	for bin, seq := range h.NISequenceByBIN {
		if !allDigits(bin) || len(bin) > 11 || len(seq) != 2 || !allDigits(seq) {
			add("NI_SEQUENCE_BY_BIN", "must be BIN:NN pairs (1 to 11 digits : two digits)")
			break
		}
	}
	if h.NITimeout <= 0 {
		add("NI_TIMEOUT", "must be a positive duration")
	}
	if h.NIURL != "" {
		if h.NIBankID == "" {
			add("NI_BANK_ID", "required when NI_URL is set")
		}
		if h.NITokenURL != "" && (h.NIClientID == "" || h.NIClientSecret == "") {
			add("NI_TOKEN_URL", "needs NI_CLIENT_ID and NI_CLIENT_SECRET")
		}
		if (h.NITLSCert == "") != (h.NITLSKey == "") {
			add("NI_TLS_CERT", "NI_TLS_CERT and NI_TLS_KEY go together")
		}
	}
	return out
}

// codeProblems refuses an answer code given two meanings.
func (h *CardHost) codeProblems() []error {
	seen := map[string]string{}
	for _, l := range []struct {
		name  string
		codes []string
	}{
		{"NI_CODES_WRONG_PIN", h.NICodesWrongPIN}, {"NI_CODES_EXPIRY_MISMATCH", h.NICodesExpiry}, {"NI_CODES_UNKNOWN_CARD", h.NICodesUnknown},
		{"NI_CODES_NOT_ELIGIBLE", h.NICodesNotEligible}, {"NI_CODES_NO_PIN", h.NICodesNoPIN}, {"NI_CODES_WEAK_PIN", h.NICodesWeakPIN},
	} {
		for _, code := range l.codes {
			if other, dup := seen[code]; dup {
				return []error{problem(l.name, "code "+strconv.Quote(code)+" is also in IVRPIN_"+other+": a refusal must have one reason")}
			}
			seen[code] = l.name
		}
	}
	return nil
}

// ZPKAlgorithm is the zone PIN key's algorithm for the PIN block format.
func (h *CardHost) ZPKAlgorithm() secret.Algorithm {
	if f, _ := pinblock.ParseFormat(h.NIPINBlockFormat); f == pinblock.ISO4 {
		return secret.AES
	}
	return secret.TDES
}

// encrypter builds the card host's PIN block encrypter under key, the zone
// PIN key that the setting keyVar names, or under the card host's RSA key
// for ASYNC_ENC (key is then not used).
func (h *CardHost) encrypter(key pinblock.Cipher, keyVar string) (pinblock.Encrypter, error) {
	f, err := pinblock.ParseFormat(h.NIPINBlockFormat)
	if err != nil {
		return nil, problem("NI_PINBLOCK_FORMAT", err.Error())
	}
	if h.NIEncryptionMethod == cardhost.MethodAsymmetric {
		return h.rsaEncrypter(f)
	}
	z, err := pinblock.NewZPK(key, f)
	if err != nil {
		return nil, problem(keyVar, err.Error())
	}
	return z, nil
}

// rsaEncrypter is ASYNC_ENC's encrypter under NI_CERT_FILE's key.
func (h *CardHost) rsaEncrypter(f pinblock.Format) (pinblock.Encrypter, error) {
	if h.NICertFile == "" {
		return nil, problem("NI_CERT_FILE", "required for ASYNC_ENC")
	}
	pub, err := pinblock.LoadCertificate(h.NICertFile)
	if err != nil {
		return nil, problem("NI_CERT_FILE", err.Error())
	}
	switch h.NIRSAPadding {
	case pinblock.PaddingOAEPSHA256, pinblock.PaddingOAEPSHA1, pinblock.PaddingPKCS1v15:
	default:
		return nil, problem("NI_RSA_PADDING", "must be OAEP-SHA256, OAEP-SHA1 or PKCS1v15")
	}
	switch h.NIRSAEncoding {
	case pinblock.EncodingHex, pinblock.EncodingBase64:
	default:
		return nil, problem("NI_RSA_ENCODING", "must be hex or base64")
	}
	r, err := pinblock.NewRSAEncrypter(pub, f, h.NIRSAPadding, h.NIRSAMGF1Hash, h.NIRSAEncoding)
	if err != nil {
		return nil, problem("NI_RSA_MGF1_HASH", err.Error())
	}
	return r, nil
}

// ClientConfig is the card-host client's configuration, its PIN blocks
// made by enc (Config.CardHostClient picks it; nil will do for Reach).
func (h *CardHost) ClientConfig(enc pinblock.Encrypter, allowInsecure bool) (cardhost.Config, error) {
	layout, err := h.timestampLayout()
	if err != nil {
		return cardhost.Config{}, err
	}
	return cardhost.Config{
		URL: h.NIURL, BankID: h.NIBankID, EncryptionMethod: h.NIEncryptionMethod,
		EncryptionKeyID: h.NIKeyID, EncryptionKeyType: h.NIKeyType, Timeout: h.NITimeout, Encrypter: enc,
		Codes: cardhost.Codes{WrongPIN: h.NICodesWrongPIN, ExpiryMismatch: h.NICodesExpiry, UnknownCard: h.NICodesUnknown,
			NotEligible: h.NICodesNotEligible, NoPINYet: h.NICodesNoPIN, WeakPIN: h.NICodesWeakPIN},
		TokenURL: h.NITokenURL, ClientID: h.NIClientID, ClientSecret: h.NIClientSecret,
		TLSCert: h.NITLSCert, TLSKey: h.NITLSKey, TLSCA: h.NITLSCA,
		SrcApplication: h.NISrcApplication, TargetApplication: h.NITargetApp, TimestampLayout: layout,
		SequenceByBIN: h.NISequenceByBIN, AllowInsecure: allowInsecure,
	}, nil
}

// timestampLayout is the card host header's timestamp form.
func (h *CardHost) timestampLayout() (string, error) {
	switch h.NITimestampFormat {
	case "iso8601":
		return cardhost.TimestampLayout, nil
	case "legacy":
		return cardhost.LegacyTimestampLayout, nil
	}
	return "", problem("NI_TIMESTAMP_FORMAT", "must be iso8601 or legacy")
}

// hostURLProblem is a host URL's problem (hosturl's rule), naming how a
// lab allows plain http.
func hostURLProblem(v, raw string, allowInsecure bool) error {
	err := hosturl.Check(raw, allowInsecure)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, hosturl.ErrPlainHTTP):
		return problem(v, err.Error()+" (a lab may set IVRPIN_ALLOW_INSECURE_HOSTS=true)")
	}
	return problem(v, err.Error())
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}
