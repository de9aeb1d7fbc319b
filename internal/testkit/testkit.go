// Package testkit is what the project's tests share to meet the machine
// they run on: the Debian programs a test needs (skipped by name where they
// are absent, a failure under CI=true, where .ci/run installs them), and the
// processes a test starts, which die with the test binary however it ends.
// Its subpackages give a test a real peer of its own: a Redis server
// (redistest), a PKCS#11 token (softhsmtest), a test PKI (testpki).
package testkit

import (
	"os"
	"os/exec"
	"testing"
)

// InCI reports whether the tests run under CI (CI=true), where every
// program the tests need is installed and a missing one is a failure.
func InCI() bool { return os.Getenv("CI") == "true" }

// Program finds a program the test needs on PATH. Where it is absent the
// test is skipped, naming the program and the Debian package that brings
// it; under CI=true it fails instead (.ci/run installs the package).
func Program(t testing.TB, name, debianPackage string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err == nil {
		return p
	}
	Missing(t, name, debianPackage)
	return ""
}

// Missing skips the test for want of what (a program, a library), naming
// the Debian package that brings it; under CI=true it fails the test.
func Missing(t testing.TB, what, debianPackage string) {
	t.Helper()
	if InCI() {
		t.Fatalf("%s is not installed, and CI=true: .ci/run installs it (apt-get install %s)", what, debianPackage)
	}
	t.Skipf("%s is not installed (apt-get install %s)", what, debianPackage)
}
