// Package buildinfo says which build is running: the module version and the
// VCS revision Go stamped into the binary (`ivr-pin --version`, and the
// ivrpin_build_info metric), so an operator can tell which code took a call.
package buildinfo

import (
	"fmt"
	"runtime/debug"
)

// Info is what the binary knows of its own build.
type Info struct {
	Version   string // module version ("(devel)" for a build from a work tree)
	Revision  string // VCS revision, "" when not stamped (go run, go test)
	Modified  bool   // the work tree had uncommitted changes
	GoVersion string
}

// version and revision are stamped by a build that has no VCS directory to
// read (a container build: the Dockerfile's VERSION and REVISION build
// arguments, -ldflags "-X .../buildinfo.version=... -X .../buildinfo.revision=...").
var version, revision string

// Read returns the running binary's build information.
func Read() Info {
	bi, ok := debug.ReadBuildInfo()
	i := Info{Version: "unknown"}
	if ok {
		i = fromBuildInfo(bi)
	}
	return stamped(i, version, revision)
}

// stamped lays a build's stamped version and revision over what Go found.
func stamped(i Info, version, revision string) Info {
	if version != "" {
		i.Version = version
	}
	if revision != "" {
		i.Revision, i.Modified = revision, false
	}
	return i
}

func fromBuildInfo(bi *debug.BuildInfo) Info {
	i := Info{Version: bi.Main.Version, GoVersion: bi.GoVersion}
	if i.Version == "" {
		i.Version = "(devel)"
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			i.Revision = s.Value
		case "vcs.modified":
			i.Modified = s.Value == "true"
		}
	}
	return i
}

// String is "VERSION (REVISION[, modified]) GOVERSION".
func (i Info) String() string {
	rev := i.Revision
	if rev == "" {
		rev = "no VCS revision"
	} else if len(rev) > 12 {
		rev = rev[:12]
	}
	if i.Modified {
		rev += ", modified"
	}
	return fmt.Sprintf("%s (%s) %s", i.Version, rev, i.GoVersion)
}
