package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"syscall"

	"github.com/tlspilot/tlspilot"
	"github.com/tlspilot/tlspilot/internal/config"
)

const initSummary = `Run once by the administrator, before certs or serve: creates the storage,
its key-encryption key (STORAGE/kek, or kek_file) and the ACME account (registered with
the config's CA, agreeing to its terms if agree_terms is set, with EAB if
configured). Run again, it keeps what exists and says so: a KEK or a
usable account is never replaced (an account the CA deactivated is
replaced by a new one, its key kept aside).

With --user USER (as root), it hands the storage over to the user
"tlspilot certs" runs as, keeping what USER must not change root's:

  STORAGE                root:GROUP  0750
  STORAGE/kek            root:GROUP  0440   read-only to certs
  STORAGE/data           root:GROUP  1770   sticky: certs adds its own records, cannot rename root's
  STORAGE/data/accounts  root:GROUP  0750, files 0440   the account: read-only to certs
  STORAGE/locks          USER:GROUP  0700
  the rest of data/      USER:GROUP
  each challenge_dir     USER:GROUP  0755   served by the web server

With a PostgreSQL storage only the KEK (kek_file) and the challenge
directories are handed over. GROUP is USER's primary group unless --group
names another. Without
--user it changes no owner and prints the commands that would.
Afterwards it checks that USER may write each deploy target's directory
and says which it may not (it never widens a mode there). See
docs/privilege-separation.md.`

// initFlags are the options of `tlspilot init`.
type initFlags struct {
	*commandFlags
	user, group *string
}

func initCmd(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cf := initFlags{commandFlags: newFlags("init", "[--config FILE] [--user USER [--group GROUP]]", initSummary, stdout, stderr)}
	cf.user = cf.String("user", "", "the `USER` tlspilot certs runs as: hand the storage over to it (needs root)")
	cf.group = cf.String("group", "", "the `GROUP` tlspilot certs runs as (default: USER's primary group)")
	if code, ok := cf.parse(args, stdout); !ok {
		return code
	}
	if cf.NArg() > 0 {
		fmt.Fprintf(stderr, "tlspilot init: unexpected argument %q\n", cf.Arg(0))
		return 2
	}
	if err := runInit(ctx, cf, stdout, stderr); err != nil {
		fmt.Fprintf(stderr, "tlspilot init: %v\n", err)
		return 1
	}
	return 0
}

// runInit creates the storage, the KEK and the account, then the layout.
func runInit(ctx context.Context, cf initFlags, stdout, stderr io.Writer) error {
	cfg, err := cf.load()
	if err != nil {
		return err
	}
	var owner *certsOwner
	if *cf.user != "" || *cf.group != "" {
		if owner, err = lookupCertsOwner(*cf.user, *cf.group); err != nil {
			return err
		}
		if os.Geteuid() != 0 {
			return fmt.Errorf("--user %s: only root can give the storage to another user and keep the KEK and account root's", *cf.user)
		}
	}
	if err := cfg.CheckTerms(); err != nil {
		return err
	}
	dir, err := storageDir(cfg)
	if err != nil {
		return err
	}
	if err := initKeys(ctx, cfg, dir, stdout, stderr); err != nil {
		return err
	}
	if cfg.IsIssuer() {
		if err := initFleetCA(ctx, cfg, stdout); err != nil {
			return err
		}
	}
	steps := layout(cfg, dir)
	if owner == nil {
		warnHandedOver(stdout, cfg, dir)
		printLayoutHint(stdout, cfg, steps)
		return nil
	}
	if err := applyLayout(steps, owner, stdout); err != nil {
		return err
	}
	checkDeployDirs(stdout, cfg, owner)
	return nil
}

// initKeys opens (creating) the storage and its KEK, registers the
// account, and prints what was made and what was kept.
func initKeys(ctx context.Context, cfg *config.Config, dir string, stdout, stderr io.Writer) error {
	kek := kekFile(cfg, dir)
	_, kerr := os.Stat(kek)
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	mcfg, err := managerConfig(cfg, logger)
	if err != nil {
		return err
	}
	m, err := tlspilot.New(ctx, mcfg)
	if err != nil {
		return newError(cfg, err)
	}
	fmt.Fprintf(stdout, "storage %s: ready\n", dir)
	if errors.Is(kerr, fs.ErrNotExist) {
		fmt.Fprintf(stdout, "key-encryption key %s: created\n", kek)
	} else {
		fmt.Fprintf(stdout, "key-encryption key %s: exists, kept\n", kek)
	}
	before := m.AccountStatus(ctx)
	st, err := m.RegisterAccount(ctx)
	if err != nil {
		return fmt.Errorf("ACME account at %s: %w", st.CA, err)
	}
	switch {
	case before.State == tlspilot.AccountUnregistered:
		fmt.Fprintf(stdout, "ACME account at %s: registered %s\n", st.CA, st.URL)
	case before.URL != st.URL:
		fmt.Fprintf(stdout, "ACME account at %s: %s was no longer usable; registered %s with a new key (the old key is kept aside)\n", st.CA, before.URL, st.URL)
	default:
		fmt.Fprintf(stdout, "ACME account at %s: %s exists, valid at the CA, kept\n", st.CA, st.URL)
	}
	return nil
}

// warnHandedOver says when an earlier `init --user` handed the storage to
// another user: files made now (a replaced account's new key) are this
// user's until init runs again with --user.
func warnHandedOver(stdout io.Writer, cfg *config.Config, dir string) {
	fi, err := os.Stat(filepath.Join(dir, "locks"))
	if err != nil {
		return
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok || int(st.Uid) == os.Geteuid() {
		return
	}
	fmt.Fprintf(stdout, "WARNING: the storage was handed over to uid %[1]d: run `tlspilot init --config %[2]s --user %[1]d --group %[3]d` "+
		"so that what was made now is handed over too\n", st.Uid, cfg.File, st.Gid)
}

// kekFile is the KEK file of cfg, whose storage is dir: kek_file, else
// the storage directory's "kek".
func kekFile(cfg *config.Config, dir string) string {
	if cfg.KEKFile != "" {
		return cfg.KEKFile
	}
	return filepath.Join(dir, "kek")
}

// certsOwner is the user and group `tlspilot certs` runs as.
type certsOwner struct {
	user, group string
	uid, gid    int
}

// lookupCertsOwner resolves --user and --group; numeric ids need no
// entry in /etc/passwd or /etc/group.
func lookupCertsOwner(userName, groupName string) (*certsOwner, error) {
	if userName == "" {
		return nil, errors.New("--group needs --user")
	}
	o := &certsOwner{user: userName, group: groupName, gid: -1}
	u, err := lookupUser(userName)
	n, numeric, nerr := numericID(userName)
	switch {
	case nerr != nil:
		return nil, fmt.Errorf("--user: %w", nerr)
	case err == nil:
		o.uid, _ = strconv.Atoi(u.Uid)
		o.gid, _ = strconv.Atoi(u.Gid)
	case numeric:
		o.uid = n
	default:
		return nil, fmt.Errorf("--user: %w", err)
	}
	if groupName != "" {
		g, err := lookupGroup(groupName)
		n, numeric, nerr := numericID(groupName)
		switch {
		case nerr != nil:
			return nil, fmt.Errorf("--group: %w", nerr)
		case err == nil:
			o.gid, _ = strconv.Atoi(g.Gid)
		case numeric:
			o.gid = n
		default:
			return nil, fmt.Errorf("--group: %w", err)
		}
	}
	if o.gid < 0 {
		return nil, fmt.Errorf("--user %s has no entry in the user database: name its group with --group", userName)
	}
	if o.group == "" {
		o.group = strconv.Itoa(o.gid)
		if g, err := lookupGroup(o.group); err == nil {
			o.group = g.Name
		}
	}
	return o, nil
}
