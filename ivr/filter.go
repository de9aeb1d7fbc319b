package ivr

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"time"
)

// quietEvents are the event types a call brings that the call server never
// reads. Asterisk is asked not to send them (an application's event filter,
// PUT /applications/{app}/eventFilter), so neither side spends CPU on them:
// a playback's start and each step of a list (one PlaybackStarted per
// prompt, a PlaybackContinuing between the prompts of one list), the
// channel's state and dialplan changes. On a real PIN change they were 16 of
// a call's 71 events. Keys, the end of a playback, hang-ups and Stasis'
// start and end still come; so does any type not named here.
var quietEvents = []string{
	"PlaybackStarted", "PlaybackContinuing", "ChannelStateChange", "ChannelVarset",
	"ChannelDialplan", "ChannelCallerId", "ChannelConnectedLine",
}

// eventFilter is the filter's JSON body, ARI's {"disallowed": [{"type": T}]}.
var eventFilter = func() []byte {
	type event struct {
		Type string `json:"type"`
	}
	var f struct {
		Disallowed []event `json:"disallowed"`
	}
	for _, t := range quietEvents {
		f.Disallowed = append(f.Disallowed, event{Type: t})
	}
	b, _ := json.Marshal(f)
	return b
}()

// filterEvents asks Asterisk to leave quietEvents out of app's events.
// A filter lives as long as Asterisk's application does (res/stasis/app.c
// frees it with the application), and a per-call websocket's application
// is new with each call, so it is set on every connection: the inbound
// events websocket each time it connects (again after a reconnect, which
// costs nothing), an outbound websocket when its application registers. Nothing
// is lost if Asterisk refuses (an Asterisk older than 16.3 has no filters):
// the events come and are skipped, which costs CPU only, so the first
// refusal is one warning and the rest are debug lines.
func (s *Server) filterEvents(ctx context.Context, r rest, app string) {
	var err error
	for try := 0; try < 3; try++ {
		// A 404 right after connecting is an application not registered
		// yet (the websocket's answer can come first): asked again.
		if try > 0 {
			select {
			case <-ctx.Done():
				return
			case <-time.After(100 * time.Millisecond):
			}
		}
		err = r.doJSON(ctx, http.MethodPut, "applications/"+url.PathEscape(app)+"/eventFilter", eventFilter)
		if err == nil || StatusOf(err) != http.StatusNotFound {
			break
		}
	}
	if err == nil || ctx.Err() != nil {
		return
	}
	log := s.cfg.Log.WithError(err).WithField("application", app)
	if s.filterRefused.CompareAndSwap(false, true) {
		log.Warn("Asterisk did not take the application's event filter: every event of a call still arrives and is skipped (more CPU, nothing lost)")
		return
	}
	log.Debug("Asterisk did not take the application's event filter")
}
