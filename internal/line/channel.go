package line

import (
	"context"

	"github.com/ivr-pin/ivr-pin/flows"
	"github.com/ivr-pin/ivr-pin/ivr"
	"github.com/ivr-pin/ivr-pin/ivr/keypad"
	"github.com/ivr-pin/ivr-pin/prompts"
)

// channel is an ivr.Call as the flow's Channel: prompts become media URIs,
// a language becomes CHANNEL(language).
type channel struct{ c *ivr.Call }

var _ flows.Channel = channel{}

func mediaOf(items []prompts.Item) []string {
	m := make([]string, len(items))
	for i, it := range items {
		m[i] = it.MediaURI()
	}
	return m
}

func (k channel) Play(ctx context.Context, items ...prompts.Item) error {
	return k.c.Play(ctx, mediaOf(items)...)
}

func (k channel) Say(ctx context.Context, items ...prompts.Item) error {
	return k.c.Say(ctx, mediaOf(items)...)
}

func (k channel) Collect(ctx context.Context, spec keypad.Spec) (keypad.Entry, error) {
	return k.c.Collect(ctx, spec)
}

func (k channel) Flush() { k.c.Flush() }

func (k channel) SetLanguage(ctx context.Context, lang string) error {
	return k.c.SetVariable(ctx, "CHANNEL(language)", lang)
}

func (k channel) Continue(ctx context.Context, t flows.Target) error {
	return k.c.Continue(ctx, t.Context, t.Extension, t.Priority)
}

func (k channel) Hangup(ctx context.Context) error { return k.c.Hangup(ctx) }
