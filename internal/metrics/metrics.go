// Package metrics exposes the line's Prometheus metrics and its health
// endpoints: /metrics, /healthz (the process is alive) and /readyz (ARI is
// connected, the configuration loaded, and the hosts accept connections).
// Labels carry paths, outcomes, steps and reasons: never a PAN or a PIN.
package metrics

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/ivr-pin/ivr-pin/flows"
	"github.com/ivr-pin/ivr-pin/internal/audit"
	"github.com/ivr-pin/ivr-pin/internal/buildinfo"
	"github.com/ivr-pin/ivr-pin/ivr"
	"github.com/ivr-pin/ivr-pin/pinsvc/contract"
	"github.com/ivr-pin/ivr-pin/pinsvc/keysecure"
	"github.com/ivr-pin/ivr-pin/pinsvc/outcome"
	"github.com/ivr-pin/ivr-pin/pinsvc/policy"
)

// Metrics is the line's registry.
type Metrics struct {
	Registry    *prometheus.Registry
	calls       *prometheus.CounterVec
	retries     *prometheus.CounterVec
	hostLatency *prometheus.HistogramVec
	ksRequests  *prometheus.CounterVec
	ksRefused   prometheus.Counter
	ksBudget    prometheus.Gauge
	lab         prometheus.Gauge
	locked      prometheus.Gauge
	guardWaits  prometheus.Counter
	auditErrors prometheus.Counter
	langFalls   prometheus.Counter
	toAgent     *prometheus.CounterVec
	duration    *prometheus.HistogramVec
	storeErrors prometheus.Counter
}

// CallEnds are the ends of a call (the audit's end), each a label value of
// ivrpin_calls_total and ivrpin_call_duration_seconds from start-up.
var CallEnds = []string{"outcome", "hangup", "too_many_tries", "agent", "limited", "line_guard", "limit_store_unavailable",
	"pin_key_unavailable", "turned_away", "drain_deadline", "unclaimed", "timeout", "error", "interrupted"}

// hostResults are the results a host request can come to.
var hostResults = map[string][]outcome.Kind{
	string(outcome.CardHost):  {outcome.Changed, outcome.WrongPIN, outcome.NotEligible, outcome.ExpiryMismatch, outcome.UnknownCard, outcome.NoPINYet, outcome.WeakPIN, outcome.Rejected, outcome.Unavailable, outcome.Ambiguous},
	string(outcome.KeySecure): {outcome.Changed, outcome.Verified, outcome.DetailsMismatch, outcome.CannotVerify, outcome.NotEligible, outcome.WeakPIN, outcome.Rejected, outcome.Unavailable, outcome.Ambiguous},
}

// AuditWriteFailed counts an audit record that could not be written.
func (m *Metrics) AuditWriteFailed() { m.auditErrors.Inc() }

// KeySecureRequest counts one request sent to KeySecure, by kind.
func (m *Metrics) KeySecureRequest(kind string) { m.ksRequests.WithLabelValues(kind).Inc() }

// LabMode shows whether the line runs with IVRPIN_LAB (1): lab key parts
// allowed. A production line alerts on it.
func (m *Metrics) LabMode(on bool) {
	v := 0.0
	if on {
		v = 1
	}
	m.lab.Set(v)
}

// MemoryLocked shows whether serve locked its memory (1) against swap.
func (m *Metrics) MemoryLocked(on bool) {
	v := 0.0
	if on {
		v = 1
	}
	m.locked.Set(v)
}

// KeySecureBudget shows the line's KeySecure request budget (0: none).
func (m *Metrics) KeySecureBudget(max int) { m.ksBudget.Set(float64(max)) }

// KeySecureRefused counts a request the spent budget kept from being sent.
func (m *Metrics) KeySecureRefused() { m.ksRefused.Inc() }

// CallServer is the running call server the live gauges read.
type CallServer interface {
	Active() int64
	Ready() bool
	Mode() string
	Reconnects() int64
	Undecodable() int64
}

// New registers the metrics; srv (may be nil: see RegisterServer) supplies
// the live gauges.
func New(srv CallServer) *Metrics {
	m := &Metrics{Registry: prometheus.NewRegistry()}
	m.calls = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ivrpin_calls_total",
		Help: "Calls ended, by path (change, setup, agent) and outcome (changed, wrong_pin, ..., none) and how they ended."},
		[]string{"path", "outcome", "end"})
	m.retries = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ivrpin_retries_total",
		Help: "Refused entries, by step and reason."}, []string{"step", "reason"})
	m.hostLatency = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "ivrpin_host_request_seconds",
		Help:    "Time from submitting to a host to its outcome, by host and result.",
		Buckets: []float64{0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 16}}, []string{"host", "result"})
	m.ksRequests = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ivrpin_keysecure_requests_total",
		Help: "Requests sent to KeySecure, by kind (token, list, detail, private_info, set): what each first setup costs."}, []string{"kind"})
	for _, k := range keysecure.RequestKinds {
		m.ksRequests.WithLabelValues(k)
	}
	m.ksRefused = prometheus.NewCounter(prometheus.CounterOpts{Name: "ivrpin_keysecure_requests_refused_total",
		Help: "Requests not sent to KeySecure because the line's budget (IVRPIN_LIMIT_KEYSECURE_MAX in IVRPIN_LIMIT_KEYSECURE_WINDOW) was spent."})
	m.locked = prometheus.NewGauge(prometheus.GaugeOpts{Name: "ivrpin_memory_locked",
		Help: "1 when serve's memory is locked (mlockall): no page of it, a PIN in flight included, can be written to swap. 0: see serve's start-up warning (LimitMEMLOCK=infinity)."})
	m.guardWaits = prometheus.NewCounter(prometheus.CounterOpts{Name: "ivrpin_line_guard_waits_total",
		Help: "Host requests that waited for a place in the line guard: requests in flight plus recent failures filled IVRPIN_LIMIT_LINE_FAILED_MAX. Rising with no guessing: the maximum is below the line's requests in flight."})
	m.lab = prometheus.NewGauge(prometheus.GaugeOpts{Name: "ivrpin_lab_mode",
		Help: "1 when the line runs with IVRPIN_LAB=true: a software zone PIN key or a SoftHSM2 token is accepted; never in production."})
	m.ksBudget = prometheus.NewGauge(prometheus.GaugeOpts{Name: "ivrpin_keysecure_budget_requests",
		Help: "The line's KeySecure request budget per window, shared by the fleet (0: none); compare with rate of ivrpin_keysecure_requests_total."})
	m.auditErrors = prometheus.NewCounter(prometheus.CounterOpts{Name: "ivrpin_audit_write_errors_total",
		Help: "Audit records that could not be written (the line is not ready until one is)."})
	m.langFalls = prometheus.NewCounter(prometheus.CounterOpts{Name: "ivrpin_language_fallbacks_total",
		Help: "Calls that asked for a language the line does not have and heard the default (the log names the language once)."})
	m.toAgent = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ivrpin_agent_transfers_total",
		Help: "Calls sent to the agents, by why: caller_choice from the menu, or what the call could not finish."}, []string{"reason"})
	m.duration = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "ivrpin_call_duration_seconds",
		Help:    "Time from a call's arrival to its end, by how it ended.",
		Buckets: []float64{5, 15, 30, 45, 60, 90, 120, 180, 300, 600}}, []string{"end"})
	m.storeErrors = prometheus.NewCounter(prometheus.CounterOpts{Name: "ivrpin_attempt_store_errors_total",
		Help: "Calls ended because the attempt store (bbolt or Redis) could not be asked: the line fails closed."})
	// Every series from start-up, so alerts and dashboards see 0, not
	// nothing, before the first call.
	for _, end := range CallEnds {
		m.duration.WithLabelValues(end)
		m.calls.WithLabelValues("none", "none", end)
		for _, path := range []string{"change", "setup"} {
			m.calls.WithLabelValues(path, "none", end)
		}
	}
	for _, path := range []string{"change", "setup"} {
		for _, k := range outcome.Kinds {
			m.calls.WithLabelValues(path, string(k), "outcome")
		}
	}
	m.calls.WithLabelValues("agent", "none", "agent")
	for host, kinds := range hostResults {
		for _, k := range kinds {
			m.hostLatency.WithLabelValues(host, string(k))
		}
	}
	m.toAgent.WithLabelValues("caller_choice")
	for _, step := range flows.Steps {
		m.retries.WithLabelValues(step, "no_input") // every step can go unanswered
	}
	bi := buildinfo.Read()
	build := prometheus.NewGauge(prometheus.GaugeOpts{Name: "ivrpin_build_info",
		Help:        "Always 1; the labels say which build is running.",
		ConstLabels: prometheus.Labels{"version": bi.Version, "revision": bi.Revision, "goversion": bi.GoVersion}})
	build.Set(1)
	m.Registry.MustRegister(m.calls, m.retries, m.hostLatency, m.ksRequests, m.ksRefused, m.ksBudget, m.lab, m.locked, m.guardWaits, m.auditErrors, m.langFalls, m.toAgent, m.duration, m.storeErrors, build,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if srv != nil {
		m.RegisterServer(srv)
	}
	return m
}

// RegisterServer adds the gauges read from the running call server (it is
// created after the metrics: the line's audit hook, which feeds them, is
// wired first).
func (m *Metrics) RegisterServer(app CallServer) {
	{
		m.Registry.MustRegister(
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "ivrpin_active_calls", Help: "Calls in progress."},
				func() float64 { return float64(app.Active()) }),
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "ivrpin_ari_ready", Help: "1 while ARI calls can arrive: inbound, the events websocket is connected; outbound, the listener is open.",
				ConstLabels: prometheus.Labels{"transport": app.Mode()}},
				func() float64 {
					if app.Ready() {
						return 1
					}
					return 0
				}),
			prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "ivrpin_ari_reconnects_total", Help: "ARI reconnections after the first connection."},
				func() float64 { return float64(app.Reconnects()) }),
			prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "ivrpin_ari_undecodable_events_total", Help: "ARI events skipped because ari/v5 cannot decode their type."},
				func() float64 { return float64(app.Undecodable()) }),
		)
	}
}

// ObserveCall counts an ended call and its refused entries.
func (m *Metrics) ObserveCall(r audit.Record) {
	path := r.Path
	if path == "" {
		path = "none"
	}
	m.calls.WithLabelValues(path, r.Outcome, r.End).Inc()
	for _, rt := range r.Retries {
		m.retries.WithLabelValues(rt.Step, string(rt.Reason)).Inc()
	}
	if r.LangFallback != "" {
		m.langFalls.Inc()
	}
	m.duration.WithLabelValues(r.End).Observe(r.Duration.Seconds())
	if r.End == "limit_store_unavailable" {
		m.storeErrors.Inc()
	}
	if r.AgentReason != "" {
		m.toAgent.WithLabelValues(r.AgentReason).Inc()
	}
}

// Instrument wraps the host service so each request's latency is observed.
func (m *Metrics) Instrument(svc contract.Service) contract.Service {
	return &timed{Service: svc, m: m}
}

type timed struct {
	contract.Service
	m *Metrics
}

func (t *timed) observe(start time.Time, r outcome.Result) outcome.Result {
	t.m.hostLatency.WithLabelValues(string(r.Host), string(r.Kind)).Observe(time.Since(start).Seconds())
	return r
}

func (t *timed) ChangePIN(ctx context.Context, c contract.Change) outcome.Result {
	return t.observe(time.Now(), t.Service.ChangePIN(ctx, c))
}

func (t *timed) SetFirstPIN(ctx context.Context, s contract.FirstSetup) outcome.Result {
	return t.observe(time.Now(), t.Service.SetFirstPIN(ctx, s))
}

func (t *timed) VerifyCard(ctx context.Context, c contract.CardCheck) (contract.VerifiedCard, outcome.Result) {
	start := time.Now()
	v, r := t.Service.VerifyCard(ctx, c)
	return v, t.observe(start, r)
}

// Keep the policy methods visible through the wrapper.
func (t *timed) ChangePolicy() policy.PINPolicy     { return t.Service.ChangePolicy() }
func (t *timed) FirstSetupPolicy() policy.PINPolicy { return t.Service.FirstSetupPolicy() }

// ListenerServer is the call server's view of what its outbound listener
// and its call registry refused.
type ListenerServer interface {
	ListenerStats() (ivr.ListenerStats, bool)
	RefusedCalls() map[string]int64
}

// RegisterListener adds the outbound listener's counters (every label value
// from start-up) and the refused calls, by reason.
func (m *Metrics) RegisterListener(s ListenerServer) {
	if _, outbound := s.ListenerStats(); outbound {
		const logins = "Outbound ARI logins refused: credentials (401: missing or wrong), throttled (429: the source failed too often this minute) or slowed (429: failures across all sources passed IVRPIN_ARI_LISTEN_MAX_FAILURES_PER_SECOND and the source has not logged in lately)."
		const closed = "Outbound ARI connections the listener closed: over IVRPIN_ARI_LISTEN_MAX_CONNECTIONS, source_share (a source not logged in lately at its share), reserved (only the slots kept for sources that logged in were left), not a websocket within 10 s, a websocket that brought no call within 10 s, persistent_refused (past IVRPIN_ARI_PERSISTENT_MAX or from a source not allowed), no_life (a persistent websocket that did not answer its ping)."
		for _, c := range []struct {
			name, help, reason string
			f                  func(ivr.ListenerStats) int64
		}{
			{"ivrpin_ari_listener_logins_refused_total", logins, "credentials", func(st ivr.ListenerStats) int64 { return st.LoginsRefused }},
			{"ivrpin_ari_listener_logins_refused_total", logins, "throttled", func(st ivr.ListenerStats) int64 { return st.LoginsThrottled }},
			{"ivrpin_ari_listener_logins_refused_total", logins, "slowed", func(st ivr.ListenerStats) int64 { return st.LoginsSlowed }},
			{"ivrpin_ari_listener_connections_closed_total", closed, "max_connections", func(st ivr.ListenerStats) int64 { return st.ConnectionsOverLimit }},
			{"ivrpin_ari_listener_connections_closed_total", closed, "source_share", func(st ivr.ListenerStats) int64 { return st.ConnectionsSourceShare }},
			{"ivrpin_ari_listener_connections_closed_total", closed, "reserved", func(st ivr.ListenerStats) int64 { return st.ConnectionsReserved }},
			{"ivrpin_ari_listener_connections_closed_total", closed, "not_upgraded", func(st ivr.ListenerStats) int64 { return st.NotUpgraded }},
			{"ivrpin_ari_listener_connections_closed_total", closed, "no_call", func(st ivr.ListenerStats) int64 { return st.NoCall }},
			{"ivrpin_ari_listener_connections_closed_total", closed, "persistent_refused", func(st ivr.ListenerStats) int64 { return st.PersistentRefused }},
			{"ivrpin_ari_listener_connections_closed_total", closed, "no_life", func(st ivr.ListenerStats) int64 { return st.NoLife }},
		} {
			f := c.f
			m.Registry.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: c.name, Help: c.help,
				ConstLabels: prometheus.Labels{"reason": c.reason}}, func() float64 { st, _ := s.ListenerStats(); return float64(f(st)) }))
		}
		m.Registry.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "ivrpin_ari_listener_sources_evicted_total",
			Help: "Sources dropped from the failed-login table, oldest first, to keep it at IVRPIN_ARI_LISTEN_MAX_SOURCES (a flood from many addresses)."},
			func() float64 { st, _ := s.ListenerStats(); return float64(st.SourcesEvicted) }))
	}
	for _, reason := range ivr.RefusedCallReasons {
		reason := reason
		m.Registry.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "ivrpin_ari_calls_refused_total",
			Help:        "StasisStarts refused: channel_taken (another live websocket holds the channel), per_call_busy (a per-call websocket's second call), socket_full (a persistent websocket at its maximum).",
			ConstLabels: prometheus.Labels{"reason": reason}}, func() float64 { return float64(s.RefusedCalls()[reason]) }))
	}
}

// LineGuardWait counts a host request that waited for a place in the line
// guard's count.
func (m *Metrics) LineGuardWait() { m.guardWaits.Inc() }

// RegisterLineGuard adds ivrpin_line_guard_active, read from the store at
// each scrape (bounded: a store that does not answer reads as off, and the
// store's own alerts say why).
func (m *Metrics) RegisterLineGuard(on func(context.Context) (bool, error)) {
	m.Registry.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "ivrpin_line_guard_active",
		Help: "1 while the line guard refuses new calls: too many card-detail checks failed across the line (IVRPIN_LIMIT_LINE_FAILED_MAX in IVRPIN_LIMIT_LINE_WINDOW)."},
		func() float64 {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			if active, err := on(ctx); err == nil && active {
				return 1
			}
			return 0
		}))
}

// RegisterPINKey adds ivrpin_pin_key_ready, read from ready (nil: the zone
// PIN key encrypts; an error: why it does not).
func (m *Metrics) RegisterPINKey(where string, ready func() error) {
	m.Registry.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "ivrpin_pin_key_ready",
		Help:        "1 while the zone PIN key can encrypt PIN blocks (where: token or software).",
		ConstLabels: prometheus.Labels{"where": where}},
		func() float64 {
			if ready() == nil {
				return 1
			}
			return 0
		}))
}

// Health serves /metrics, /healthz and /readyz.
type Health struct {
	Metrics *Metrics
	Server  CallServer
	// Hosts, when set, is each PIN host's reachability by host:port
	// (internal/line watches them); /readyz is 503 while one is not.
	Hosts func() map[string]bool
	// PINKey, when set, says whether the zone PIN key encrypts (nil) or
	// why not; /readyz is 503 while it does not.
	PINKey func() error
	// Audit, when set, says whether audit records are written (nil) or
	// why not; /readyz is 503 while they are not.
	Audit func() error
	// MemoryLocked, when set, says whether the memory is locked against
	// swap (nil) or why not: shown, never a reason to be unready.
	MemoryLocked func() error
}

// Handler is the HTTP handler.
func (h *Health) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(h.Metrics.Registry, promhttp.HandlerOpts{}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) })
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		ari := h.Server != nil && h.Server.Ready()
		hosts := h.hosts()
		ready := ari
		for _, ok := range hosts {
			ready = ready && ok
		}
		doc := map[string]any{"configuration": "loaded", "hosts_reachable": hosts}
		if w, ok := h.Server.(interface{ Waiting() string }); ok && !ari {
			if why := w.Waiting(); why != "" {
				doc["ari_waiting"] = why // start-up is still waiting for Asterisk
			}
		}
		if h.PINKey != nil {
			doc["pin_key"] = "ready"
			if err := h.PINKey(); err != nil {
				ready = false
				doc["pin_key"] = err.Error()
			}
		}
		if h.Audit != nil {
			doc["audit"] = "ok"
			if err := h.Audit(); err != nil {
				ready = false
				doc["audit"] = err.Error()
			}
		}
		if h.MemoryLocked != nil {
			doc["memory_locked"] = true
			if err := h.MemoryLocked(); err != nil {
				doc["memory_locked"] = err.Error()
			}
		}
		doc["ready"] = ready
		w.Header().Set("Content-Type", "application/json")
		if !ready {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		if h.Server != nil && h.Server.Mode() == "outbound" {
			doc["ari_listening"] = ari // Asterisk dials us: ready means listening
		} else {
			doc["ari_connected"] = ari
		}
		_ = json.NewEncoder(w).Encode(doc)
	})
	return mux
}

func (h *Health) hosts() map[string]bool {
	if h.Hosts == nil {
		return map[string]bool{}
	}
	return h.Hosts()
}

// Serve listens on addr until ctx ends.
func (h *Health) Serve(ctx context.Context, addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	return h.ServeListener(ctx, ln)
}

// ServeListener serves on ln until ctx ends.
func (h *Health) ServeListener(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{Handler: h.Handler(), ReadHeaderTimeout: 5 * time.Second}
	go func() {
		<-ctx.Done()
		_ = srv.Close()
	}()
	err := srv.Serve(ln)
	if err == http.ErrServerClosed {
		return nil
	}
	return err
}
