package main

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ivr-pin/ivr-pin/asterisk/aritest"
	"github.com/ivr-pin/ivr-pin/internal/testkit"
	"github.com/ivr-pin/ivr-pin/internal/testkit/syncbuf"
)

// Every series the shipped dashboard and alert rules name is one serve
// exports, and exports from start-up (scraped before any call), inbound or
// outbound.
func TestDashboardAndAlertsNameOnlyExportedSeries(t *testing.T) {
	bin := binary(t)
	ari, err := aritest.Start(aritest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer ari.Close()
	exported := map[string]bool{}
	for _, mode := range [][]string{
		{"IVRPIN_ARI_URL=" + ari.URL},
		{"IVRPIN_ARI_LISTEN=" + testkit.FreeAddr(t), "IVRPIN_ARI_LISTEN_PASSWORD=listener-password-0001"},
	} {
		metricsAddr, dir := testkit.FreeAddr(t), t.TempDir()
		cmd := exec.Command(bin, "serve")
		cmd.Env = append(append(os.Environ(), "IVRPIN_ARI_PASSWORD=aritest-password-0001",
			"IVRPIN_NI_URL=http://127.0.0.1:1/pin", "IVRPIN_NI_BANK_ID=TB01", "IVRPIN_NI_ZPK=0123456789ABCDEFFEDCBA9876543210", "IVRPIN_LAB=true",
			"IVRPIN_LIMIT_KEY=00112233445566778899aabbccddeeff", "IVRPIN_LIMIT_STORE="+filepath.Join(dir, "a.db"),
			"IVRPIN_METRICS_ADDR="+metricsAddr, "IVRPIN_AUDIT_FILE="+filepath.Join(dir, "audit.jsonl")), mode...)
		logs := &syncbuf.Buffer{}
		cmd.Stdout, cmd.Stderr = logs, logs
		if err := testkit.Start(t, cmd); err != nil {
			t.Fatal(err)
		}
		var body string
		for i := 0; i < 400; i++ {
			if resp, err := httpGet("http://" + metricsAddr + "/metrics"); err == nil {
				body = resp
				break
			}
			time.Sleep(25 * time.Millisecond)
		}
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
		if body == "" {
			t.Fatalf("no /metrics:\n%s", logs.String())
		}
		for _, ln := range strings.Split(body, "\n") {
			if name, _, ok := strings.Cut(ln, " "); ok && strings.HasPrefix(name, "ivrpin_") {
				name, _, _ = strings.Cut(name, "{")
				exported[name] = true
			}
		}
	}
	var exprs []string
	var dash struct {
		Panels []struct {
			Title   string
			Targets []struct{ Expr string }
		}
	}
	b, err := os.ReadFile("../../deploy/grafana/ivr-pin.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &dash); err != nil {
		t.Fatal(err)
	}
	for _, p := range dash.Panels {
		for _, tg := range p.Targets {
			exprs = append(exprs, tg.Expr)
		}
	}
	rules, err := os.ReadFile("../../deploy/prometheus/ivr-pin.rules.yml")
	if err != nil {
		t.Fatal(err)
	}
	exprs = append(exprs, string(rules))
	names := regexp.MustCompile(`ivrpin_[a-z0-9_]+`)
	seen := 0
	for _, e := range exprs {
		for _, n := range names.FindAllString(e, -1) {
			seen++
			if !exported[n] {
				t.Errorf("%s is named by the dashboard or the alerts but serve does not export it at start-up", n)
			}
		}
	}
	if seen < 30 {
		t.Fatalf("only %d series names found in the dashboard and the rules", seen)
	}
}

// httpGet is a GET that reports a refused connection as an error (get
// fails the test).
func httpGet(url string) (string, error) {
	resp, err := http.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}
