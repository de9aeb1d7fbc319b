package line

import (
	"context"
	"errors"
	"testing"

	"github.com/sirupsen/logrus"
	logtest "github.com/sirupsen/logrus/hooks/test"
)

// A host that goes down is said once at warn with its setting, and said
// again when it comes back; /readyz sees each state.
func TestHostWatchSaysWhenAHostGoesAndComesBack(t *testing.T) {
	log, hook := logtest.NewNullLogger()
	down := false
	w := hostWatch{log: logrus.NewEntry(log)}
	w.add("IVRPIN_NI_URL", "the card host", "https://cards.bank.example:8443/pin", func(context.Context) error {
		if down {
			return errors.New("connection refused")
		}
		return nil
	})
	ctx := context.Background()
	for _, step := range []struct {
		down      bool
		reachable bool
		logged    string
	}{
		{false, true, ""},
		{true, false, "the card host cannot be reached: the line is not ready (/readyz) until it can"},
		{true, false, ""}, // said once, not every try
		{false, true, "the card host can be reached again"},
	} {
		hook.Reset()
		down = step.down
		w.once(ctx)
		if got := w.Reachable()["cards.bank.example:8443"]; got != step.reachable {
			t.Fatalf("down=%v: reachable %v", step.down, got)
		}
		switch e := hook.LastEntry(); {
		case step.logged == "" && e != nil:
			t.Fatalf("down=%v: logged %q", step.down, e.Message)
		case step.logged != "" && (e == nil || e.Message != step.logged || e.Level != logrus.WarnLevel || e.Data["setting"] != "IVRPIN_NI_URL"):
			t.Fatalf("down=%v: logged %+v, want %q at warn with the setting", step.down, e, step.logged)
		}
	}
}
