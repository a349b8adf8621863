package main

import (
	"encoding/binary"
	"errors"
	"io/fs"
	"syscall"
)

// POSIX ACL entry tags, as Linux stores them in the
// system.posix_acl_access extended attribute (linux/posix_acl_xattr.h).
const (
	aclUserObj  = 0x01
	aclUser     = 0x02
	aclGroupObj = 0x04
	aclGroup    = 0x08
	aclMask     = 0x10
	aclOther    = 0x20
)

// aclEntry is one entry of an access ACL.
type aclEntry struct {
	tag, perm uint16
	id        uint32
}

// accessACL returns path's POSIX access ACL, or false when it has none
// (or its file system keeps none): its permission bits then say it all.
func accessACL(path string) ([]aclEntry, bool) {
	buf := make([]byte, 4+8*64)
	n, err := syscall.Getxattr(path, "system.posix_acl_access", buf)
	if errors.Is(err, syscall.ERANGE) {
		if n, err = syscall.Getxattr(path, "system.posix_acl_access", nil); err == nil {
			buf = make([]byte, n)
			n, err = syscall.Getxattr(path, "system.posix_acl_access", buf)
		}
	}
	if err != nil || n < 4 || (n-4)%8 != 0 || binary.LittleEndian.Uint32(buf) != 2 {
		return nil, false
	}
	var acl []aclEntry
	for b := buf[4:n]; len(b) >= 8; b = b[8:] {
		acl = append(acl, aclEntry{binary.LittleEndian.Uint16(b), binary.LittleEndian.Uint16(b[2:]), binary.LittleEndian.Uint32(b[4:])})
	}
	return acl, true
}

// aclPermits reports whether acl, on a file owned by owner and group,
// grants uid, of group gid and no other, the permissions want, as the
// kernel decides (acl(5), "Access check algorithm").
func aclPermits(acl []aclEntry, owner, group uint32, uid, gid int, want fs.FileMode) bool {
	mask := uint16(7)
	for _, e := range acl {
		if e.tag == aclMask {
			mask = e.perm
		}
	}
	has := func(perm uint16) bool { return fs.FileMode(perm)&want == want }
	if int(owner) == uid {
		return has(aclPerm(acl, aclUserObj))
	}
	for _, e := range acl {
		if e.tag == aclUser && int(e.id) == uid {
			return has(e.perm & mask)
		}
	}
	matched := false
	for _, e := range acl {
		if (e.tag == aclGroupObj && int(group) == gid) || (e.tag == aclGroup && int(e.id) == gid) {
			if has(e.perm & mask) {
				return true
			}
			matched = true
		}
	}
	return !matched && has(aclPerm(acl, aclOther))
}

// aclPerm returns the permissions of acl's entry with tag, or none.
func aclPerm(acl []aclEntry, tag uint16) uint16 {
	for _, e := range acl {
		if e.tag == tag {
			return e.perm
		}
	}
	return 0
}
