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
	"path/filepath"
	"syscall"

	"github.com/ivr-pin/ivr-pin/pinsvc/secret"
)

// MaxSize bounds what a secret file may hold: a password or a hex key is
// short, and a wrong path (a log, a device) must not be read whole.
const MaxSize = 64 << 10

// Read reads a secret from a file that only its owner may read: a file
// that group or others can read is refused, naming it and its mode. The
// file must be a regular file owned by this process's user or root, in a
// directory no other user can write (else they could put a file of their
// own in its place), and at most MaxSize bytes. It is opened without
// blocking, so a FIFO or a device named by mistake is refused, not waited
// on, and read through a limit, so a huge or sparse file costs nothing. One
// trailing newline (LF or CRLF) is dropped. The caller wipes the result.
func Read(path string) ([]byte, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK|syscall.O_NOCTTY, 0)
	if err != nil {
		return nil, fmt.Errorf("cannot read %s: %v", path, errors.Unwrap(err))
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("cannot stat %s", path)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file (%s)", path, kind(st.Mode()))
	}
	if perm := st.Mode().Perm(); perm&0o077 != 0 && !onlyThisUserReads(f, perm) {
		return nil, fmt.Errorf("%s has mode %04o: group and others must have no access (chmod 0400 or 0600)", path, perm)
	}
	if uid, ok := owner(st); ok && uid != 0 && uid != uint32(os.Geteuid()) {
		return nil, fmt.Errorf("%s is owned by uid %d: it must be owned by this service's user (uid %d) or root", path, uid, os.Geteuid())
	}
	if err := safeDirectory(path); err != nil {
		return nil, err
	}
	if st.Size() > MaxSize {
		return nil, fmt.Errorf("%s holds %d bytes: a secret file holds at most %d", path, st.Size(), MaxSize)
	}
	// The size can change between stat and read: the limit, not the stat,
	// bounds what is read.
	buf := make([]byte, 0, min(st.Size(), MaxSize)+1)
	b, err := readBounded(io.LimitReader(f, MaxSize+1), buf)
	if err == nil && len(b) > MaxSize {
		err = errTooLarge
	}
	if err != nil {
		secret.Zero(b[:cap(b)])
		if errors.Is(err, errTooLarge) {
			return nil, fmt.Errorf("%s holds more than %d bytes: a secret file holds at most that", path, MaxSize)
		}
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

var errTooLarge = errors.New("too large")

// kind names what a file that is not regular is.
func kind(m os.FileMode) string {
	switch {
	case m&os.ModeNamedPipe != 0:
		return "a FIFO"
	case m&os.ModeSocket != 0:
		return "a socket"
	case m&os.ModeDevice != 0:
		return "a device"
	case m.IsDir():
		return "a directory"
	}
	return m.Type().String()
}

// owner is a file's owner's uid (false where the system does not say).
func owner(st os.FileInfo) (uint32, bool) {
	if sys, ok := st.Sys().(*syscall.Stat_t); ok {
		return sys.Uid, true
	}
	return 0, false
}

// safeDirectory refuses a file in a directory (after symlinks, as a
// Kubernetes secret volume links its files) that a user other than this
// one or root owns, or that others may write without the sticky bit:
// either could swap the file for one of their own.
func safeDirectory(path string) error {
	real, err := filepath.EvalSymlinks(path)
	if err != nil {
		return fmt.Errorf("cannot resolve %s", path)
	}
	dir := filepath.Dir(real)
	st, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("cannot stat %s, the directory of %s", dir, path)
	}
	if uid, ok := owner(st); ok && uid != 0 && uid != uint32(os.Geteuid()) {
		return fmt.Errorf("%s is in %s, owned by uid %d: a secret's directory must be owned by this service's user or root", path, dir, uid)
	}
	if st.Mode().Perm()&0o002 != 0 && st.Mode()&os.ModeSticky == 0 {
		return fmt.Errorf("%s is in %s, which every user may write (mode %04o): move it to a directory only its owner writes", path, dir, st.Mode().Perm())
	}
	return nil
}

// readBounded reads r into buf, growing it in place so no copy of the
// secret is left behind in a discarded buffer.
func readBounded(r io.Reader, buf []byte) ([]byte, error) {
	for {
		if len(buf) == cap(buf) {
			if cap(buf) > MaxSize {
				return buf, errTooLarge
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
