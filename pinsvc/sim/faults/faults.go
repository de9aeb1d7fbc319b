// Package faults injects the failures a real host shows into the host
// simulators: a slow answer, a 5xx, a connection reset after the request was
// read, a malformed body, an answer for another message, and a redirect. Tests set
// faults directly; `ivr-pin simulate` exposes them on an admin route.
package faults

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Kind is one kind of fault.
type Kind string

// The fault kinds.
const (
	None       Kind = ""
	Delay      Kind = "delay"        // answer after Fault.Delay (the request is still processed)
	Status     Kind = "status"       // answer with Fault.Status (default 500) and no processing
	Reset      Kind = "reset"        // process the request, then reset the connection without answering
	Malformed  Kind = "malformed"    // process the request, then answer with broken JSON
	WrongMsgID Kind = "wrong_msg_id" // process the request, then answer for another msg_id
	Redirect   Kind = "redirect"     // answer Fault.Status (default 307) to Fault.Location, no processing
)

// Fault is one injected failure. Count is how many requests it affects;
// zero means every request until cleared.
type Fault struct {
	Kind   Kind          `json:"kind"`
	Delay  time.Duration `json:"delay,omitempty"`
	Status int           `json:"status,omitempty"`
	Count  int           `json:"count,omitempty"`
	// Path limits the fault to requests whose path starts with it ("" = all).
	Path string `json:"path,omitempty"`
	// Location is where a Redirect fault points.
	Location string `json:"location,omitempty"`
}

// Injector holds the active fault. The zero value injects nothing.
type Injector struct {
	mu    sync.Mutex
	fault Fault
	left  int
}

// Set replaces the active fault.
func (i *Injector) Set(f Fault) {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.fault, i.left = f, f.Count
}

// Clear removes the active fault.
func (i *Injector) Clear() { i.Set(Fault{}) }

// Take returns the fault for the next request to path and counts it down.
func (i *Injector) Take(path string) Fault {
	i.mu.Lock()
	defer i.mu.Unlock()
	f := i.fault
	if f.Kind == None || !strings.HasPrefix(path, f.Path) {
		return Fault{}
	}
	if f.Count > 0 {
		i.left--
		if i.left <= 0 {
			i.fault = Fault{}
		}
	}
	return f
}

// Before takes the fault for r and applies the kinds that act before the
// request is processed: a Status fault answers (answered is true), a Delay
// fault sleeps. The fault is returned for the kinds that act after
// processing (Reset, Malformed, WrongMsgID).
func (i *Injector) Before(w http.ResponseWriter, r *http.Request) (f Fault, answered bool) {
	f = i.Take(r.URL.Path)
	switch f.Kind {
	case Status:
		WriteStatus(w, f.Status)
		return f, true
	case Redirect:
		status := f.Status
		if status == 0 {
			status = http.StatusTemporaryRedirect
		}
		w.Header().Set("Location", f.Location)
		w.WriteHeader(status)
		return f, true
	case Delay:
		Sleep(r, f.Delay)
	}
	return f, false
}

// Sleep waits d or until the client goes away.
func Sleep(r *http.Request, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-r.Context().Done():
	}
}

// ResetConnection closes the client's connection with a TCP reset and no
// answer, as a load balancer or a crashed host does.
func ResetConnection(w http.ResponseWriter) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		panic(http.ErrAbortHandler)
	}
	conn, _, err := hj.Hijack()
	if err != nil {
		return
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = conn.Close()
}

// AnswerBroken answers as f says when f breaks the answer itself: a reset
// connection (Reset), or JSON cut off mid-object (Malformed, with body);
// it reports whether it answered.
func AnswerBroken(w http.ResponseWriter, f Fault, body string) bool {
	switch f.Kind {
	case Reset:
		ResetConnection(w)
		return true
	case Malformed:
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, body)
		return true
	}
	return false
}

// WriteStatus answers with an HTTP error status and a short plain body.
func WriteStatus(w http.ResponseWriter, status int) {
	if status == 0 {
		status = http.StatusInternalServerError
	}
	http.Error(w, http.StatusText(status), status)
}

// MalformedBody is what a Malformed fault answers: JSON cut off mid-object.
const MalformedBody = `{"NISrvResponse":{"response_card_pin_change":{"header":{"msg_id":`

// AdminHandler lets a person set faults by hand:
//
//	curl -X POST localhost:PORT/_sim/fault -d '{"kind":"delay","delay":5000000000,"count":1}'
//	curl -X DELETE localhost:PORT/_sim/fault
func AdminHandler(i *Injector) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.Method {
		case http.MethodPost:
			var f Fault
			if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4096)).Decode(&f); err != nil {
				http.Error(w, "bad fault", http.StatusBadRequest)
				return
			}
			i.Set(f)
		case http.MethodDelete:
			i.Clear()
		case http.MethodGet:
		default:
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		i.mu.Lock()
		f := i.fault
		i.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(f)
	})
}
