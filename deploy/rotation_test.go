package deploy

import (
	"crypto/tls"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ivr-pin/ivr-pin/asterisk/aritest"
	"github.com/ivr-pin/ivr-pin/internal/testkit"
	"github.com/ivr-pin/ivr-pin/pinsvc/pinblock"
	"github.com/ivr-pin/ivr-pin/pinsvc/secret"
	"github.com/ivr-pin/ivr-pin/pinsvc/sim/simrun"
	"github.com/ivr-pin/ivr-pin/prompts"
)

// TestHAProxyRotatesTheZonePINKeyWithoutAPause is a key rotation on a fleet:
// two serves behind the shipped HAProxy, each told the next key, its id and
// the instant it takes over, and nothing else. Calls run across the
// instant; the card host holds both keys and decodes each request with the
// key its encryption_key_id names. Every call changes its PIN, requests
// before the instant name the current key and after it the next, a call
// that sealed its current PIN before the instant and its new one after
// sends both under the key it began with, and neither serve restarts.
func TestHAProxyRotatesTheZonePINKeyWithoutAPause(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and runs HAProxy")
	}
	dir, bin, pki, pem := fleetParts(t)
	keyFile := func(name string, raw []byte) (string, *pinblock.ZPK) {
		secret.SetOddParity(raw)
		k, err := secret.NewKey(secret.TDES, raw)
		if err != nil {
			t.Fatal(err)
		}
		z, _ := pinblock.NewZPK(k, pinblock.ISO0)
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(fmt.Sprintf("%X\n", raw)), 0o600); err != nil {
			t.Fatal(err)
		}
		return p, z
	}
	curFile, cur := keyFile("zpk-2026", []byte("rotation-current"))
	nextFile, next := keyFile("zpk-2027", []byte("rotation-next-k!"))
	sims, err := simrun.Start(simrun.Options{BankID: "TB01", ZPK: cur, ZPKs: map[string]*pinblock.ZPK{"zpk-2026": cur, "zpk-2027": next}})
	if err != nil {
		t.Fatal(err)
	}
	defer sims.Close()
	ari, err := aritest.Start(aritest.Options{PlaybackScale: 0.01})
	if err != nil {
		t.Fatal(err)
	}
	defer ari.Close()

	// The instant is set before the fleet starts, as an operator sets it
	// in each instance's environment and rolls them in advance.
	from := time.Now().Add(25 * time.Second).UTC().Truncate(time.Second)
	const password = "rotation-test-listen-password"
	f := startFleet(t, dir, bin, pem, password, pki,
		"IVRPIN_NI_URL="+sims.CardHostURL, "IVRPIN_NI_BANK_ID=TB01",
		"IVRPIN_NI_ZPK_FILE="+curFile, "IVRPIN_NI_KEY_ID=zpk-2026",
		"IVRPIN_NI_ZPK_NEXT_FILE="+nextFile, "IVRPIN_NI_NEXT_KEY_ID=zpk-2027", "IVRPIN_NI_ZPK_NEXT_FROM="+from.Format(time.RFC3339),
		"IVRPIN_FIRST_DIGIT_TIMEOUT=20s", "IVRPIN_LIMIT_CALLER_MAX=1000", "IVRPIN_LIMIT_WITHHELD_MAX=1000")
	front, serves := f.front, f.serves
	for _, s := range serves {
		if !strings.Contains(s.out.String(), "new calls: ISO0 under TDES-128 key KCV") || !strings.Contains(s.out.String(), "(key id zpk-2027)") {
			t.Fatalf("serve does not say it has the next key:\n%s", s.out.String())
		}
	}
	ari.SetOutbound(&aritest.Outbound{URL: "wss://" + front + "/ari", Username: "asterisk", Password: password,
		TLS: &tls.Config{RootCAs: pki.CAPool, ServerName: "localhost"}})

	var mu sync.Mutex
	var pans []string
	newCard := func() string {
		mu.Lock()
		defer mu.Unlock()
		pan := testkit.LuhnPAN(fmt.Sprintf("400007%09d", len(pans)))
		sims.CardHost.AddCard(pan, "2812", "", "active", "7392")
		pans = append(pans, pan)
		return pan
	}
	call := func(pan string) error {
		ch, err := ari.PlaceCall(aritest.CallOptions{})
		if err != nil {
			return err
		}
		if err := ch.PressEachWhenAsked(prompts.AsksMedia, 20*time.Second, "1", pan+"#", "1228", "7392#", "4829#", "4829#"); err != nil {
			return fmt.Errorf("%s: %w", pan, err)
		}
		_, err = ch.WaitEnded(20 * time.Second)
		return err
	}
	// The straddler's first request (a mistyped current PIN) goes before
	// the instant; it mends its details after it, and its second request
	// re-seals the current PIN beside the new PIN's block of the first:
	// both must be under the key the call began with.
	straddler := newCard()
	errs := make(chan error, 100)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for time.Until(from) > 8*time.Second {
			time.Sleep(100 * time.Millisecond)
		}
		ch, err := ari.PlaceCall(aritest.CallOptions{})
		if err == nil {
			err = ch.PressEachWhenAsked(prompts.AsksMedia, 20*time.Second, "1", straddler+"#", "1228", "1357#", "4829#", "4829#")
		}
		if err == nil {
			err = ch.WaitPlayed(20*time.Second, "reason-details-mismatch", 1)
		}
		time.Sleep(time.Until(from) + 2*time.Second)
		if err == nil {
			err = ch.PressEachWhenAsked(prompts.AsksMedia, 20*time.Second, straddler+"#", "1228", "7392#")
		}
		if err == nil {
			_, err = ch.WaitEnded(20 * time.Second)
		}
		if err != nil {
			errs <- fmt.Errorf("the call across the instant: %w", err)
		}
	}()
	// Callers arrive every 700 ms from 6 s before the instant to 6 s after.
	for time.Until(from) > 6*time.Second {
		time.Sleep(100 * time.Millisecond)
	}
	for time.Until(from) > -6*time.Second {
		pan := newCard()
		wg.Add(1)
		go func() { defer wg.Done(); errs <- call(pan) }()
		time.Sleep(700 * time.Millisecond)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	for _, pan := range pans {
		if !sims.CardHost.PINIs(pan, "4829") {
			t.Errorf("%s: PIN not changed", pan)
		}
	}
	// Every request named a key the host holds, and was decoded with it.
	byID, straddled := map[string]int{}, 0
	for _, raw := range sims.CardHost.Received() {
		var r struct {
			NISrvRequest struct {
				Req struct {
					Body struct {
						Card  string `json:"card_number"`
						KeyID string `json:"encryption_key_id"`
					} `json:"body"`
				} `json:"request_card_pin_change"`
			} `json:"NISrvRequest"`
		}
		if err := json.Unmarshal(raw, &r); err != nil {
			t.Fatal(err)
		}
		b := r.NISrvRequest.Req.Body
		byID[b.KeyID]++
		if b.Card == straddler {
			straddled++
			if b.KeyID != "zpk-2026" {
				t.Errorf("the call that began before the instant sent key id %q after it, want zpk-2026", b.KeyID)
			}
		}
	}
	if straddled != 2 {
		t.Errorf("the call across the instant sent %d requests, want 2 (a mistyped PIN, then the change)", straddled)
	}
	decoded := sims.CardHost.Decoded()
	if byID["zpk-2026"] < 2 || byID["zpk-2027"] < 2 || decoded["zpk-2026"] != byID["zpk-2026"] || decoded["zpk-2027"] != byID["zpk-2027"] || len(byID) != 2 {
		t.Errorf("requests by key id %v, decoded by key id %v: want several under each key, each decoded with the key it names", byID, decoded)
	}
	for i, s := range serves {
		if s.cmd.ProcessState != nil {
			t.Errorf("serve %d stopped:\n%s", i+1, s.out.String())
		}
	}
	t.Logf("%d calls across the instant: requests by key id %v, every one decoded with the key it names; no restart", len(pans), byID)
}
