package ivr

import (
	"encoding/json"

	"github.com/CyCoreSystems/ari/v5"
)

// hotEvent is the part of an ARI event the call server reads from the
// events a call sends many of. Decoding into it is one pass that skips the
// rest; ari.DecodeEvent decodes each event twice (once for its type, once
// whole) and the channel a third time (ChannelData's own UnmarshalJSON,
// with its variables and creation time). In `ivr-pin-lab load`'s CPU profile
// of a burst that was the largest single cost of serve (30-47%).
type hotEvent struct {
	Type        string `json:"type"`
	Application string `json:"application"`
	Node        string `json:"asterisk_id"`
	Digit       string `json:"digit"`
	Channel     struct {
		ID string `json:"id"`
	} `json:"channel"`
	Playback struct {
		ID        string `json:"id"`
		TargetURI string `json:"target_uri"`
		State     string `json:"state"`
	} `json:"playback"`
}

// decodeHot returns a key press, playback or hang-up event as ari/v5's own
// type, holding only the fields the call server reads (channelOf,
// Call.deliver): the channel id, the digit, the playback's id, target and
// state, the application and the Asterisk id. Every other event type, or a
// message it cannot read, returns nil for ari.DecodeEvent to decode whole
// (StasisStart, whose caller and arguments the line uses, always is).
func decodeHot(data []byte) ari.Event {
	var h hotEvent
	if json.Unmarshal(data, &h) != nil {
		return nil
	}
	ed := ari.EventData{Type: h.Type, Application: h.Application, Node: h.Node}
	ch := ari.ChannelData{ID: h.Channel.ID}
	pb := ari.PlaybackData{ID: h.Playback.ID, TargetURI: h.Playback.TargetURI, State: h.Playback.State}
	switch h.Type {
	case ari.Events.ChannelDtmfReceived:
		return &ari.ChannelDtmfReceived{EventData: ed, Channel: ch, Digit: h.Digit}
	case ari.Events.PlaybackStarted:
		return &ari.PlaybackStarted{EventData: ed, Playback: pb}
	case ari.Events.PlaybackFinished:
		return &ari.PlaybackFinished{EventData: ed, Playback: pb}
	case ari.Events.ChannelHangupRequest:
		return &ari.ChannelHangupRequest{EventData: ed, Channel: ch}
	case ari.Events.StasisEnd:
		return &ari.StasisEnd{EventData: ed, Channel: ch}
	case ari.Events.ChannelDestroyed:
		return &ari.ChannelDestroyed{EventData: ed, Channel: ch}
	}
	return nil
}
