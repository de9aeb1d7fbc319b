package line

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/sirupsen/logrus"

	"github.com/ivr-pin/ivr-pin/internal/audit"
	"github.com/ivr-pin/ivr-pin/pinsvc/contract"
	"github.com/ivr-pin/ivr-pin/pinsvc/outcome"
)

// journaled writes the audit attempt before each request that can change a
// PIN: the service's BeforeSend hook, on the call's context. If the attempt
// cannot be written, the request is not sent.
type journaled struct {
	contract.Service
	l *Line
}

func (j journaled) ChangePIN(ctx context.Context, c contract.Change) outcome.Result {
	c.BeforeSend = j.l.attempt(outcome.CardHost, "", c.Origin)
	return j.Service.ChangePIN(ctx, c)
}

func (j journaled) SetFirstPIN(ctx context.Context, s contract.FirstSetup) outcome.Result {
	s.BeforeSend = j.l.attempt(outcome.KeySecure, "card_no "+s.Card.ID, s.Origin)
	return j.Service.SetFirstPIN(ctx, s)
}

// attempt returns the hook that records one attempt: synced to the audit
// (file or standard output), then registered in Redis when the line shares
// it. Either failing stops the request.
func (l *Line) attempt(host outcome.Host, hostRef string, o contract.Origin) func(string) error {
	return func(ref string) error {
		a := audit.Attempt{MsgID: ref, Host: string(host), HostRef: hostRef, MaskedPAN: o.MaskedPAN, CallerID: o.CallerID,
			ChannelID: o.ChannelID, Instance: l.instance, Time: time.Now().UTC()}
		if err := l.audit.WriteAttempt(a); err != nil {
			l.auditFailed(err, o.ChannelID)
			return err
		}
		if l.registry != nil {
			if err := l.registry.register(a); err != nil {
				l.log.WithError(err).WithField("msg_id", ref).Error("attempt not registered in Redis: the change is not sent")
				return err
			}
		}
		return nil
	}
}

// closeOpenAttempts closes, with an interrupted record of this instance's,
// every attempt of the audit file that has no call record: changes a dead
// process sent (or was sending). Once each: a second start finds them
// closed; in a fleet, the Redis claim stops a survivor closing them too.
func (l *Line) closeOpenAttempts(ctx context.Context, path string) error {
	open, err := audit.OpenAttempts(path)
	if err != nil {
		return err
	}
	for _, a := range open {
		if err := l.closeAttempt(ctx, a); err != nil {
			return err
		}
	}
	return nil
}

// closeAttempt writes a's interrupted record, once across the fleet.
func (l *Line) closeAttempt(ctx context.Context, a audit.Attempt) error {
	if l.registry != nil {
		won, err := l.registry.claim(ctx, a.MsgID, l.instance)
		if err != nil {
			return err
		}
		if !won {
			return nil // closed elsewhere
		}
	}
	rec := audit.Interrupted(a, l.instance)
	if err := l.audit.Write(rec); err != nil {
		if l.registry != nil {
			l.registry.release(ctx, a.MsgID)
		}
		return err
	}
	if l.metrics != nil {
		l.metrics.ObserveCall(rec)
	}
	l.log.WithFields(logrus.Fields{"msg_id": a.MsgID, "host": a.Host, "pan": a.MaskedPAN, "attempt_instance": a.Instance,
		"attempt_time": a.Time}).Warn("closed an attempt whose call record was never written (its instance stopped): outcome ambiguous, end interrupted; reconcile it with the host by msg_id")
	if l.registry != nil {
		l.registry.clear(ctx, a.MsgID)
	}
	return nil
}

// registry keeps the fleet's attempts in Redis until their call record is
// written, and each instance's heartbeat, so that a survivor can close the
// attempts of an instance that died.
type registry struct {
	c        *redis.Client
	instance string
	// window: an attempt older than this (the longest host timeout plus
	// the call timeout) cannot still be awaited by a live call.
	window time.Duration
	ttl    time.Duration
}

const (
	attemptPrefix = "ivrpin:attempt:"
	closedPrefix  = "ivrpin:attempt-closed:"
	alivePrefix   = "ivrpin:alive:"
	heartbeat     = 5 * time.Second
)

func (r *registry) register(a audit.Attempt) error {
	b, err := json.Marshal(a)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	return r.c.Set(ctx, attemptPrefix+a.MsgID, b, r.ttl).Err()
}

// claim takes the right to close msgID: true for exactly one claimant.
func (r *registry) claim(ctx context.Context, msgID, by string) (bool, error) {
	return r.c.SetNX(ctx, closedPrefix+msgID, by, r.ttl).Result()
}

func (r *registry) release(ctx context.Context, msgID string) {
	_ = r.c.Del(context.WithoutCancel(ctx), closedPrefix+msgID).Err()
}

// clear forgets an attempt whose call record is written.
func (r *registry) clear(ctx context.Context, msgID string) {
	_ = r.c.Del(context.WithoutCancel(ctx), attemptPrefix+msgID).Err()
}

// beat says this instance is alive.
func (r *registry) beat(ctx context.Context) error {
	return r.c.Set(ctx, alivePrefix+r.instance, time.Now().UTC().Format(time.RFC3339), 3*heartbeat).Err()
}

// orphans lists attempts older than the window whose instance has no
// heartbeat.
func (r *registry) orphans(ctx context.Context) ([]audit.Attempt, error) {
	var out []audit.Attempt
	iter := r.c.Scan(ctx, 0, attemptPrefix+"*", 200).Iterator()
	for iter.Next(ctx) {
		b, err := r.c.Get(ctx, iter.Val()).Bytes()
		if errors.Is(err, redis.Nil) {
			continue
		}
		if err != nil {
			return out, err
		}
		var a audit.Attempt
		if json.Unmarshal(b, &a) != nil || time.Since(a.Time) < r.window || a.Instance == r.instance {
			continue
		}
		alive, err := r.c.Exists(ctx, alivePrefix+a.Instance).Result()
		if err != nil {
			return out, err
		}
		if alive == 0 {
			out = append(out, a)
		}
	}
	return out, iter.Err()
}

// watchFleet beats this instance's heartbeat and closes the attempts of
// instances that died, until ctx ends.
func (l *Line) watchFleet(ctx context.Context) {
	tick := time.NewTicker(heartbeat)
	defer tick.Stop()
	for n := 0; ; n++ {
		if err := l.registry.beat(ctx); err != nil && ctx.Err() == nil {
			l.log.WithError(err).Warn("fleet heartbeat not written to Redis")
		}
		if n%2 == 0 {
			orphans, err := l.registry.orphans(ctx)
			if err != nil && ctx.Err() == nil {
				l.log.WithError(err).Warn("could not look for attempts of instances that stopped")
			}
			for _, a := range orphans {
				if err := l.closeAttempt(ctx, a); err != nil && ctx.Err() == nil {
					l.log.WithError(err).WithField("msg_id", a.MsgID).Error("could not close an attempt of an instance that stopped; will try again")
				}
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// auditFailed records an audit write that failed: logged, counted, and
// /readyz 503 until a write succeeds.
func (l *Line) auditFailed(err error, channel string) {
	l.auditErr.Store(&err)
	if l.metrics != nil {
		l.metrics.AuditWriteFailed()
	}
	l.log.WithError(err).WithField("channel", channel).Error("audit record not written: /readyz is 503 until a record is written")
}

// instanceID is IVRPIN_INSTANCE_ID, or this host's name and process id.
func instanceID(configured, hostname string, pid int) string {
	if configured != "" {
		return configured
	}
	return fmt.Sprintf("%s-%d", hostname, pid)
}
