package main

import (
	"fmt"
	"os"
	"os/user"
	"strconv"
	"strings"
	"syscall"
)

// dropPrivileges switches to the configured group and user, after the
// ports are bound. Empty names leave the process as it is.
func dropPrivileges(userName, groupName string) error {
	if userName == "" && groupName == "" {
		return nil
	}
	uid, gid := -1, -1
	if userName != "" {
		u, err := lookupUser(userName)
		if err != nil {
			return err
		}
		uid, _ = strconv.Atoi(u.Uid)
		gid, _ = strconv.Atoi(u.Gid)
	}
	if groupName != "" {
		g, err := lookupGroup(groupName)
		if err != nil {
			return err
		}
		gid, _ = strconv.Atoi(g.Gid)
	}
	if os.Geteuid() != 0 {
		return alreadyAs(uid, gid, userName, groupName)
	}
	if gid >= 0 {
		if err := syscall.Setgroups([]int{gid}); err != nil {
			return fmt.Errorf("drop supplementary groups: %w", err)
		}
		if err := syscall.Setgid(gid); err != nil {
			return fmt.Errorf("switch to group %d: %w", gid, err)
		}
	}
	if uid >= 0 {
		if err := syscall.Setuid(uid); err != nil {
			return fmt.Errorf("switch to user %d: %w", uid, err)
		}
	}
	if uid > 0 && syscall.Setuid(0) == nil {
		return fmt.Errorf("privileges were not dropped: could become root again")
	}
	return nil
}

// alreadyAs accepts a process that was not started as root when it
// already runs as the configured user and group, as it does when systemd
// (User=) or another supervisor starts it that way, and otherwise says
// what to change: only root can switch.
func alreadyAs(uid, gid int, userName, groupName string) error {
	euid, egid := os.Geteuid(), os.Getegid()
	var differs []string
	if uid >= 0 && uid != euid {
		differs = append(differs, fmt.Sprintf("user %s (uid %d), not uid %d", userName, uid, euid))
	}
	if gid >= 0 && gid != egid {
		name := groupName
		if name == "" {
			name = "of user " + userName
		}
		differs = append(differs, fmt.Sprintf("group %s (gid %d), not gid %d", name, gid, egid))
	}
	if len(differs) == 0 {
		return nil
	}
	return fmt.Errorf("the config names %s, and only a process started as root can switch; start it as root, or as that user and group", strings.Join(differs, ", and "))
}

// lookupUser looks up a user by name or numeric id (numericID).
func lookupUser(name string) (*user.User, error) {
	if _, numeric, err := numericID(name); err != nil {
		return nil, err
	} else if numeric {
		return user.LookupId(name)
	}
	return user.Lookup(name)
}

// lookupGroup looks up a group by name or numeric id (numericID).
func lookupGroup(name string) (*user.Group, error) {
	if _, numeric, err := numericID(name); err != nil {
		return nil, err
	} else if numeric {
		return user.LookupGroupId(name)
	}
	return user.LookupGroup(name)
}

// maxID is the largest user or group id: (uid_t)-1 means "unchanged"
// to chown and setresuid.
const maxID = 1<<32 - 2

// numericID reads v as a numeric user or group id when it reads as a
// number at all (numeric), as the config does: decimal from 0 to
// 4294967294, with no sign or leading zero. The C library and the system
// calls take ids as 32-bit numbers, so "4294967296" would be uid 0, and
// "+0" or "00" would be root too: each is an error rather than a user.
func numericID(v string) (id int, numeric bool, err error) {
	if _, err := strconv.Atoi(v); err != nil {
		return 0, false, nil
	}
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil || n > maxID || strconv.FormatUint(n, 10) != v {
		return 0, true, fmt.Errorf("%q: a numeric id is written in decimal from 0 to %d, with no sign or leading zero", v, uint64(maxID))
	}
	return int(n), true, nil
}
