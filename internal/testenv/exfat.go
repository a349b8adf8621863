package testenv

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// ExFATHint is what to do when the exFAT tools are not installed.
const ExFATHint = "install exFAT tools: apt-get install -y exfatprogs exfat-fuse"

// exfatSize is the size of the image MountExFAT formats.
const exfatSize = 64 << 20

// MountExFAT formats a new 64 MiB exFAT image, attaches it to a loop device,
// mounts it with exfat-fuse on a new temporary directory and returns that
// directory; t.Cleanup unmounts it and detaches the loop device.
//
// exFAT has no hard links (link fails with EPERM) and no per-file
// permissions: every file and directory has mode 0777 minus the umask
// given here as an octal string ("" means the default, 0, so everything is
// 0777; "077" makes everything 0700). Renames over an existing file,
// exclusive create and fsync work.
//
// It needs root, /dev/fuse, a free loop device, mkfs.exfat and
// mount.exfat-fuse; it fails the test (with ExFATHint) if any is missing.
func MountExFAT(t testing.TB, umask string) string {
	t.Helper()
	mkfs, mount := exfatTool(t, "mkfs.exfat"), exfatTool(t, "mount.exfat-fuse")
	img := filepath.Join(t.TempDir(), "exfat.img")
	if err := os.WriteFile(img, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(img, exfatSize); err != nil {
		t.Fatal(err)
	}
	runTool(t, mkfs, img)
	loop := runTool(t, "losetup", "--find", "--show", img)
	t.Cleanup(func() { runCleanup(t, "losetup", "--detach", loop) })
	dir := t.TempDir()
	args := []string{loop, dir}
	if umask != "" {
		args = append([]string{"-o", "umask=" + umask}, args...)
	}
	runTool(t, mount, args...)
	t.Cleanup(func() { runCleanup(t, "umount", dir) })
	if !isFUSEMount(dir) {
		t.Fatalf("exfat: %s is not a FUSE mount after mount.exfat-fuse", dir)
	}
	return dir
}

// exfatTool returns the path of an exFAT command, failing the test with
// ExFATHint if it is not installed.
func exfatTool(t testing.TB, name string) string {
	t.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	for _, dir := range []string{"/usr/sbin", "/sbin"} {
		p := filepath.Join(dir, name)
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	t.Fatalf("%s not found in PATH nor /usr/sbin: %s", name, ExFATHint)
	return ""
}

// runTool runs a command for at most a minute and returns its trimmed output,
// failing the test if it fails.
func runTool(t testing.TB, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("exfat: %s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// runCleanup runs a clean-up command, retrying for a few seconds while the
// device is still busy, and reports a final failure with t.Error.
func runCleanup(t testing.TB, name string, args ...string) {
	t.Helper()
	var out []byte
	var err error
	for range 50 {
		if out, err = exec.Command(name, args...).CombinedOutput(); err == nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Errorf("exfat clean-up: %s %s: %v\n%s", name, strings.Join(args, " "), err, out)
}

// isFUSEMount reports whether dir is the mount point of a FUSE file system.
func isFUSEMount(dir string) bool {
	data, err := os.ReadFile("/proc/self/mounts")
	if err != nil {
		return false
	}
	for line := range strings.SplitSeq(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) >= 3 && f[1] == dir && strings.HasPrefix(f[2], "fuse") {
			return true
		}
	}
	return false
}
