package line_test

import (
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/ivr-pin/ivr-pin/asterisk/aritest"
	"github.com/ivr-pin/ivr-pin/internal/config"
	"github.com/ivr-pin/ivr-pin/internal/demo"
)

func TestSmokeChangeCall(t *testing.T) {
	cfg, err := config.Load()
	if err != nil {
		t.Fatal(err)
	}
	log := logrus.New()
	log.SetLevel(logrus.DebugLevel)
	d, err := demo.Start(demo.Options{Config: cfg, PlaybackScale: 0.002, Log: logrus.NewEntry(log)})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	ch, err := d.ARI.PlaceCall(aritest.CallOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := ch.Press("1"+"4111111111111111#"+"1228"+"7392#"+"4829#"+"4829#", 10*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	snap, err := ch.WaitEnded(10 * time.Second)
	if err != nil {
		t.Fatalf("%v %+v", err, snap)
	}
	rec, err := d.RecordFor(ch.ID, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%+v\n%v", rec, snap.Played)
	if rec.Outcome != "changed" || !d.Sims.CardHost.PINIs("4111111111111111", "4829") {
		t.Fatalf("%+v", rec)
	}
}
