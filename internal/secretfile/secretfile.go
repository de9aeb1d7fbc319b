// Package secretfile reads a secret (a password, a key's hex, a token's PIN)
// from a file that only its owner may read, as systemd's LoadCredential=
// (%d/name) and Docker secrets (/run/secrets/name) hand a service its
// secrets. The caller wipes what it gets.
package secretfile

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/ivr-pin/ivr-pin/pinsvc/secret"
)

// MaxSize bounds what a secret file may hold: a password or a hex key is
// short, and a wrong path (a log, a device) must not be read whole.
const MaxSize = 64 << 10

// Read reads a secret from a file that only its owner may read: a file
// that group or others can read is refused, naming it and its mode. One
// trailing newline (LF or CRLF) is dropped. The caller wipes the result.
func Read(path string) ([]byte, error) {
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
			if cap(buf) >= MaxSize {
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
