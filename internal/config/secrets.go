package config

import (
	"fmt"
	"reflect"
	"strings"

	"github.com/ivr-pin/ivr-pin/internal/secretfile"
	"github.com/ivr-pin/ivr-pin/pinsvc/secret"
)

// FileSuffix turns a secret's variable into the one naming a file that
// holds it: IVRPIN_ARI_PASSWORD_FILE for IVRPIN_ARI_PASSWORD. systemd's
// LoadCredential= (%d/name) and Docker secrets (/run/secrets/name) both
// hand a service its secrets as such files (internal/secretfile reads
// them).
const FileSuffix = "_FILE"

// secretSettings are the settings tagged secret:"true".
func secretSettings() []setting {
	var out []setting
	for _, s := range settings() {
		if s.Tag.Get("secret") == "true" {
			out = append(out, s)
		}
	}
	return out
}

// SecretVariables lists every secret's variable (with the prefix), each of
// which has a _FILE twin.
func SecretVariables() []string {
	var out []string
	for _, s := range secretSettings() {
		out = append(out, Prefix+"_"+s.Name)
	}
	return out
}

// readSecrets fills each secret given as a file and refuses a secret given
// both ways, stopping at the first problem.
func (c *Config) readSecrets(lookup func(string) (string, bool)) error {
	return first(c.readAllSecrets(lookup))
}

// readAllSecrets fills each secret given as a file, records which came
// from the environment, and reports every secret given both ways and every
// file refused (its setting then counts as given, so it is not also
// reported missing). The zone PIN key is special: its file is read into
// bytes that are parsed into the key's cipher and wiped, and never becomes
// a string (loadKeys).
func (c *Config) readAllSecrets(lookup func(string) (string, bool)) []error {
	var out []error
	for _, s := range secretSettings() {
		env, inEnv := lookup(Prefix + "_" + s.Name)
		path, inFile := lookup(Prefix + "_" + s.Name + FileSuffix)
		inEnv, inFile = inEnv && env != "", inFile && path != ""
		switch {
		case inEnv && inFile:
			c.refuse(s.Name)
			out = append(out, problem(s.Name+FileSuffix, "IVRPIN_"+s.Name+" is set too: give the secret one way, the file (preferred) or the variable"))
		case inEnv:
			c.fromEnv = append(c.fromEnv, Prefix+"_"+s.Name)
		case inFile:
			c.fromFiles = append(c.fromFiles, Prefix+"_"+s.Name)
			// A software key's file is read into bytes when it is
			// parsed (loadKeys), never into a string.
			if k := map[string]*softwareKey{"NI_ZPK": &c.zpkSoft, "NI_ZPK_NEXT": &c.nextSoft}[s.Name]; k != nil {
				k.file = path
				continue
			}
			b, err := secretfile.Read(path)
			if err != nil {
				c.refuse(s.Name)
				out = append(out, problem(s.Name+FileSuffix, err.Error()))
				continue
			}
			reflect.ValueOf(c).Elem().FieldByIndex(s.Index).SetString(string(b))
			secret.Zero(b)
		}
	}
	return out
}

// refuse records that a secret was given but refused.
func (c *Config) refuse(name string) {
	if c.refused == nil {
		c.refused = map[string]bool{}
	}
	c.refused[name] = true
}

// placeholders are texts of the shipped samples that mark a value still to
// be replaced.
var placeholders = []string{"replace-me", "change-me", "changeme"}

// minPasswordLength is the shortest ARI password accepted: the listener's
// is guessed over the network, and ARI's carries every digit a caller types.
const minPasswordLength = 16

// weakPassword says why a password must not be used, or "".
func weakPassword(pw string) string {
	low := strings.ToLower(pw)
	for _, p := range placeholders {
		if strings.Contains(low, p) {
			return "is the samples' placeholder text: set a password of your own"
		}
	}
	if strings.TrimSpace(pw) == "" {
		return "is only white space"
	}
	if len(pw) < minPasswordLength {
		return fmt.Sprintf("is shorter than %d characters", minPasswordLength)
	}
	if n := distinctRunes(pw); n < minDistinct {
		return fmt.Sprintf("has %d different characters; a password needs at least %d (one character repeated, or a short pattern, is guessed first)", n, minDistinct)
	}
	return ""
}

// minDistinct is the fewest different characters a password may have.
const minDistinct = 8

func distinctRunes(s string) int {
	seen := map[rune]bool{}
	for _, r := range s {
		seen[r] = true
	}
	return len(seen)
}

// SecretsFromEnvironment lists the secrets that came from the environment
// rather than from files (serve warns of them: the environment of a process
// can be read by anything running as its user).
func (c *Config) SecretsFromEnvironment() []string { return append([]string(nil), c.fromEnv...) }

// GivenAs is the variable a secret was given by, without the prefix: name,
// or name_FILE when it came from a file (an error about the secret names
// what the operator set).
func (c *Config) GivenAs(name string) string {
	if c.fromFile(Prefix + "_" + name) {
		return name + FileSuffix
	}
	return name
}

// fromFile reports whether the secret variable name was given as a file.
func (c *Config) fromFile(name string) bool {
	for _, n := range c.fromFiles {
		if n == name {
			return true
		}
	}
	return false
}
