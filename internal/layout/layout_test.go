package layout

import (
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/ivr-pin/ivr-pin/"

// packages is `go list` of the tree: each package's path under the module
// and its production imports.
func packages(t *testing.T) map[string][]string {
	t.Helper()
	out, err := exec.Command("go", "list", "-f", "{{.ImportPath}} {{join .Imports \" \"}}", module+"...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	pkgs := map[string][]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		var own []string
		for _, imp := range f[1:] {
			if strings.HasPrefix(imp, module) {
				own = append(own, strings.TrimPrefix(imp, module))
			}
		}
		pkgs[strings.TrimPrefix(f[0], module)] = own
	}
	return pkgs
}

// Imports run down: what a bank's line is built from never imports what is
// built on it.
func TestImportsRunDown(t *testing.T) {
	under := func(p string, dirs ...string) bool {
		for _, d := range dirs {
			if p == d || strings.HasPrefix(p, d+"/") {
				return true
			}
		}
		return false
	}
	for pkg, imports := range packages(t) {
		for _, imp := range imports {
			var why string
			switch {
			case under(pkg, "ivr", "flows", "pinsvc", "prompts") && under(imp, "internal", "cmd", "asterisk"):
				why = "the call server, the flow, the PIN services and the prompts import nothing of the application, the commands or the Asterisk harness"
			case under(pkg, "ivr") && under(imp, "flows", "pinsvc", "prompts"):
				why = "the call server knows nothing of PINs"
			case under(pkg, "pinsvc") && under(imp, "ivr", "flows"):
				why = "the PIN services know nothing of calls"
			case under(pkg, "flows") && under(imp, "pinsvc") &&
				!slices.Contains([]string{"pinsvc/contract", "pinsvc/outcome", "pinsvc/policy", "pinsvc/secret"}, imp):
				why = "the flow sees the hosts only through pinsvc/contract"
			case under(pkg, "flows") && under(imp, "ivr") && imp != "ivr/keypad":
				why = "the flow never sees ARI"
			case !under(pkg, "cmd") && under(imp, "cmd/ivr-pin", "cmd/ivr-pin-lab") && !under(pkg, "cmd/ivr-pin-lab"):
				why = "nothing imports a command"
			case !under(pkg, "internal/testkit", "asterisk/asterisktest") && under(imp, "internal/testkit"):
				why = "test kits are for tests (and the real-Asterisk harness, itself one)"
			}
			if why != "" {
				t.Errorf("%s imports %s: %s", pkg, imp, why)
			}
		}
	}
}

// docs/architecture.md's package table names every package of the tree,
// and no other.
func TestArchitectureTableMatchesTheTree(t *testing.T) {
	b, err := os.ReadFile("../../docs/architecture.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	start := strings.Index(doc, "## Packages")
	if start < 0 {
		t.Fatal("docs/architecture.md has no Packages section")
	}
	section := doc[start:]
	if next := strings.Index(section[3:], "\n## "); next >= 0 {
		section = section[:next+3]
	}
	row := regexp.MustCompile("(?m)^\\| `([a-z0-9/_-]+)` \\|")
	documented := map[string]bool{}
	for _, m := range row.FindAllStringSubmatch(section, -1) {
		documented[m[1]] = true
	}
	for pkg := range packages(t) {
		if !documented[pkg] {
			t.Errorf("package %s is not in docs/architecture.md's package table", pkg)
		}
		delete(documented, pkg)
	}
	for pkg := range documented {
		t.Errorf("docs/architecture.md's package table names %s, which is not in the tree", pkg)
	}
}

// docs/pci.md is evidence: every test it names exists in the tree, every
// PCI PIN requirement (1-33) has its row, and so has each PCI DSS item the
// line touches.
func TestControlMatrixNamesTestsThatExist(t *testing.T) {
	b, err := os.ReadFile("../../docs/pci.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	defined := map[string]bool{}
	fn := regexp.MustCompile(`(?m)^func ((?:Test|Fuzz|Benchmark)[A-Z0-9]\w*)\(`)
	err = filepath.WalkDir("../..", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && strings.HasPrefix(d.Name(), ".") && path != "../.." {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, "_test.go") {
			return nil
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, m := range fn.FindAllStringSubmatch(string(src), -1) {
			defined[m[1]] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	named := regexp.MustCompile("`((?:Test|Fuzz|Benchmark)[A-Z0-9]\\w*)`").FindAllStringSubmatch(doc, -1)
	if len(named) < 40 {
		t.Fatalf("docs/pci.md names %d tests: the matrix has lost its proofs", len(named))
	}
	for _, m := range named {
		if !defined[m[1]] {
			t.Errorf("docs/pci.md names %s, which no test file defines", m[1])
		}
	}
	for i := 1; i <= 33; i++ {
		if !regexp.MustCompile(fmt.Sprintf(`(?m)^\| %d \| `, i)).MatchString(doc) {
			t.Errorf("docs/pci.md has no row for PCI PIN requirement %d", i)
		}
	}
	for _, item := range []string{"3.3", "3.4", "3.5", "3.6", "4.2.1", "6.2", "6.3", "7-8", "10.2", "10.3", "10.4", "10.5", "10.6", "10.7"} {
		if !strings.Contains(doc, "\n| "+item+" ") && !strings.Contains(doc, "\n| "+item+"-") {
			t.Errorf("docs/pci.md has no row for PCI DSS %s", item)
		}
	}
}
