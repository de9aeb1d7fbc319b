//go:build !linux

package secretfile

import "os"

// onlyThisUserReads: without Linux ACLs, group bits are the group's.
func onlyThisUserReads(*os.File, os.FileMode) bool { return false }
