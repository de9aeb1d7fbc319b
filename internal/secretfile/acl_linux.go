//go:build linux

package secretfile

import (
	"encoding/binary"
	"os"

	"golang.org/x/sys/unix"
)

// POSIX ACL entry tags and the read bit, as the kernel stores them in the
// system.posix_acl_access attribute (linux/posix_acl_xattr.h).
const (
	aclUser     = 0x02
	aclGroupObj = 0x04
	aclGroup    = 0x08
	aclOther    = 0x20
	aclRead     = 0x04
	aclVersion  = 2
)

// onlyThisUserReads looks past group bits that are an ACL's mask: systemd
// writes a LoadCredential= file 0400, owned by root, and lets the service's
// user read it through an ACL entry, so stat shows mode 0440 though no group
// can read it. The file passes when its ACL lets no group and no one else
// read it, and names no user but this process's. perm is the stat mode.
func onlyThisUserReads(f *os.File, perm os.FileMode) bool {
	if perm&0o007 != 0 {
		return false // others: no ACL entry narrows that
	}
	buf := make([]byte, 1024)
	n, err := unix.Fgetxattr(int(f.Fd()), "system.posix_acl_access", buf)
	if err != nil || n < 4 || (n-4)%8 != 0 || binary.LittleEndian.Uint32(buf) != aclVersion {
		return false // no ACL: the group bits are the group's
	}
	me := uint32(os.Geteuid())
	for e := buf[4:n]; len(e) >= 8; e = e[8:] {
		tag, p, id := binary.LittleEndian.Uint16(e), binary.LittleEndian.Uint16(e[2:]), binary.LittleEndian.Uint32(e[4:])
		if p&aclRead == 0 {
			continue
		}
		switch tag {
		case aclGroupObj, aclGroup, aclOther:
			return false
		case aclUser:
			if id != me {
				return false
			}
		}
	}
	return true
}
