// Package deploy holds the systemd unit; its tests check that the unit, the
// Dockerfile and the compose file are what an operator can run as shipped.
package deploy

import (
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/ivr-pin/ivr-pin/internal/testkit"
)

// The unit is hardened until systemd's own rating is below 4 ("OK").
func TestUnitIsHardened(t *testing.T) {
	analyze := testkit.Program(t, "systemd-analyze", "systemd")
	out, err := exec.Command(analyze, "security", "--offline=true", "--no-pager", "ivr-pin.service").CombinedOutput()
	if err != nil {
		t.Fatalf("systemd-analyze: %v\n%s", err, out)
	}
	m := regexp.MustCompile(`Overall exposure level for ivr-pin.service: ([0-9.]+)`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("no rating in:\n%s", out)
	}
	level, _ := strconv.ParseFloat(string(m[1]), 64)
	if level >= 4 {
		t.Fatalf("exposure level %.1f, want below 4:\n%s", level, out)
	}
	t.Logf("systemd-analyze security: %.1f", level)
	unit := read(t, "ivr-pin.service")
	for _, want := range []string{"StateDirectory=ivr-pin", "IVRPIN_LIMIT_STORE=/var/lib/ivr-pin/attempts.db", "LimitCORE=0", "LimitMEMLOCK=infinity", "MemorySwapMax=0", "UMask=0077",
		"LoadCredential=pkcs11-pin:", "IVRPIN_PKCS11_PIN_FILE=%d/pkcs11-pin", "IVRPIN_LIMIT_KEY_FILE=%d/limit-key", "IVRPIN_ARI_PASSWORD_FILE=%d/ari-password",
		"LoadCredential=audit-key:", "IVRPIN_AUDIT_KEY_FILE=%d/audit-key"} {
		if !strings.Contains(unit, want) {
			t.Errorf("unit lacks %s", want)
		}
	}
}

func TestContainerImage(t *testing.T) {
	df := read(t, "../Dockerfile")
	for _, want := range []string{"USER 65532:65532", "--chown=65532:65532 /out/state /var/lib/ivr-pin", "VOLUME /var/lib/ivr-pin",
		"IVRPIN_LIMIT_STORE=/var/lib/ivr-pin/attempts.db", "CGO_ENABLED=1", "golang:1.26-bookworm", "distroless/cc-debian12",
		"ARG VERSION", "ARG REVISION", "buildinfo.version=${VERSION}", "buildinfo.revision=${REVISION}", `HEALTHCHECK`, `ivr-pin", "ready"]`} {
		if !strings.Contains(df, want) {
			t.Errorf("Dockerfile lacks %q", want)
		}
	}
	if strings.Contains(df, "0.0.0.0") {
		t.Error("the image listens for metrics on every interface")
	}
	ignore := read(t, "../.dockerignore")
	for _, want := range []string{".git", "*.db", "prompts/sounds"} {
		if !strings.Contains(ignore, want+"\n") {
			t.Errorf(".dockerignore lacks %s", want)
		}
	}
}

func TestComposeRunsTheImage(t *testing.T) {
	c := read(t, "../asterisk/docker-compose.yml")
	if strings.Contains(c, "..:/src") || strings.Contains(c, "go run") {
		t.Error("compose runs from the source tree")
	}
	// Secrets come as Docker secrets (files), never as environment values.
	for _, v := range []string{"IVRPIN_NI_ZPK:", "IVRPIN_ARI_PASSWORD:", "IVRPIN_KEYSECURE_API_SECRET:", "IVRPIN_LIMIT_KEY:"} {
		if strings.Contains(c, v) {
			t.Errorf("compose gives %s in the environment", strings.TrimSuffix(v, ":"))
		}
	}
	for _, want := range []string{"context: ..", "VERSION: ${VERSION", "restart: unless-stopped", `test: ["CMD", "/usr/local/bin/ivr-pin", "ready"]`, "ivr-pin-state:/var/lib/ivr-pin", "\nvolumes:\n  ivr-pin-state:", "\nsecrets:\n",
		"IVRPIN_NI_ZPK_FILE: /run/secrets/", "IVRPIN_LIMIT_KEY_FILE: /run/secrets/", "core: 0"} {
		if !strings.Contains(c, want) {
			t.Errorf("compose lacks %q", want)
		}
	}
}

func read(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// The logrotate sample moves the audit file away and sends serve SIGHUP,
// which reopens it (tested in cmd/ivr-pin's TestServeAsAProcess).
func TestLogrotateSample(t *testing.T) {
	lr := read(t, "logrotate/ivr-pin")
	for _, want := range []string{"/var/lib/ivr-pin/audit.jsonl {", "--signal=HUP", "create 0600", "postrotate"} {
		if !strings.Contains(lr, want) {
			t.Errorf("logrotate sample lacks %q", want)
		}
	}
	if strings.Contains(lr, "copytruncate") {
		t.Error("copytruncate can lose records written between the copy and the truncate")
	}
	t.Run("logrotate reads it", func(t *testing.T) {
		logrotate := testkit.Program(t, "logrotate", "logrotate")
		if out, err := exec.Command(logrotate, "--debug", "logrotate/ivr-pin").CombinedOutput(); err != nil {
			t.Errorf("logrotate --debug: %v\n%s", err, out)
		}
	})
}
