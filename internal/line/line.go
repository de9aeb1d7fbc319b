// Package line is the PIN line on top of the ivr call server: it reads the
// Stasis arguments and transfer variables, runs the flow for each call,
// turns calls away during a drain, ends calls found unclaimed after a
// reconnect, and writes one audit record per call. Build is the one wiring
// function: serve, console, load and the end-to-end tests all use it, so
// the tests run the wiring production runs.
package line

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/ivr-pin/ivr-pin/internal/audit"
	"github.com/ivr-pin/ivr-pin/ivr"
	"github.com/ivr-pin/ivr-pin/prompts"
)

// handle runs one call, whatever way it arrived.
func (l *Line) handle(c *ivr.Call) {
	rec := audit.Record{Instance: l.instance, ChannelID: c.ID, CallerID: c.CallerID, Transport: l.Server.Mode(), Start: c.Start, Outcome: "none"}
	finished := false
	defer func() {
		if !finished {
			// The flow panicked (the server recovers and hangs up).
			rec.End = "error"
		}
		rec.Duration = time.Since(rec.Start)
		l.ended(rec)
	}()
	ctx := c.Context()
	c.Log.WithFields(logrus.Fields{"transport": rec.Transport, "arrival": c.Arrival.String()}).Debug("call started")
	switch c.Arrival {
	case ivr.DuringDrain:
		rec.End = "turned_away"
		l.turnAway(ctx, c)
		finished = true
		return
	case ivr.Unclaimed:
		// It entered while we were away and nobody ran its flow.
		rec.End = "unclaimed"
		_ = c.Say(ctx, prompts.P(prompts.ResultUnavailable).MediaURI())
		_ = c.Hangup(ctx)
		finished = true
		return
	}
	if err := c.Answer(ctx); err != nil {
		rec.End = "hangup"
		finished = true
		return
	}
	panRead := false
	call := ParseTransfer(c.Args, func(name string) string {
		v, _ := c.Variable(ctx, name)
		panRead = panRead || (name == "IVRPIN_PAN" && v != "")
		return v
	})
	if panRead {
		// Read once: the card number does not stay on the channel for
		// the dialplan, a CLI command or another app to find.
		if err := c.SetVariable(ctx, "IVRPIN_PAN", ""); err != nil {
			l.log.WithError(err).WithField("channel", c.ID).Warn("IVRPIN_PAN could not be cleared from the channel")
		}
	}
	if call.Unsafe != "" {
		l.log.WithField("channel", c.ID).Warn("call refused its Stasis arguments: " + call.Unsafe)
	}
	call.ChannelID, call.CallerID = c.ID, c.CallerID
	rec.Transferred = call.Return != nil || call.Mode != ""
	res := l.Flow.Run(ctx, channel{c}, call)
	rec.Language, rec.Path, rec.MaskedPAN, rec.End = res.Language, string(res.Path), res.MaskedPAN, res.End
	if c.Forced() {
		// Ended by the drain deadline, not by the caller.
		rec.End = "drain_deadline"
	}
	rec.Retries, rec.Returned, rec.AgentReason, rec.Attempts = res.Retries, res.Returned, res.AgentReason, res.MsgIDs
	if res.LangFallback != "" {
		rec.LangFallback = printable(res.LangFallback)
		l.warnLangFallback(rec.LangFallback, res.Language)
	}
	if res.Outcome != nil {
		rec.Host, rec.MsgID, rec.ResultCode, rec.Outcome = string(res.Outcome.Host), res.Outcome.MsgID, res.Outcome.Code, string(res.Outcome.Kind)
		rec.HostRef, rec.Reason = res.Outcome.Reference, res.Outcome.Description
	}
	c.Log.WithFields(logrus.Fields{"path": rec.Path, "end": rec.End, "outcome": rec.Outcome, "pan": rec.MaskedPAN}).Info("call ended")
	finished = true
}

// turnAway answers a call that arrived during a drain: to the drain
// fallback if one is set, else a short closing message.
func (l *Line) turnAway(ctx context.Context, c *ivr.Call) {
	if err := c.Answer(ctx); err != nil {
		return
	}
	if t := l.closing; t != nil {
		_ = channel{c}.Continue(ctx, *t)
		return
	}
	_ = c.Say(ctx, prompts.P(prompts.ServiceClosing).MediaURI())
	_ = c.Hangup(ctx)
}

// AuditReady is nil while audit records are written, else the last error.
func (l *Line) AuditReady() error {
	if p := l.auditErr.Load(); p != nil {
		return fmt.Errorf("audit write failed: %v", *p)
	}
	return nil
}

// ReopenAudit reopens IVRPIN_AUDIT_FILE (SIGHUP, after logrotate moved it).
// Standard output needs nothing.
func (l *Line) ReopenAudit() error {
	if f, ok := l.audit.(*audit.File); ok {
		return f.Reopen()
	}
	return nil
}

func (l *Line) ended(r audit.Record) {
	if l.metrics != nil {
		l.metrics.ObserveCall(r)
	}
	if l.audit != nil {
		if err := l.audit.Write(r); err != nil {
			// The call is not held up by it (it has ended), but the line
			// is not ready until a record is written again: a balancer
			// sends new calls where the audit works. Its attempts stay
			// open, to be closed as interrupted.
			l.auditFailed(err, r.ChannelID)
		} else {
			if l.auditErr.Swap(nil) != nil {
				l.log.Warn("audit records are written again")
			}
			if l.registry != nil {
				for _, id := range r.Attempts {
					l.registry.clear(context.Background(), id)
				}
			}
		}
	}
	if l.onCallEnd != nil {
		l.onCallEnd(r)
	}
}

// warnLangFallback logs, once per language, that a call asked for one the
// line does not have. The set is bounded: the names come from dialplans and
// channel variables, and a flood of odd ones must not grow memory or logs.
func (l *Line) warnLangFallback(asked, played string) {
	l.langMu.Lock()
	defer l.langMu.Unlock()
	if l.langWarned == nil {
		l.langWarned = map[string]bool{}
	}
	if l.langWarned[asked] || len(l.langWarned) >= maxLangWarnings {
		return
	}
	l.langWarned[asked] = true
	l.log.WithFields(logrus.Fields{"asked": asked, "played": played, "languages": strings.Join(l.cfg.Languages, ",")}).
		Warn("a call asked for a language the line does not have and hears the default (IVRPIN_LANGUAGES; logged once per language)")
}

// maxLangWarnings bounds the languages warned about.
const maxLangWarnings = 64

// printable keeps a name from a dialplan fit for a log or a record: at most
// 16 characters of letters, digits, '-' and '_'.
func printable(s string) string {
	var b strings.Builder
	for _, r := range s {
		if b.Len() >= 16 {
			break
		}
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' {
			b.WriteRune(r)
		} else {
			b.WriteByte('?')
		}
	}
	return b.String()
}
