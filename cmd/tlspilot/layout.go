package main

import (
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/tlspilot/tlspilot/internal/config"
)

// step gives one path of the privilege-separated layout its owner and
// mode (see initSummary).
type step struct {
	path     string
	root     bool        // owned by root:GROUP, else by USER:GROUP
	mode     fs.FileMode // of path, or of every folder below it when recursive; 0 keeps the modes
	fileMode fs.FileMode // of every file below path, when recursive
	recurse  bool
}

// layout lists the steps for the storage in dir and cfg's challenge
// directories, in the order they are applied.
func layout(cfg *config.Config, dir string) []step {
	kek := step{path: kekFile(cfg, dir), root: true, mode: 0o440}
	steps := []step{kek}
	if !cfg.StorageIsDatabase() {
		steps = storageLayout(dir, kek)
	}
	var seen []string
	for _, c := range cfg.Certificates {
		if c.ChallengeDir != "" && !slices.Contains(seen, c.ChallengeDir) {
			seen = append(seen, c.ChallengeDir)
			steps = append(steps, step{path: c.ChallengeDir, mode: 0o755})
		}
	}
	return steps
}

// storageLayout lists the steps for the directory storage dir.
func storageLayout(dir string, kek step) []step {
	data := filepath.Join(dir, "data")
	steps := []step{
		{path: dir, root: true, mode: 0o750},
		kek,
		{path: data, root: true, mode: fs.ModeSticky | 0o770},
		{path: filepath.Join(data, "accounts"), root: true, mode: 0o750, fileMode: 0o440, recurse: true},
		{path: filepath.Join(dir, "locks"), mode: 0o700, recurse: true},
	}
	ents, _ := os.ReadDir(data)
	for _, e := range ents {
		if e.Name() != "accounts" {
			steps = append(steps, step{path: filepath.Join(data, e.Name()), recurse: true})
		}
	}
	return steps
}

// commands returns the shell commands that do s, for owner user:group.
func (s step) commands(user, group string) []string {
	who := user + ":" + group
	if s.root {
		who = "root:" + group
	}
	r := ""
	if s.recurse {
		r = "-R "
	}
	out := []string{fmt.Sprintf("chown %s%s %s", r, who, s.path)}
	switch {
	case s.recurse && s.mode != 0:
		out = append(out, fmt.Sprintf("find %s -type d -exec chmod %s {} +", s.path, octal(s.mode)))
		if s.fileMode != 0 {
			out = append(out, fmt.Sprintf("find %s -type f -exec chmod %s {} +", s.path, octal(s.fileMode)))
		}
	case s.mode != 0:
		out = append(out, fmt.Sprintf("chmod %s %s", octal(s.mode), s.path))
	}
	return out
}

// octal writes a mode as chmod takes it, with the sticky bit.
func octal(m fs.FileMode) string {
	v := uint32(m.Perm())
	if m&fs.ModeSticky != 0 {
		v |= 0o1000
	}
	return fmt.Sprintf("%04o", v)
}

// applyLayout gives every path of steps its owner and mode, printing
// each as the command that does the same.
func applyLayout(steps []step, o *certsOwner, stdout io.Writer) error {
	for _, s := range steps {
		uid := o.uid
		if s.root {
			uid = 0
		}
		if err := s.apply(uid, o.gid); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "  %s\n", strings.Join(s.commands(o.user, o.group), "\n  "))
	}
	fmt.Fprintf(stdout, "storage handed over to %s:%s; the KEK and the ACME account stay root's, read-only to %[1]s\n", o.user, o.group)
	return nil
}

// apply does s with uid and gid.
func (s step) apply(uid, gid int) error {
	set := func(path string, d fs.DirEntry) error {
		if d.Type()&fs.ModeSymlink != 0 {
			return nil // never follow a link out of the layout
		}
		if err := os.Lchown(path, uid, gid); err != nil {
			return err
		}
		mode := s.mode
		if !d.IsDir() && s.recurse {
			mode = s.fileMode
		}
		if mode == 0 {
			return nil
		}
		return os.Chmod(path, mode)
	}
	if !s.recurse {
		fi, err := os.Lstat(s.path)
		if err != nil {
			return err
		}
		return set(s.path, fs.FileInfoToDirEntry(fi))
	}
	return filepath.WalkDir(s.path, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return set(path, d)
	})
}

// printLayoutHint says how to run certs as its own user.
func printLayoutHint(stdout io.Writer, cfg *config.Config, steps []step) {
	fmt.Fprintf(stdout, "owners unchanged: certs and serve may run as this user (uid %d).\n", os.Geteuid())
	fmt.Fprintf(stdout, "To run `tlspilot certs` as its own user, unable to change the KEK and the account, run as root\n"+
		"  tlspilot init --config %s --user USER [--group GROUP]\nwhich does:\n", cfg.File)
	for _, s := range steps {
		fmt.Fprintf(stdout, "  %s\n", strings.Join(s.commands("USER", "GROUP"), "\n  "))
	}
}

// checkDeployDirs says, for each deploy target's folder, whether the
// certs user may write it; it changes nothing there.
func checkDeployDirs(stdout io.Writer, cfg *config.Config, o *certsOwner) {
	var seen []string
	for _, c := range cfg.Certificates {
		for _, kt := range c.KeyTypes {
			for _, p := range []string{c.Fullchain, c.Privkey, c.Cert, c.Chain, c.Combined} {
				if p == "" {
					continue
				}
				dir := filepath.Dir(config.DeployPath(p, kt, len(c.KeyTypes)))
				if slices.Contains(seen, dir) {
					continue
				}
				seen = append(seen, dir)
				if err := accessible(dir, o.uid, o.gid, 3); err != nil {
					fmt.Fprintf(stdout, "deploy directory %s: NOT writable by %s (%v): give it to %[2]s (chown %[2]s:%[4]s %[1]s) or to a group %[2]s is in\n",
						dir, o.user, err, o.group)
					continue
				}
				fmt.Fprintf(stdout, "deploy directory %s: writable by %s\n", dir, o.user)
			}
		}
	}
}
