// Package simrun starts both host simulators on loopback with freshly
// generated keys and hands back what a client needs to reach them. The
// console, `ivr-pin simulate` and the tests use it; production code never
// does.
package simrun

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/ivr-pin/ivr-pin/pinsvc/cardhost"
	"github.com/ivr-pin/ivr-pin/pinsvc/keysecure"
	"github.com/ivr-pin/ivr-pin/pinsvc/pinblock"
	"github.com/ivr-pin/ivr-pin/pinsvc/secret"
	"github.com/ivr-pin/ivr-pin/pinsvc/sim/cardhostsim"
	"github.com/ivr-pin/ivr-pin/pinsvc/sim/keysecuresim"
)

// Options choose the listening addresses (default 127.0.0.1:0 each).
type Options struct {
	CardHostAddr, KeySecureAddr string
	BankID                      string // default "DEMO"
	APIKey                      string // default "demo-api-key"
	// ZPK and APISecret are the keys the simulators share with the client.
	// Unset, fresh random keys are made: the console passes them to its own
	// clients in memory, so no key is ever written down.
	ZPK       *pinblock.ZPK
	APISecret string
	// ZPKs, when set, are the card host's keys by encryption_key_id (a
	// key rotation: the host decodes each request with the key it names).
	ZPKs map[string]*pinblock.ZPK
	// KeySecurePCIDisplayOff starts KeySecure without PCI display (private
	// info answers 1013), as a merchant account without it is.
	KeySecurePCIDisplayOff bool
	// RequestLog, when set, gets one line per request answered (see
	// requestLog): what `ivr-pin simulate` shows an operator.
	RequestLog io.Writer
}

// Running simulators.
type Running struct {
	CardHost     *cardhostsim.Server
	KeySecure    *keysecuresim.Server
	CardHostURL  string // full URL of the PIN change route
	KeySecureURL string // base URL
	BankID       string
	APIKey       string
	ZPK          *pinblock.ZPK
	APISecret    *secret.Key
	servers      []*http.Server
}

// Start listens and serves both simulators until Close.
func Start(opts Options) (*Running, error) {
	opts.CardHostAddr = cmp.Or(opts.CardHostAddr, "127.0.0.1:0")
	opts.KeySecureAddr = cmp.Or(opts.KeySecureAddr, "127.0.0.1:0")
	opts.BankID = cmp.Or(opts.BankID, "DEMO")
	opts.APIKey = cmp.Or(opts.APIKey, "demo-api-key")
	zpk := opts.ZPK
	if zpk == nil {
		raw := make([]byte, 16)
		if _, err := rand.Read(raw); err != nil {
			return nil, err
		}
		secret.SetOddParity(raw) // as an HSM would make it
		key, err := secret.NewKey(secret.TDES, raw)
		secret.Zero(raw)
		if err != nil {
			return nil, err
		}
		if zpk, err = pinblock.NewZPK(key, pinblock.ISO0); err != nil {
			return nil, err
		}
	}
	apiSecret := opts.APISecret
	if apiSecret == "" {
		// apiSecret is a string on the platform: 32 hex characters = AES-256.
		sb := make([]byte, 16)
		_, _ = rand.Read(sb)
		apiSecret = hex.EncodeToString(sb)
	}
	ksKey, err := keysecure.SecretKey(apiSecret)
	if err != nil {
		return nil, err
	}
	r := &Running{BankID: opts.BankID, APIKey: opts.APIKey, ZPK: zpk, APISecret: ksKey}
	r.CardHost = cardhostsim.New(cardhostsim.Config{BankID: opts.BankID, ZPK: zpk, ZPKs: opts.ZPKs}).WithTestCards()
	ks, err := keysecuresim.New(keysecuresim.Config{APIKey: opts.APIKey, APISecret: apiSecret, PCIDisplay: !opts.KeySecurePCIDisplayOff})
	if err != nil {
		return nil, err
	}
	r.KeySecure = ks.WithTestCards()
	var chH, ksH http.Handler = r.CardHost, r.KeySecure
	if opts.RequestLog != nil {
		mu := &sync.Mutex{}
		chH, ksH = requestLog("card host", chH, opts.RequestLog, mu), requestLog("KeySecure", ksH, opts.RequestLog, mu)
	}
	chAddr, err := r.serve(opts.CardHostAddr, chH)
	if err != nil {
		return nil, err
	}
	ksAddr, err := r.serve(opts.KeySecureAddr, ksH)
	if err != nil {
		r.Close()
		return nil, err
	}
	r.CardHostURL = "http://" + chAddr + cardhostsim.Route
	r.KeySecureURL = "http://" + ksAddr
	return r, nil
}

func (r *Running) serve(addr string, h http.Handler) (string, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return "", err
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return "", errors.New("simulators listen on loopback only")
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	r.servers = append(r.servers, srv)
	go func() { _ = srv.Serve(ln) }()
	return ln.Addr().String(), nil
}

// CardHostConfig is a client configuration that reaches the simulator.
func (r *Running) CardHostConfig() cardhost.Config {
	return cardhost.Config{URL: r.CardHostURL, BankID: r.BankID, EncryptionMethod: cardhost.MethodSymmetric,
		Encrypter: r.ZPK, Timeout: 5 * time.Second}
}

// KeySecureConfig is a client configuration that reaches the simulator.
func (r *Running) KeySecureConfig() keysecure.Config {
	return keysecure.Config{BaseURL: r.KeySecureURL, APIKey: r.APIKey, APISecret: r.APISecret, Timeout: 5 * time.Second}
}

// Close stops both simulators.
func (r *Running) Close() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	for _, s := range r.servers {
		_ = s.Shutdown(ctx)
	}
}
