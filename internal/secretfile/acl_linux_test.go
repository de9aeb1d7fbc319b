//go:build linux

package secretfile

import (
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// setACL writes a POSIX access ACL: owner r, the given entries, mask r,
// other none.
func setACL(t *testing.T, path string, entries ...[3]uint32) {
	t.Helper()
	all := append([][3]uint32{{0x01, aclRead, 0xFFFFFFFF}}, entries...)
	all = append(all, [3]uint32{0x10, aclRead, 0xFFFFFFFF}, [3]uint32{aclOther, 0, 0xFFFFFFFF})
	b := make([]byte, 4, 4+8*len(all))
	binary.LittleEndian.PutUint32(b, aclVersion)
	for _, e := range all {
		var x [8]byte
		binary.LittleEndian.PutUint16(x[:], uint16(e[0]))
		binary.LittleEndian.PutUint16(x[2:], uint16(e[1]))
		binary.LittleEndian.PutUint32(x[4:], e[2])
		b = append(b, x[:]...)
	}
	if err := unix.Setxattr(path, "system.posix_acl_access", b, 0); err != nil {
		if errors.Is(err, unix.ENOTSUP) || errors.Is(err, unix.EOPNOTSUPP) {
			t.Skip("no POSIX ACLs on the test's file system")
		}
		t.Fatal(err)
	}
}

// A systemd credential (0400 with an ACL entry for the service's user,
// shown by stat as 0440) is read; an ACL that lets a group or another user
// read is refused.
func TestSecretFileACLs(t *testing.T) {
	me := uint32(os.Geteuid())
	cred := writeSecret(t, "credential-password-123", 0o400)
	setACL(t, cred, [3]uint32{aclUser, aclRead, me}, [3]uint32{aclGroupObj, 0, 0xFFFFFFFF})
	if st, _ := os.Stat(cred); st.Mode().Perm() != 0o440 {
		t.Fatalf("mode with the ACL %04o, want 0440 (the mask in the group bits)", st.Mode().Perm())
	}
	if b, err := Read(cred); err != nil || string(b) != "credential-password-123" {
		t.Fatalf("a systemd-style credential: %v", err)
	}
	other := writeSecret(t, "credential-password-123", 0o400)
	setACL(t, other, [3]uint32{aclUser, aclRead, me + 4242}, [3]uint32{aclGroupObj, 0, 0xFFFFFFFF})
	if _, err := Read(other); err == nil || !strings.Contains(err.Error(), "mode 0440") {
		t.Fatalf("another user in the ACL: %v", err)
	}
	group := writeSecret(t, "credential-password-123", 0o400)
	setACL(t, group, [3]uint32{aclGroupObj, aclRead, 0xFFFFFFFF})
	if _, err := Read(group); err == nil {
		t.Fatal("a group in the ACL")
	}
}

func writeSecret(t *testing.T, content string, mode os.FileMode) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(p, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil { // past the umask
		t.Fatal(err)
	}
	return p
}
