package main

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/user"
	"strconv"
	"syscall"
)

// newLogger returns the daemon's logger: text lines on stderr.
func newLogger(level string, w io.Writer) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("log_level %q: %w", level, err)
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: l})), nil
}

// accessLogger returns the access log: JSON lines on stdout, stderr or
// in a file; nil when it is off.
func accessLogger(dest string, stdout io.Writer) (*slog.Logger, error) {
	var w io.Writer
	switch dest {
	case "off":
		return nil, nil
	case "", "stdout":
		w = stdout
	case "stderr":
		w = os.Stderr
	default:
		f, err := os.OpenFile(dest, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
		if err != nil {
			return nil, err
		}
		w = f
	}
	return slog.New(slog.NewJSONHandler(w, nil)), nil
}

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

func lookupUser(name string) (*user.User, error) {
	if _, err := strconv.Atoi(name); err == nil {
		return user.LookupId(name)
	}
	return user.Lookup(name)
}

func lookupGroup(name string) (*user.Group, error) {
	if _, err := strconv.Atoi(name); err == nil {
		return user.LookupGroupId(name)
	}
	return user.LookupGroup(name)
}
