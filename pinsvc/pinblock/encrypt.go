package pinblock

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	_ "crypto/sha1"   // registers crypto.SHA1 for OAEP
	_ "crypto/sha256" // registers crypto.SHA256 for OAEP
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/ivr-pin/ivr-pin/pinsvc/secret"
)

// Encrypter turns clear PIN digits into the encrypted PIN block string a host
// takes. Implementations never keep the digits.
type Encrypter interface {
	Encrypt(pin []byte, pan string) (string, error)
	// Describe is safe to log: format, algorithm, key check value.
	Describe() string
}

// Cipher is a zone PIN key as the PIN block needs it: one block enciphered
// at a time (ECB). A software key (*secret.Key) and a key held in a PKCS#11
// token (package hsm) both are one; the token's can fail, so the error.
type Cipher interface {
	Algorithm() secret.Algorithm
	BlockSize() int
	EncryptBlock(dst, src []byte) error
	// Describe is safe to log: algorithm, length, KCV, where the key lives.
	Describe() string
}

// ZPK encrypts PIN blocks under a symmetric zone PIN key: formats 0, 1 and 3
// under TDES (ECB over the single 8-byte block), format 4 under AES as the
// standard prescribes (encipher the PIN field, XOR the PAN field, encipher
// again). Output is upper-case hex.
type ZPK struct {
	Key    Cipher
	Format Format
	Rand   io.Reader // random fill; nil means crypto/rand
}

// NewZPK checks that the key suits the format.
func NewZPK(key Cipher, f Format) (*ZPK, error) {
	if key == nil {
		return nil, errors.New("zone PIN key is not set")
	}
	switch f {
	case ISO0, ISO1, ISO3:
		if key.Algorithm() != secret.TDES {
			return nil, fmt.Errorf("%s needs a TDES zone PIN key", f)
		}
	case ISO4:
		if key.Algorithm() != secret.AES {
			return nil, errors.New("ISO4 needs an AES zone PIN key")
		}
	default:
		return nil, ErrFormat
	}
	return &ZPK{Key: key, Format: f}, nil
}

// Describe implements Encrypter.
func (z *ZPK) Describe() string { return fmt.Sprintf("%s under %s", z.Format, z.Key) }

// Encrypt implements Encrypter.
func (z *ZPK) Encrypt(pin []byte, pan string) (string, error) {
	if z.Format == ISO4 {
		pf, err := PINField4(pin, z.Rand)
		if err != nil {
			return "", err
		}
		defer secret.Zero(pf)
		af, err := PANField4(pan)
		if err != nil {
			return "", err
		}
		out := make([]byte, 16)
		if err := z.Key.EncryptBlock(out, pf); err != nil {
			return "", err
		}
		for i := range out {
			out[i] ^= af[i]
		}
		if err := z.Key.EncryptBlock(out, out); err != nil {
			return "", err
		}
		return strings.ToUpper(hex.EncodeToString(out)), nil
	}
	clear, err := Clear(z.Format, pin, pan, z.Rand)
	if err != nil {
		return "", err
	}
	defer secret.Zero(clear)
	out := make([]byte, 8)
	if err := z.Key.EncryptBlock(out, clear); err != nil {
		return "", err
	}
	return strings.ToUpper(hex.EncodeToString(out)), nil
}

// Decrypt recovers the PIN digits from an encrypted block (the card host
// simulator's side). The result is the caller's to wipe.
func (z *ZPK) Decrypt(block string, pan string) ([]byte, error) {
	raw, err := hex.DecodeString(block)
	if err != nil || len(raw) != z.Format.BlockSize() {
		return nil, ErrBlock
	}
	sk, ok := z.Key.(*secret.Key)
	if !ok {
		return nil, errors.New("decrypting needs a software key (the simulator's side)")
	}
	blk, err := sk.Block()
	if err != nil {
		return nil, err
	}
	clear := make([]byte, len(raw))
	defer secret.Zero(clear)
	blk.Decrypt(clear, raw)
	if z.Format != ISO4 {
		return ParseClear(z.Format, clear, pan)
	}
	af, err := PANField4(pan)
	if err != nil {
		return nil, err
	}
	for i := range clear {
		clear[i] ^= af[i]
	}
	blk.Decrypt(clear, clear)
	return ParsePINField4(clear)
}

// RSA padding and output encodings for ASYNC_ENC. The card host's public
// pages document neither, so both are settings.
const (
	PaddingOAEPSHA256 = "OAEP-SHA256"
	PaddingOAEPSHA1   = "OAEP-SHA1"
	PaddingPKCS1v15   = "PKCS1v15"
	EncodingHex       = "hex"
	EncodingBase64    = "base64"

	// MGF1 hashes for OAEP. Empty means the OAEP hash itself (what Go and
	// most libraries do); Java's OAEPWithSHA-256AndMGF1Padding uses SHA-256
	// for OAEP and SHA-1 for MGF1.
	MGF1SHA1   = "SHA1"
	MGF1SHA256 = "SHA256"
)

// RSAEncrypter encrypts the clear format 0, 1 or 3 block under the
// institution's RSA public key (ASYNC_ENC).
type RSAEncrypter struct {
	Public   *rsa.PublicKey
	Format   Format
	Padding  string
	MGF1Hash string // "" (the OAEP hash), SHA1 or SHA256; OAEP only
	Encoding string
	Rand     io.Reader
}

// NewRSAEncrypter checks the choices at start-up: format 4 is an AES format
// and cannot go under RSA, and the padding, MGF1 hash and encoding must be
// known ones.
func NewRSAEncrypter(pub *rsa.PublicKey, f Format, padding, mgf1, encoding string) (*RSAEncrypter, error) {
	if f == ISO4 {
		return nil, errors.New("ISO4 is an AES format; use ISO0, ISO1 or ISO3 with ASYNC_ENC")
	}
	r := &RSAEncrypter{Public: pub, Format: f, Padding: padding, MGF1Hash: mgf1, Encoding: encoding}
	if _, _, err := oaepHashes(r.padding(), mgf1); err != nil {
		return nil, err
	}
	if _, err := encode(r.encoding(), nil); err != nil {
		return nil, err
	}
	return r, nil
}

// oaepHashes are the OAEP and MGF1 hashes of a padding choice; zero for
// PKCS#1 v1.5.
func oaepHashes(padding, mgf1 string) (oaep, mgf crypto.Hash, err error) {
	switch padding {
	case PaddingOAEPSHA256:
		oaep = crypto.SHA256
	case PaddingOAEPSHA1:
		oaep = crypto.SHA1
	case PaddingPKCS1v15:
		if mgf1 != "" {
			return 0, 0, errors.New("an MGF1 hash goes with OAEP only")
		}
		return 0, 0, nil
	default:
		return 0, 0, fmt.Errorf("unknown RSA padding %q", padding)
	}
	switch mgf1 {
	case "":
		mgf = oaep
	case MGF1SHA1:
		mgf = crypto.SHA1
	case MGF1SHA256:
		mgf = crypto.SHA256
	default:
		return 0, 0, fmt.Errorf("unknown MGF1 hash %q", mgf1)
	}
	return oaep, mgf, nil
}

// LoadCertificate reads the first certificate of a PEM file and returns its
// RSA public key.
func LoadCertificate(path string) (*rsa.PublicKey, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return ParseCertificatePEM(data)
}

// ParseCertificatePEM returns the RSA public key of the first CERTIFICATE
// block in data.
func ParseCertificatePEM(data []byte) (*rsa.PublicKey, error) {
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			return nil, errors.New("no CERTIFICATE block in PEM data")
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		cert, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("parse certificate: %w", err)
		}
		pub, ok := cert.PublicKey.(*rsa.PublicKey)
		if !ok {
			return nil, errors.New("certificate key is not RSA")
		}
		return pub, nil
	}
}

// Describe implements Encrypter.
func (r *RSAEncrypter) Describe() string {
	mgf := ""
	if r.MGF1Hash != "" {
		mgf = " MGF1-" + r.MGF1Hash
	}
	return fmt.Sprintf("%s under RSA-%d %s%s %s", r.Format, r.Public.N.BitLen(), r.padding(), mgf, r.encoding())
}

func (r *RSAEncrypter) padding() string {
	if r.Padding == "" {
		return PaddingOAEPSHA256
	}
	return r.Padding
}

func (r *RSAEncrypter) encoding() string {
	if r.Encoding == "" {
		return EncodingHex
	}
	return r.Encoding
}

// Encrypt implements Encrypter.
func (r *RSAEncrypter) Encrypt(pin []byte, pan string) (string, error) {
	if r.Format == ISO4 {
		return "", errors.New("ISO4 is an AES format; use ISO0, ISO1 or ISO3 with ASYNC_ENC")
	}
	rnd := r.Rand
	if rnd == nil {
		rnd = rand.Reader
	}
	clear, err := Clear(r.Format, pin, pan, rnd)
	if err != nil {
		return "", err
	}
	defer secret.Zero(clear)
	oaep, mgf, err := oaepHashes(r.padding(), r.MGF1Hash)
	if err != nil {
		return "", err
	}
	var out []byte
	if oaep == 0 {
		out, err = rsa.EncryptPKCS1v15(rnd, r.Public, clear)
	} else {
		out, err = rsa.EncryptOAEPWithOptions(rnd, r.Public, clear, &rsa.OAEPOptions{Hash: oaep, MGFHash: mgf})
	}
	if err != nil {
		return "", err
	}
	return encode(r.encoding(), out)
}

func encode(enc string, b []byte) (string, error) {
	switch enc {
	case EncodingHex:
		return strings.ToUpper(hex.EncodeToString(b)), nil
	case EncodingBase64:
		return base64.StdEncoding.EncodeToString(b), nil
	}
	return "", fmt.Errorf("unknown encoding %q", enc)
}

// RSADecrypt is the host side of RSAEncrypter (used by the simulator).
func RSADecrypt(priv *rsa.PrivateKey, f Format, padding, mgf1, encoding, block, pan string) ([]byte, error) {
	var raw []byte
	var err error
	switch encoding {
	case EncodingHex, "":
		raw, err = hex.DecodeString(block)
	case EncodingBase64:
		raw, err = base64.StdEncoding.DecodeString(block)
	default:
		return nil, fmt.Errorf("unknown encoding %q", encoding)
	}
	if err != nil {
		return nil, ErrBlock
	}
	if padding == "" {
		padding = PaddingOAEPSHA256
	}
	oaep, mgf, err := oaepHashes(padding, mgf1)
	if err != nil {
		return nil, err
	}
	var clear []byte
	if oaep == 0 {
		clear, err = rsa.DecryptPKCS1v15(nil, priv, raw)
	} else {
		clear, err = priv.Decrypt(nil, raw, &rsa.OAEPOptions{Hash: oaep, MGFHash: mgf})
	}
	if err != nil {
		return nil, ErrBlock
	}
	defer secret.Zero(clear)
	return ParseClear(f, clear, pan)
}
