package main

import (
	"encoding/binary"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
)

// aclEntryBytes is one entry of a system.posix_acl_access value.
func aclEntryBytes(tag, perm uint16, id uint32) []byte {
	b := make([]byte, 8)
	binary.LittleEndian.PutUint16(b, tag)
	binary.LittleEndian.PutUint16(b[2:], perm)
	binary.LittleEndian.PutUint32(b[4:], id)
	return b
}

// TestTrialCheckACLMaskNone: a hook whose ACL mask grants nothing (mode
// 0705 after "chmod g=" on a file that has an ACL naming the run-as
// user's group) is run by that user through the "other" bits: Linux
// consults an ACL only when its mask grants something, and otherwise
// decides by the permission bits (fs/namei.c, acl_permission_check). check
// applied the ACL's named group entry and refused a hook the user runs.
func TestTrialCheckACLMaskNone(t *testing.T) {
	dir, private := runAsDirs(t)
	if err := os.Chmod(private, 0o755); err != nil {
		t.Fatal(err)
	}
	hook := filepath.Join(private, "hook")
	const undefined = 0xffffffff
	acl := []byte{2, 0, 0, 0}
	acl = append(acl, aclEntryBytes(aclUserObj, 7, undefined)...)
	acl = append(acl, aclEntryBytes(aclGroupObj, 5, undefined)...)
	acl = append(acl, aclEntryBytes(aclGroup, 5, 65534)...) // nobody's group
	acl = append(acl, aclEntryBytes(aclMask, 0, undefined)...)
	acl = append(acl, aclEntryBytes(aclOther, 5, undefined)...)
	if err := syscall.Setxattr(hook, "system.posix_acl_access", acl, 0); err != nil {
		t.Fatalf("set an ACL on %s: %v", hook, err)
	}
	run := exec.Command(hook)
	run.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534, Groups: []uint32{}}}
	if err := run.Run(); err != nil {
		t.Fatalf("the kernel does not let nobody run the hook (%v): the premise of this test fails", err)
	}
	if code, out := checkAsNobody(t, dir, "notify_command = ["+strconvQuote(hook)+"]\n"); code != 0 {
		t.Errorf("check with a hook nobody runs (ACL mask none, others r-x): exit %d\n%s", code, out)
	}
}
