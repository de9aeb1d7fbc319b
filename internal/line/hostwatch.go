package line

import (
	"context"
	"net/url"
	"sync"
	"time"

	"github.com/sirupsen/logrus"
)

// hostWatch reaches each PIN host on a period with its client's own
// transport and TLS settings (a TCP connection and a TLS handshake;
// nothing is sent), says at warn, naming the setting, when one can no
// longer be reached and when it can again, and answers /readyz with what
// it last found.
type hostWatch struct {
	log   *logrus.Entry
	hosts []watchedHost

	mu        sync.Mutex
	reachable map[string]bool // by host:port, as /readyz shows them
}

// watchedHost is one host: the setting that names it, its address, and how
// its client reaches it.
type watchedHost struct {
	setting, what, addr string
	reach               func(context.Context) error
}

// hostWatchInterval is how often each host is reached; hostReachTimeout
// bounds one try.
var (
	hostWatchInterval = 10 * time.Second
	hostReachTimeout  = 3 * time.Second
)

// add watches the host of rawURL, which the setting names.
func (w *hostWatch) add(setting, what, rawURL string, reach func(context.Context) error) {
	u, err := url.Parse(rawURL)
	if err != nil || u.Host == "" {
		return
	}
	w.hosts = append(w.hosts, watchedHost{setting: setting, what: what, addr: u.Host, reach: reach})
}

// run reaches every host at once and then every interval until ctx ends.
func (w *hostWatch) run(ctx context.Context) {
	t := time.NewTicker(hostWatchInterval)
	defer t.Stop()
	for {
		w.once(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// once reaches each host and logs what changed.
func (w *hostWatch) once(ctx context.Context) {
	for _, h := range w.hosts {
		rctx, cancel := context.WithTimeout(ctx, hostReachTimeout)
		err := h.reach(rctx)
		cancel()
		if ctx.Err() != nil {
			return
		}
		w.mu.Lock()
		was, known := w.reachable[h.addr]
		if w.reachable == nil {
			w.reachable = map[string]bool{}
		}
		w.reachable[h.addr] = err == nil
		w.mu.Unlock()
		fields := logrus.Fields{"setting": h.setting, "host": h.addr}
		switch {
		case err != nil && (was || !known):
			w.log.WithFields(fields).WithError(err).Warn(h.what + " cannot be reached: the line is not ready (/readyz) until it can")
		case err == nil && known && !was:
			w.log.WithFields(fields).Warn(h.what + " can be reached again")
		}
	}
}

// Reachable is each host's last state (a host not tried yet is not
// reachable).
func (w *hostWatch) Reachable() map[string]bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make(map[string]bool, len(w.hosts))
	for _, h := range w.hosts {
		out[h.addr] = w.reachable[h.addr]
	}
	return out
}
