package ivr

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/golang-lru/v2/simplelru"
	"github.com/sirupsen/logrus"
)

// ListenerStats counts what the outbound listener turned away. Every field
// only grows.
type ListenerStats struct {
	// ConnectionsOverLimit were closed at once: the listener held its
	// maximum of open connections.
	ConnectionsOverLimit int64
	// ConnectionsSourceShare were closed at once: their source, not logged
	// in lately, held its share of connections already.
	ConnectionsSourceShare int64
	// ConnectionsReserved were closed at once: only the slots kept for
	// sources that logged in lately were left.
	ConnectionsReserved int64
	// NotUpgraded were closed because they had not become a websocket in
	// time, whatever they sent (one that sends no request at all meets the
	// HTTP server's 5 s header timeout first and is not counted here).
	NotUpgraded int64
	// NoCall were authenticated websockets closed because they brought no
	// call in time.
	NoCall int64
	// PersistentRefused were websockets that registered as persistent past
	// the maximum, or from a source not allowed one, and were closed.
	PersistentRefused int64
	// NoLife were persistent websockets closed because they did not answer
	// the listener's ping in time.
	NoLife int64
	// LoginsRefused were answered 401 (missing or wrong credentials).
	LoginsRefused int64
	// LoginsThrottled were answered 429: their source had failed too often
	// in the current minute.
	LoginsThrottled int64
	// LoginsSlowed were answered 429: failures across all sources passed
	// the budget of the current second, and their source had not logged in
	// lately.
	LoginsSlowed int64
	// SourcesEvicted were dropped from the failure table, oldest first, to
	// keep it at its bound.
	SourcesEvicted int64
}

// guard bounds what the outbound listener holds and makes password
// guessing cost time. It knows sources by address: the TCP peer, or the
// address a trusted balancer's PROXY protocol header names; an IPv6 source
// by its network (a /64 by default: one host commonly has a whole /64).
//
// A source that logged in lately is known: its connections may take every
// slot, while the others share what is left after a reserve, each up to
// its share, so a flood without the password never locks Asterisk out.
type guard struct {
	maxConns       int64
	reserve        int64 // slots only known sources may take
	perSource      int   // open connections an unknown source may hold
	upgradeTimeout time.Duration
	noCallTimeout  time.Duration
	maxFailures    int           // per source per minute
	perSecond      int           // failures across all sources per second
	knownFor       time.Duration // how long a login makes a source known
	v6Prefix       int
	log            *logrus.Entry

	open atomic.Int64
	overLimit, sourceShare, reserved, notUpgraded, noCall, persistentRefused,
	noLife, refused, throttled, slowed, evicted atomic.Int64

	mu       sync.Mutex
	unproven int64          // open connections of unknown sources
	bySource map[string]int // open connections of each unknown source
	failures *simplelru.LRU[string, *source]
	known    *simplelru.LRU[string, time.Time] // last login
	second   time.Time                         // the second being counted
	inSecond int                               // failures across all sources in it
	// log lines about failed logins in the current second, and those
	// left out since the last line.
	logSecond            time.Time
	logLines, suppressed int
}

// source is one address's failed logins in its current minute.
type source struct {
	window   time.Time // start of the minute being counted
	failures int
	logged   time.Time // last log line for this source
	unlogged int       // failures since that line
}

// newGuard makes a guard; maxSources bounds each table (the failures, the
// sources known): past it the oldest entry is dropped, counted.
func newGuard(cfg OutboundConfig, log *logrus.Entry) *guard {
	g := &guard{maxConns: int64(cfg.MaxConnections), reserve: int64(cfg.ReservedConnections), perSource: cfg.MaxConnectionsPerSource,
		upgradeTimeout: cfg.UpgradeTimeout, noCallTimeout: cfg.NoCallTimeout, maxFailures: cfg.MaxFailures,
		perSecond: cfg.MaxFailuresPerSecond, knownFor: cfg.KnownFor, v6Prefix: cfg.IPv6Prefix, log: log,
		bySource: map[string]int{}}
	g.failures, _ = simplelru.NewLRU[string, *source](cfg.MaxSources, func(string, *source) { g.evicted.Add(1) })
	g.known, _ = simplelru.NewLRU[string, time.Time](cfg.MaxSources, nil)
	return g
}

func (g *guard) stats() ListenerStats {
	return ListenerStats{ConnectionsOverLimit: g.overLimit.Load(), ConnectionsSourceShare: g.sourceShare.Load(),
		ConnectionsReserved: g.reserved.Load(), NotUpgraded: g.notUpgraded.Load(), NoCall: g.noCall.Load(),
		PersistentRefused: g.persistentRefused.Load(), NoLife: g.noLife.Load(), LoginsRefused: g.refused.Load(),
		LoginsThrottled: g.throttled.Load(), LoginsSlowed: g.slowed.Load(), SourcesEvicted: g.evicted.Load()}
}

// sourceKey is what a remote address is counted as: an IPv4 address (an
// IPv4-mapped IPv6 one too), or the network of an IPv6 address.
func (g *guard) sourceKey(remote string) string {
	host := sourceOf(remote)
	a, err := netip.ParseAddr(host)
	if err != nil {
		return host
	}
	a = a.Unmap()
	if a.Is4() {
		return a.String()
	}
	p, err := a.WithZone("").Prefix(g.v6Prefix)
	if err != nil {
		return a.String()
	}
	return p.String()
}

// isKnown reports whether src logged in within knownFor (g.mu held).
func (g *guard) isKnown(src string, now time.Time) bool {
	at, ok := g.known.Peek(src)
	return ok && now.Sub(at) < g.knownFor
}

// loggedIn makes src known and moves c, when it was counted as an
// unknown source's, out of that count.
func (g *guard) loggedIn(src string, c *guardedConn, now time.Time) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.known.Add(src, now)
	if c != nil && c.unproven {
		c.unproven = false
		g.release(c.src)
	}
}

// release gives back an unknown source's slot (g.mu held).
func (g *guard) release(src string) {
	g.unproven--
	if g.bySource[src]--; g.bySource[src] <= 0 {
		delete(g.bySource, src)
	}
}

// admit takes a slot for a new connection from src, or says why not:
// "" admitted (unproven: counted as an unknown source's).
func (g *guard) admit(src string, now time.Time) (unproven bool, refusal *atomic.Int64) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.open.Load() >= g.maxConns {
		return false, &g.overLimit
	}
	if !g.isKnown(src, now) {
		switch {
		case g.unproven >= g.maxConns-g.reserve:
			return false, &g.reserved
		case g.bySource[src] >= g.perSource:
			return false, &g.sourceShare
		}
		g.unproven++
		g.bySource[src]++
		unproven = true
	}
	g.open.Add(1)
	return unproven, nil
}

// refuseLogin says whether a login from src must wait (429), and counts
// it: its source failed too often this minute, or failures across all
// sources passed this second's budget and src has not logged in lately
// (the right password waits too, which is the point).
func (g *guard) refuseLogin(src string, now time.Time) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if s, ok := g.failures.Peek(src); ok && now.Sub(s.window) < time.Minute && s.failures >= g.maxFailures {
		g.throttled.Add(1)
		return true
	}
	if now.Sub(g.second) < time.Second && g.inSecond >= g.perSecond && !g.isKnown(src, now) {
		g.slowed.Add(1)
		return true
	}
	return false
}

// failed counts a refused login from src and logs at most once a minute
// per source, with the count. Its cost does not grow with the table.
func (g *guard) failed(src string, now time.Time) {
	g.refused.Add(1)
	g.mu.Lock()
	if now.Sub(g.second) >= time.Second {
		g.second, g.inSecond = now.Truncate(time.Second), 0
	}
	g.inSecond++
	s, ok := g.failures.Get(src)
	if !ok {
		s = &source{window: now}
		g.failures.Add(src, s)
	}
	if now.Sub(s.window) >= time.Minute {
		s.window, s.failures = now, 0
	}
	s.failures++
	s.unlogged++
	var logCount, suppressed int
	if now.Sub(s.logged) >= time.Minute {
		// A line per source a minute, and at most logLinesPerSecond
		// lines across sources: a flood from many addresses must not
		// flood the log. What is left out is counted in the next line.
		if now.Sub(g.logSecond) >= time.Second {
			g.logSecond, g.logLines = now, 0
		}
		if g.logLines < logLinesPerSecond {
			g.logLines++
			logCount, s.logged, s.unlogged = s.unlogged, now, 0
			suppressed, g.suppressed = g.suppressed, 0
		} else {
			g.suppressed++
		}
	}
	throttled := s.failures >= g.maxFailures
	g.mu.Unlock()
	if logCount > 0 {
		f := logrus.Fields{"source": src, "failed_logins": logCount, "throttled": throttled}
		if suppressed > 0 {
			f["lines_left_out"] = suppressed
		}
		g.log.WithFields(f).Warn("refused ARI websocket logins (wrong or missing credentials)")
	}
}

// logLinesPerSecond bounds the failed-login lines across all sources.
const logLinesPerSecond = 10

// credentialsMatch compares what a peer sent with what is expected. Both
// sides are hashed first, so the comparison takes the same time whatever
// the lengths, and both fields are always compared.
func credentialsMatch(gotUser, gotPass, wantUser, wantPass string) bool {
	gu, gp := sha256.Sum256([]byte(gotUser)), sha256.Sum256([]byte(gotPass))
	wu, wp := sha256.Sum256([]byte(wantUser)), sha256.Sum256([]byte(wantPass))
	return subtle.ConstantTimeCompare(gu[:], wu[:])&subtle.ConstantTimeCompare(gp[:], wp[:]) == 1
}

// sourceOf is the address part of a remote address.
func sourceOf(remote string) string {
	if h, _, err := net.SplitHostPort(remote); err == nil {
		return h
	}
	return remote
}

// boundedListener closes at once (counted) a connection the guard does not
// admit, and closes any connection that has not upgraded in time.
type boundedListener struct {
	net.Listener
	g *guard
}

func (l *boundedListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		src := l.g.sourceKey(c.RemoteAddr().String())
		unproven, refusal := l.g.admit(src, time.Now())
		if refusal != nil {
			refusal.Add(1)
			_ = c.Close()
			continue
		}
		gc := &guardedConn{Conn: c, g: l.g, src: src, unproven: unproven}
		gc.timer = time.AfterFunc(l.g.upgradeTimeout, gc.expire)
		return gc, nil
	}
}

// guardedConn is one accepted connection, counted while open.
type guardedConn struct {
	net.Conn
	g        *guard
	src      string // its source key
	unproven bool   // counted as an unknown source's (guard.mu)
	timer    *time.Timer
	upgraded atomic.Bool
	once     sync.Once
}

func (c *guardedConn) expire() {
	if !c.upgraded.Load() {
		c.g.notUpgraded.Add(1)
		_ = c.Close()
	}
}

// markUpgraded keeps the connection: it is an authenticated websocket now.
func (c *guardedConn) markUpgraded() {
	c.upgraded.Store(true)
	c.timer.Stop()
}

func (c *guardedConn) Close() error {
	c.once.Do(func() {
		c.timer.Stop()
		c.g.mu.Lock()
		if c.unproven {
			c.unproven = false
			c.g.release(c.src)
		}
		c.g.mu.Unlock()
		c.g.open.Add(-1)
	})
	return c.Conn.Close()
}

// connKey carries the accepted connection into a request's context.
type connKey struct{}

// guardedOf finds the guardedConn under a request's connection (through
// TLS).
func guardedOf(ctx context.Context) *guardedConn {
	c, _ := ctx.Value(connKey{}).(net.Conn)
	if tc, ok := c.(*tls.Conn); ok {
		c = tc.NetConn()
	}
	gc, _ := c.(*guardedConn)
	return gc
}

// rateLog writes what the HTTP server reports (accept errors, failed TLS
// handshakes) at warn, at most once a second, with how many there were.
type rateLog struct {
	log *logrus.Entry
	mu  sync.Mutex
	at  time.Time
	n   int
}

func (r *rateLog) Write(p []byte) (int, error) {
	r.mu.Lock()
	r.n++
	now := time.Now()
	if now.Sub(r.at) < time.Second {
		r.mu.Unlock()
		return len(p), nil
	}
	n := r.n
	r.at, r.n = now, 0
	r.mu.Unlock()
	r.log.WithField("count", n).Warn(strings.TrimSpace(string(p)))
	return len(p), nil
}
