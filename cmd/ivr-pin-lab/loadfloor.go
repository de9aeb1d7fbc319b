package main

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/ivr-pin/ivr-pin/pinsvc/cardhost"
	"github.com/ivr-pin/ivr-pin/pinsvc/secret"
	"github.com/ivr-pin/ivr-pin/pinsvc/sim/simrun"
)

// loadFloor is the floor a burst of n callers is measured against, in the
// same run on the same machine: n PIN-change requests sent at once straight
// to the card-host simulator from this process, with no Asterisk, no ARI
// and no line, timed from the instant they are released to the
// simulator's receiving each (as the transports' "last key -> host request"
// is timed to the same event).
func loadFloor(n int) ([]time.Duration, error) {
	_, zpk := loadZPK()
	sims, err := simrun.Start(simrun.Options{BankID: "LOAD", ZPK: zpk})
	if err != nil {
		return nil, err
	}
	defer sims.Close()
	client, err := cardhost.New(sims.CardHostConfig())
	if err != nil {
		return nil, err
	}
	pans := make([]string, n)
	reqs := make([]cardhost.ChangeRequest, n)
	for i := range pans {
		pans[i] = withLuhn(fmt.Sprintf("499998%09d", i))
		sims.CardHost.AddCard(pans[i], "2812", "", "active", "7392")
		pan := secret.PAN(pans[i])
		o, err := client.Seal(pan, secret.PINFromString("7392"), time.Now())
		if err != nil {
			return nil, err
		}
		nw, err := client.Seal(pan, secret.PINFromString("4829"), time.Now())
		if err != nil {
			return nil, err
		}
		reqs[i] = cardhost.ChangeRequest{PAN: pan, Expiry: "2812", OldSealed: &o, NewSealed: &nw}
	}
	var mu sync.Mutex
	at := map[string]time.Time{}
	sims.CardHost.Observe(func(pan string) {
		mu.Lock()
		at[pan] = time.Now()
		mu.Unlock()
	})
	release := make(chan struct{})
	var wg sync.WaitGroup
	for i := range reqs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-release
			_, _ = client.ChangePIN(context.Background(), reqs[i])
		}()
	}
	start := time.Now()
	close(release)
	wg.Wait()
	var out []time.Duration
	for _, p := range pans {
		if t, ok := at[p]; ok {
			out = append(out, t.Sub(start))
		}
	}
	return out, nil
}
