package main

import (
	"errors"
	"fmt"

	"golang.org/x/sys/unix"
)

// clockState asks the kernel whether its clock is disciplined (NTP,
// chrony, systemd-timesyncd or PTP keep it so): adjtimex with no change
// reports TIME_ERROR or STA_UNSYNC while nothing does. A variable so a
// test can stand in for the kernel.
var clockState = func() (synced bool, maxErrorMicros int64, err error) {
	var tx unix.Timex
	state, err := unix.Adjtimex(&tx)
	if err != nil {
		return false, 0, err
	}
	return state != unix.TIME_ERROR && tx.Status&unix.STA_UNSYNC == 0, tx.Maxerror, nil
}

// clockWarning is check's word on the clock: the audit's times are
// evidence (PCI DSS 10.6), so a clock nothing keeps true is worth a
// warning, though serve runs with it.
func clockWarning() error {
	synced, maxErr, err := clockState()
	switch {
	case err != nil:
		return fmt.Errorf("the clock: cannot ask the kernel whether it is synchronised (adjtimex: %v); the audit's times are evidence: keep it synchronised (chrony, systemd-timesyncd)", err)
	case !synced:
		return errors.New("the clock is not synchronised (adjtimex: unsynchronised, maximum error " +
			fmt.Sprintf("%.1f s", float64(maxErr)/1e6) + "): the audit's times are evidence (PCI DSS 10.6): run chrony or systemd-timesyncd against the bank's time sources")
	}
	return nil
}
