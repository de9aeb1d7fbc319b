package config

import (
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"strings"

	"github.com/ivr-pin/ivr-pin/pinsvc/secret"
)

// FileSuffix turns a secret's variable into the one naming a file that
// holds it: IVRPIN_ARI_PASSWORD_FILE for IVRPIN_ARI_PASSWORD. systemd's
// LoadCredential= (%d/name) and Docker secrets (/run/secrets/name) both
// hand a service its secrets as such files.
const FileSuffix = "_FILE"

// maxSecretFile bounds what a secret file may hold: a password or a hex
// key is short, and a wrong path (a log, a device) must not be read whole.
const maxSecretFile = 64 << 10

// secretFields are the settings tagged secret:"true", by variable name
// (without the prefix).
func secretFields() []reflect.StructField {
	var out []reflect.StructField
	t := reflect.TypeOf(Config{})
	for i := 0; i < t.NumField(); i++ {
		if t.Field(i).Tag.Get("secret") == "true" {
			out = append(out, t.Field(i))
		}
	}
	return out
}

// SecretVariables lists every secret's variable (with the prefix), each of
// which has a _FILE twin.
func SecretVariables() []string {
	var out []string
	for _, f := range secretFields() {
		out = append(out, Prefix+"_"+f.Tag.Get("envconfig"))
	}
	return out
}

// readSecrets fills each secret given as a file and refuses a secret given
// both ways. It records which secrets came from the environment. The zone
// PIN key is special: its file is read into bytes that are parsed into the
// key's cipher and wiped, and never becomes a string (see loadZPK).
func (c *Config) readSecrets(lookup func(string) (string, bool)) error {
	for _, f := range secretFields() {
		name := f.Tag.Get("envconfig")
		env, inEnv := lookup(Prefix + "_" + name)
		path, inFile := lookup(Prefix + "_" + name + FileSuffix)
		inEnv, inFile = inEnv && env != "", inFile && path != ""
		switch {
		case inEnv && inFile:
			return problem(name+FileSuffix, "IVRPIN_"+name+" is set too: give the secret one way, the file (preferred) or the variable")
		case inEnv:
			c.fromEnv = append(c.fromEnv, Prefix+"_"+name)
		case inFile:
			c.fromFiles = append(c.fromFiles, Prefix+"_"+name)
			if f.Name == "NIZPK" {
				c.zpkFile = path
				continue
			}
			b, err := ReadSecretFile(path)
			if err != nil {
				return problem(name+FileSuffix, err.Error())
			}
			reflect.ValueOf(c).Elem().FieldByName(f.Name).SetString(string(b))
			secret.Zero(b)
		}
	}
	return nil
}

// ReadSecretFile reads a secret from a file that only its owner may read:
// a file that group or others can read is refused, naming it and its mode.
// One trailing newline (LF or CRLF) is dropped. The caller wipes the
// result.
func ReadSecretFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read %s: %v", path, errors.Unwrap(err))
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("cannot stat %s", path)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file", path)
	}
	if perm := st.Mode().Perm(); perm&0o077 != 0 && !onlyThisUserReads(f, perm) {
		return nil, fmt.Errorf("%s has mode %04o: group and others must have no access (chmod 0400 or 0600)", path, perm)
	}
	buf := make([]byte, 0, st.Size()+1)
	b, err := readBounded(f, buf)
	if err != nil {
		secret.Zero(b[:cap(b)])
		return nil, fmt.Errorf("cannot read %s", path)
	}
	switch {
	case len(b) >= 2 && b[len(b)-2] == '\r' && b[len(b)-1] == '\n':
		b[len(b)-2], b[len(b)-1] = 0, 0
		b = b[:len(b)-2]
	case len(b) >= 1 && b[len(b)-1] == '\n':
		b[len(b)-1] = 0
		b = b[:len(b)-1]
	}
	if len(b) == 0 {
		return nil, fmt.Errorf("%s is empty", path)
	}
	return b, nil
}

// readBounded reads r into buf, growing it in place so no copy of the
// secret is left behind in a discarded buffer.
func readBounded(r io.Reader, buf []byte) ([]byte, error) {
	for {
		if len(buf) == cap(buf) {
			if cap(buf) >= maxSecretFile {
				return buf, errors.New("too large")
			}
			bigger := make([]byte, len(buf), 2*cap(buf)+64)
			copy(bigger, buf)
			secret.Zero(buf[:cap(buf)])
			buf = bigger
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
	}
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
	if len(pw) < minPasswordLength {
		return fmt.Sprintf("is shorter than %d characters", minPasswordLength)
	}
	return ""
}

// SecretsFromEnvironment lists the secrets that came from the environment
// rather than from files (serve warns of them: the environment of a process
// can be read by anything running as its user).
func (c *Config) SecretsFromEnvironment() []string { return append([]string(nil), c.fromEnv...) }

// fromFile reports whether the secret variable name was given as a file.
func (c *Config) fromFile(name string) bool {
	for _, n := range c.fromFiles {
		if n == name {
			return true
		}
	}
	return false
}
