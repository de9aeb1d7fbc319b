package ivr

import "context"

// Transport brings calls to a Server: Inbound or Outbound.
type Transport interface {
	// Mode is "inbound" or "outbound".
	Mode() string
	// start connects or listens, failing fast.
	start(ctx context.Context, s *Server) error
	// run delivers events until ctx ends.
	run(ctx context.Context)
	// draining: stop taking new connections (calls in progress go on).
	draining()
	// ready: takes calls now.
	ready() bool
	// reconnects counts connections re-established after a loss.
	reconnects() int64
}

// Mode is the transport's mode ("inbound" or "outbound").
func (s *Server) Mode() string { return s.cfg.Transport.Mode() }

// Reconnects counts inbound reconnections (outbound: 0).
func (s *Server) Reconnects() int64 { return s.cfg.Transport.reconnects() }

// ListenerStats counts what the outbound listener turned away; ok is false
// for the inbound transport, which listens for nothing.
func (s *Server) ListenerStats() (stats ListenerStats, ok bool) {
	if o, isOut := s.cfg.Transport.(*outbound); isOut {
		return o.Stats(), true
	}
	return ListenerStats{}, false
}
