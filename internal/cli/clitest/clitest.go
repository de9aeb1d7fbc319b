// Package clitest checks a command against its verb table.
package clitest

import (
	"go/parser"
	"go/token"
	"os/exec"
	"strings"
	"testing"

	"github.com/ivr-pin/ivr-pin/internal/cli"
)

// DocListsVerbs fails unless the package doc of file (the command's main
// package) lists exactly p's verbs, in order, as "<name> <verb>" lines.
func DocListsVerbs(t *testing.T, file string, p cli.Program) {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), file, nil, parser.PackageClauseOnly|parser.ParseComments)
	if err != nil {
		t.Fatal(err)
	}
	var listed []string
	for _, line := range strings.Split(f.Doc.Text(), "\n") {
		fields := strings.Fields(line)
		if len(fields) >= 2 && fields[0] == p.Name && !strings.HasPrefix(fields[1], "-") {
			listed = append(listed, fields[1])
		}
	}
	var want []string
	for _, v := range p.Verbs {
		want = append(want, v.Name)
	}
	if strings.Join(listed, " ") != strings.Join(want, " ") {
		t.Fatalf("the package doc of %s lists the verbs %v; the verb table has %v", file, listed, want)
	}
}

// Deps lists the packages pkg links (go list -deps), standard library
// included.
func Deps(t *testing.T, pkg string) []string {
	t.Helper()
	out, err := exec.Command("go", "list", "-deps", pkg).Output()
	if err != nil {
		t.Fatalf("go list -deps %s: %v", pkg, err)
	}
	return strings.Fields(string(out))
}
