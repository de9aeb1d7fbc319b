//go:build !cgo

package hsm

import (
	"context"
	"errors"
	"time"

	"github.com/ivr-pin/ivr-pin/pinsvc/secret"
)

// errNoCgo explains why a CGO_ENABLED=0 build cannot load a module.
var errNoCgo = errors.New("this ivr-pin was built with CGO_ENABLED=0 and cannot load a PKCS#11 module: build it with cgo (the default on Linux with a C compiler; the Dockerfile does)")

// Token is a PKCS#11 token; without cgo it cannot be opened.
type Token struct{}

// Key is a key in a token; without cgo there are none.
type Key struct{}

// Open fails: PKCS#11 needs cgo.
func Open(Config) (*Token, error) { return nil, errNoCgo }

// Close does nothing.
func (t *Token) Close() {}

// Ready reports the missing cgo.
func (t *Token) Ready() error { return errNoCgo }

// Describe names the token.
func (t *Token) Describe() string { return "PKCS#11 (not built in)" }

// Software reports nothing without cgo.
func (t *Token) Software() (bool, string) { return false, "" }

// Key fails: PKCS#11 needs cgo.
func (t *Token) Key(string, secret.Algorithm, string) (*Key, error) { return nil, errNoCgo }

// AuditKey fails: PKCS#11 needs cgo.
func (t *Token) AuditKey(string, string) (*Key, error) { return nil, errNoCgo }

// Sum fails: PKCS#11 needs cgo.
func (k *Key) Sum(...[]byte) ([]byte, error) { return nil, errNoCgo }

// KeySecureKey fails: PKCS#11 needs cgo.
func (t *Token) KeySecureKey(string, string) (*Key, error) { return nil, errNoCgo }

// ImportFor fails: PKCS#11 needs cgo.
func (t *Token) ImportFor(string, KeyType, []byte, bool, Purpose) (Info, error) {
	return Info{}, errNoCgo
}

// DecryptBlock fails: PKCS#11 needs cgo.
func (k *Key) DecryptBlock(dst, src []byte) error { return errNoCgo }

// Inspect fails: PKCS#11 needs cgo.
func (t *Token) Inspect(string) (Info, error) { return Info{}, errNoCgo }

// Import fails: PKCS#11 needs cgo.
func (t *Token) Import(string, KeyType, []byte, bool) (Info, error) { return Info{}, errNoCgo }

// Algorithm is unknown without a key.
func (k *Key) Algorithm() secret.Algorithm { return 0 }

// BlockSize is 8.
func (k *Key) BlockSize() int { return 8 }

// EncryptBlock fails: PKCS#11 needs cgo.
func (k *Key) EncryptBlock(dst, src []byte) error { return errNoCgo }

// KCV is unknown.
func (k *Key) KCV() string { return "" }

// Describe names the missing support.
func (k *Key) Describe() string { return "PKCS#11 key (not built in)" }

// Watch returns at once: there is nothing to watch.
func (t *Token) Watch(context.Context, time.Duration, func(error)) {}
