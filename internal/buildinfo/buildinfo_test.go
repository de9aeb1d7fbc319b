package buildinfo

import (
	"runtime/debug"
	"testing"
)

func TestString(t *testing.T) {
	cases := []struct {
		bi   debug.BuildInfo
		want string
	}{
		{debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v1.2.0"},
			Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: "2f46438c0ffee0123456789"}, {Key: "vcs.modified", Value: "false"}}},
			"v1.2.0 (2f46438c0ffe) go1.26.8"},
		{debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "(devel)"},
			Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: "abc"}, {Key: "vcs.modified", Value: "true"}}},
			"(devel) (abc, modified) go1.26.8"},
		{debug.BuildInfo{GoVersion: "go1.26.8"}, "(devel) (no VCS revision) go1.26.8"},
	}
	for _, c := range cases {
		if got := fromBuildInfo(&c.bi).String(); got != c.want {
			t.Errorf("got %q, want %q", got, c.want)
		}
	}
	if Read().GoVersion == "" {
		t.Error("the test binary has no Go version")
	}
}

// A container build, which has no .git to read, stamps both.
func TestStampedVersionWins(t *testing.T) {
	i := stamped(Info{Version: "(devel)", Modified: true, GoVersion: "go1.26"}, "v1.4.0", "0123456789abcdef")
	if i.String() != "v1.4.0 (0123456789ab) go1.26" {
		t.Fatal(i.String())
	}
	if i := stamped(Info{Version: "v1.0.0", Revision: "abc"}, "", ""); i.Version != "v1.0.0" || i.Revision != "abc" {
		t.Fatal(i)
	}
}
