package deploy

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"
)

// dropInheritedACL removes from the new file t, created in the folder
// dir, the access ACL it inherited from the folder's default ACL, when
// the folder belongs to another user than root and tlspilot's. That
// user may set a default ACL on its own folder (setfacl -d -m u:pg:r):
// the key's named entries would then grant it what Mode's group bits
// grant (mode 0640 makes the ACL mask r--), a key it may not read. A
// default ACL root or tlspilot's user set (to give a service access) is
// kept.
func dropInheritedACL(dir, t *os.File) error {
	var st unix.Stat_t
	if err := unix.Fstat(int(dir.Fd()), &st); err != nil {
		return err
	}
	if st.Uid == 0 || int(st.Uid) == os.Geteuid() {
		return nil
	}
	err := unix.Fremovexattr(int(t.Fd()), "system.posix_acl_access")
	if errors.Is(err, unix.ENODATA) || errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.ENOTSUP) {
		return nil
	}
	return err
}
