package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	certbotdir "github.com/tlspilot/tlspilot/internal/certbot"
	"github.com/tlspilot/tlspilot/internal/config"
)

// entry renders the [[certificate]] table of a lineage.
func entry(l *certbotdir.Lineage, set certbotdir.Settings, names []string, now time.Time) string {
	var b strings.Builder
	fmt.Fprintf(&b, "\n# Imported from certbot (%s) on %s.\n[[certificate]]\n", l.Conf.File, now.UTC().Format(time.DateOnly))
	fmt.Fprintf(&b, "names = %s\n", tomlList(names))
	fmt.Fprintf(&b, "key_type = %s\n", tomlString(set.KeyType))
	fmt.Fprintf(&b, "challenge = %s\n", tomlString(set.Challenge))
	if set.ChallengeDir != "" {
		fmt.Fprintf(&b, "challenge_dir = %s\n", tomlString(set.ChallengeDir))
	}
	if set.Standalone != "" {
		fmt.Fprintf(&b, "standalone = %s\n", tomlString(set.Standalone))
	}
	for _, f := range []struct{ key, path string }{{"fullchain", l.Fullchain}, {"privkey", l.Privkey}, {"cert", l.Cert}, {"chain", l.Chain}} {
		if f.path != "" {
			fmt.Fprintf(&b, "%s = %s\n", f.key, tomlString(f.path))
		}
	}
	keyAccess(&b, l.Privkey)
	if len(set.Reload) > 0 {
		fmt.Fprintf(&b, "reload = %s\n", tomlList(set.Reload))
	}
	return b.String()
}

// keyAccess carries the group and mode of certbot's private key over, so
// that software reading it through a group still can.
func keyAccess(b *strings.Builder, privkey string) {
	fi, err := os.Stat(privkey)
	if err != nil {
		return
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	mode := fi.Mode().Perm()
	if !ok || mode&0o040 == 0 || mode&0o007 != 0 || int(st.Gid) == os.Getegid() {
		return
	}
	if g, err := user.LookupGroupId(strconv.Itoa(int(st.Gid))); err == nil {
		fmt.Fprintf(b, "group = %s\nmode = %s\n", tomlString(g.Name), tomlString(fmt.Sprintf("%04o", mode&0o770)))
	}
}

// tomlString quotes s as a TOML basic string.
func tomlString(s string) string {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s) // a string always encodes
	return strings.TrimSpace(buf.String())
}

// tomlList quotes ss as a TOML array of strings.
func tomlList(ss []string) string {
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = tomlString(s)
	}
	return "[" + strings.Join(q, ", ") + "]"
}

// writeConfig replaces the config file at path with text: a temporary
// file with the same mode and owner, checked with config.Load, synced,
// renamed over path, directory synced. The old file stays if anything
// fails.
func writeConfig(path string, text []byte) error {
	fi, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	t, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".import-*")
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	tmp := t.Name()
	defer func() { _ = os.Remove(tmp) }() // gone after the rename
	err = fillTemp(t, fi, text)
	if cerr := t.Close(); err == nil && cerr != nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("config: write %s: %w", tmp, err)
	}
	if _, err := config.Load(tmp); err != nil {
		return fmt.Errorf("the config with the imported tables does not load (%s is unchanged): %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	return syncDirOf(path)
}

// fillTemp gives t the mode and owner of fi and the content text.
func fillTemp(t *os.File, fi fs.FileInfo, text []byte) error {
	if err := t.Chmod(fi.Mode().Perm()); err != nil {
		return err
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && (int(st.Uid) != os.Geteuid() || int(st.Gid) != os.Getegid()) {
		if err := t.Chown(int(st.Uid), int(st.Gid)); err != nil {
			return fmt.Errorf("keep owner %d:%d: %w", st.Uid, st.Gid, err)
		}
	}
	if _, err := t.Write(text); err != nil {
		return err
	}
	return t.Sync()
}

// syncDirOf syncs the directory holding path.
func syncDirOf(path string) error {
	d, err := os.Open(filepath.Dir(path))
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, syscall.EINVAL) {
		return fmt.Errorf("sync %s: %w", filepath.Dir(path), err)
	}
	return nil
}
