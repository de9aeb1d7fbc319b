package main

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ivr-pin/ivr-pin/asterisk/aritest"
	"github.com/ivr-pin/ivr-pin/internal/testkit"
	"github.com/ivr-pin/ivr-pin/internal/testkit/syncbuf"
	"github.com/ivr-pin/ivr-pin/pinsvc/pinblock"
	"github.com/ivr-pin/ivr-pin/pinsvc/secret"
	"github.com/ivr-pin/ivr-pin/pinsvc/sim/simrun"
)

var (
	binOnce sync.Once
	binPath string
	binErr  error
)

// binary builds ivr-pin once for the tests that run it as a process.
func binary(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds the binary")
	}
	binOnce.Do(func() {
		dir, err := os.MkdirTemp("", "ivr-pin-bin")
		if err != nil {
			binErr = err
			return
		}
		binPath = filepath.Join(dir, "ivr-pin")
		if out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput(); err != nil {
			binErr = fmt.Errorf("build: %v\n%s", err, out)
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}

// readMemory returns every readable mapping of process pid.
func readMemory(t *testing.T, pid int) [][]byte {
	t.Helper()
	maps, err := os.ReadFile(fmt.Sprintf("/proc/%d/maps", pid))
	if err != nil {
		t.Skipf("cannot read the child's memory map: %v", err)
	}
	mem, err := os.Open(fmt.Sprintf("/proc/%d/mem", pid))
	if err != nil {
		t.Skipf("cannot read the child's memory (root or CAP_SYS_PTRACE needed: serve is not dumpable): %v", err)
	}
	defer mem.Close()
	var regions [][]byte
	sc := bufio.NewScanner(bytes.NewReader(maps))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 2 || f[1][0] != 'r' || (len(f) >= 6 && (f[5] == "[vvar]" || f[5] == "[vsyscall]")) {
			continue
		}
		lo, hi, _ := strings.Cut(f[0], "-")
		start, _ := strconv.ParseUint(lo, 16, 64)
		end, _ := strconv.ParseUint(hi, 16, 64)
		if end-start > 1<<30 {
			continue
		}
		buf := make([]byte, end-start)
		n, _ := mem.ReadAt(buf, int64(start))
		regions = append(regions, buf[:n])
	}
	return regions
}

// A live serve, after a call, holds neither the zone PIN key's hex nor its
// bytes anywhere in its memory: the key came from a 0600 file, was parsed
// into its cipher, and every copy was wiped. It is not dumpable and dumps
// no core.
func TestServeMemoryHoldsNoKey(t *testing.T) {
	bin := binary(t)
	raw := []byte("memory-test-zpk!")
	secret.SetOddParity(raw)
	keyHex := strings.ToUpper(hex.EncodeToString(raw))
	key, _ := secret.NewKey(secret.TDES, raw)
	zpk, _ := pinblock.NewZPK(key, pinblock.ISO0)
	sims, err := simrun.Start(simrun.Options{BankID: "TB01", ZPK: zpk})
	if err != nil {
		t.Fatal(err)
	}
	defer sims.Close()
	ari, err := aritest.Start(aritest.Options{PlaybackScale: 0.01})
	if err != nil {
		t.Fatal(err)
	}
	defer ari.Close()
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "zpk")
	if err := os.WriteFile(keyFile, []byte(keyHex+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "serve")
	cmd.Env = append(os.Environ(),
		"IVRPIN_ARI_URL="+ari.URL, "IVRPIN_ARI_PASSWORD=aritest-password-0001",
		"IVRPIN_NI_URL="+sims.CardHostURL, "IVRPIN_NI_BANK_ID=TB01", "IVRPIN_NI_ZPK_FILE="+keyFile, "IVRPIN_LAB=true",
		"IVRPIN_METRICS_ADDR=", "IVRPIN_AUDIT_FILE="+filepath.Join(dir, "audit.jsonl"), "IVRPIN_LIMIT_STORE="+filepath.Join(dir, "attempts.db"),
		"IVRPIN_LIMIT_KEY=6d656d6f72792d746573742d6c696d69742d6b6579", "IVRPIN_FIRST_DIGIT_TIMEOUT=3s")
	logs := &syncbuf.Buffer{}
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := testkit.Start(t, cmd); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	}()
	if err := ari.WaitConnected("ivr-pin", 20*time.Second); err != nil {
		t.Fatalf("%v\n%s", err, logs.String())
	}
	typeChange(t, ari, logs)
	if !sims.CardHost.PINIs("4111111111111111", "4829") {
		t.Fatalf("PIN not changed\n%s", logs.String())
	}

	status, _ := os.ReadFile(fmt.Sprintf("/proc/%d/limits", cmd.Process.Pid))
	for _, l := range strings.Split(string(status), "\n") {
		if strings.HasPrefix(l, "Max core file size") && !strings.Contains(l, " 0 ") {
			t.Errorf("serve may dump core: %s", l)
		}
	}
	needles := map[string][]byte{"the key's bytes": raw, "its hex": []byte(keyHex), "its lower-case hex": []byte(strings.ToLower(keyHex))}
	regions := readMemory(t, cmd.Process.Pid)
	total, control := 0, false
	for _, r := range regions {
		total += len(r)
		// The control: the limit key was given in the environment, whose
		// block stays in memory: the scan must find it.
		control = control || bytes.Contains(r, []byte("6d656d6f72792d746573742d6c696d69742d6b6579"))
		for what, n := range needles {
			if i := bytes.Index(r, n); i >= 0 {
				t.Errorf("serve's memory holds %s", what)
			}
		}
	}
	if total < 1<<20 || !control {
		t.Fatalf("the scan is broken: read %d bytes of serve's memory, control found: %v", total, control)
	}
	t.Logf("searched %d MiB of serve's memory in %d mappings", total>>20, len(regions))
	if !strings.Contains(logs.String(), `"not_dumpable":true`) || !strings.Contains(logs.String(), `"core_dumps_off":true`) {
		t.Errorf("the start-up line does not say the process is hardened:\n%s", logs.String())
	}
}
