package ivr

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sirupsen/logrus"
)

// ListenerStats counts what the outbound listener turned away. Every field
// only grows.
type ListenerStats struct {
	// ConnectionsOverLimit were closed at once: the listener held its
	// maximum of open connections.
	ConnectionsOverLimit int64
	// NotUpgraded were closed because they had not become a websocket in
	// time, whatever they sent (one that sends no request at all meets the
	// HTTP server's 5 s header timeout first and is not counted here).
	NotUpgraded int64
	// NoCall were authenticated websockets closed because they brought no
	// call in time.
	NoCall int64
	// LoginsRefused were answered 401 (missing or wrong credentials).
	LoginsRefused int64
	// LoginsThrottled were answered 429: their source had failed too often
	// in the current minute.
	LoginsThrottled int64
}

// guard bounds what the outbound listener holds and makes password
// guessing cost time. It knows sources by address only: the TCP peer, or
// the address a trusted balancer's PROXY protocol header names.
type guard struct {
	maxConns       int64
	upgradeTimeout time.Duration
	noCallTimeout  time.Duration
	maxFailures    int
	log            *logrus.Entry

	open                                               atomic.Int64
	overLimit, notUpgraded, noCall, refused, throttled atomic.Int64

	mu      sync.Mutex
	sources map[string]*source
}

// source is one address's failed logins in its current minute.
type source struct {
	window   time.Time // start of the minute being counted
	failures int
	logged   time.Time // last log line for this source
	unlogged int       // failures since that line
}

// maxSources bounds the failure table; past it, stale entries are swept
// (a spoofed-source flood cannot grow it without bound).
const maxSources = 100000

func (g *guard) stats() ListenerStats {
	return ListenerStats{ConnectionsOverLimit: g.overLimit.Load(), NotUpgraded: g.notUpgraded.Load(), NoCall: g.noCall.Load(),
		LoginsRefused: g.refused.Load(), LoginsThrottled: g.throttled.Load()}
}

// throttledNow reports whether src has used up its failures this minute.
func (g *guard) throttledNow(src string, now time.Time) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	s := g.sources[src]
	return s != nil && now.Sub(s.window) < time.Minute && s.failures >= g.maxFailures
}

// failed counts a refused login from src and logs at most once a minute
// per source, with the count.
func (g *guard) failed(src string, now time.Time) {
	g.refused.Add(1)
	g.mu.Lock()
	if g.sources == nil {
		g.sources = map[string]*source{}
	}
	s := g.sources[src]
	if s == nil {
		if len(g.sources) >= maxSources {
			for k, v := range g.sources {
				if now.Sub(v.window) >= time.Minute {
					delete(g.sources, k)
				}
			}
		}
		s = &source{window: now}
		g.sources[src] = s
	}
	if now.Sub(s.window) >= time.Minute {
		s.window, s.failures = now, 0
	}
	s.failures++
	s.unlogged++
	var logCount int
	if now.Sub(s.logged) >= time.Minute {
		logCount, s.logged, s.unlogged = s.unlogged, now, 0
	}
	throttled := s.failures >= g.maxFailures
	g.mu.Unlock()
	if logCount > 0 {
		g.log.WithFields(logrus.Fields{"source": src, "failed_logins": logCount, "throttled": throttled}).
			Warn("refused ARI websocket logins (wrong or missing credentials)")
	}
}

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

// boundedListener closes a connection past the limit at once (counted),
// and closes any connection that has not upgraded in time.
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
		if l.g.open.Add(1) > l.g.maxConns {
			l.g.open.Add(-1)
			l.g.overLimit.Add(1)
			_ = c.Close()
			continue
		}
		gc := &guardedConn{Conn: c, g: l.g}
		gc.timer = time.AfterFunc(l.g.upgradeTimeout, gc.expire)
		return gc, nil
	}
}

// guardedConn is one accepted connection, counted while open.
type guardedConn struct {
	net.Conn
	g        *guard
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
