package config

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// rfc2136Head is a [dns] table for rfc2136 up to its tsig_key line
// (line 4), which the cases complete.
const rfc2136Head = "[dns]\nprovider = \"rfc2136\"\nserver = \"127.0.0.1:53\"\n"

// parseWant parses text and checks that it is refused with want, at
// the key's own line, not at dns.provider.
func parseWant(t *testing.T, f *fixture, text, want string) {
	t.Helper()
	_, err := f.parse(t, text)
	want = strings.ReplaceAll(want, "$DIR", f.dir)
	if err == nil || !strings.Contains(err.Error(), want) || strings.Contains(err.Error(), "dns.provider") {
		t.Errorf("config %q:\n got %v\nwant %q", text, err, want)
	}
}

// TestDNSCommandChecked: the exec provider's command is checked when the
// config is read, as notify_command is, so that check refuses at the
// command line what certs and serve refuse at start: a missing program,
// one not executable, a bare name not in PATH, and a certbot-style
// command with arguments, told that it takes none.
func TestDNSCommandChecked(t *testing.T) {
	f := newFixture(t)
	f.write(t, "nx.sh", "#!/bin/sh\n", 0o644)
	f.write(t, "good.sh", "#!/bin/sh\n", 0o755)
	if err := os.Mkdir(filepath.Join(f.dir, "my hooks"), 0o755); err != nil {
		t.Fatal(err)
	}
	f.write(t, "my hooks/good.sh", "#!/bin/sh\n", 0o755)
	head := "[dns]\nprovider = \"exec\"\n"
	for _, b := range []struct{ command, want string }{
		{"./nohook.sh", "tlspilot.toml:3: dns.command: $DIR/nohook.sh does not exist"},
		{"./nx.sh", "tlspilot.toml:3: dns.command: $DIR/nx.sh is not an executable file"},
		{"./my hooks", "tlspilot.toml:3: dns.command: $DIR/my hooks is not an executable file"},
		{"nosuchcmd-xyz", `tlspilot.toml:3: dns.command: "nosuchcmd-xyz" is not found in PATH`},
		{"$DIR/good.sh --verbose", "tlspilot.toml:3: dns.command: $DIR/good.sh --verbose does not exist (it is run without a shell, " +
			"as COMMAND present|cleanup FQDN VALUE, and takes no arguments of its own"},
		{"dns-hook --verbose", `"dns-hook --verbose" is not found in PATH (it is run without a shell`},
		{"", "tlspilot.toml:3: dns.command: empty program name"},
	} {
		parseWant(t, f, head+"command = \""+b.command+"\"\n", b.want)
	}
	for command, want := range map[string]string{
		"./good.sh":          filepath.Join(f.dir, "good.sh"),
		"my hooks/good.sh":   filepath.Join(f.dir, "my hooks", "good.sh"),
		"true":               "true",
		"$DIR/good.sh":       filepath.Join(f.dir, "good.sh"),
		"./my hooks/good.sh": filepath.Join(f.dir, "my hooks", "good.sh"),
	} {
		if c := f.mustParse(t, head+"command = \""+command+"\"\n"); c.DNS.Command != want {
			t.Errorf("command %q: %q, want %q", command, c.DNS.Command, want)
		}
	}
}

// TestTSIGKeyChecked: an empty tsig_key, or one that is no domain name
// (an empty label: every update then fails with "bad rdata"), is refused
// at its line; names with or without the final dot are accepted.
func TestTSIGKeyChecked(t *testing.T) {
	f := newFixture(t)
	tail := "tsig_secret_file = \"tsig.secret\"\n"
	for _, b := range []struct{ key, want string }{
		{"", `tlspilot.toml:4: dns.tsig_key: empty key name`},
		{"a..b", `tlspilot.toml:4: dns.tsig_key: "a..b" is not a valid key name`},
		{".tlspilot", `tlspilot.toml:4: dns.tsig_key: ".tlspilot" is not a valid key name`},
		{strings.Repeat("k", 64) + ".", `dns.tsig_key: "` + strings.Repeat("k", 64) + `." is not a valid key name`},
	} {
		parseWant(t, f, rfc2136Head+"tsig_key = \""+b.key+"\"\n"+tail, b.want)
	}
	for _, k := range []string{"tlspilot", "tlspilot.", "tp512.example.com.", "TLSPilot-Key_1"} {
		f.mustParse(t, rfc2136Head+"tsig_key = \""+k+"\"\n"+tail)
	}
}

// TestDNSServerAsWritten: an empty server or resolver is called empty,
// not quoted as ":53"; an IPv6 address in brackets without a port is
// accepted as it is without brackets.
func TestDNSServerAsWritten(t *testing.T) {
	f := newFixture(t)
	tail := "tsig_key = \"k.\"\ntsig_secret_file = \"tsig.secret\"\n"
	parseWant(t, f, "[dns]\nprovider = \"rfc2136\"\nserver = \"\"\n"+tail, "tlspilot.toml:3: dns.server: empty address")
	parseWant(t, f, rfc2136Head+tail+"resolvers = [\"127.0.0.1\", \"\"]\n", "tlspilot.toml:6: dns.resolvers[2]: empty address")
	for _, b := range []struct{ server, want string }{
		{"[::1]", "[::1]:53"},
		{"::1", "[::1]:53"},
		{"[::1]:5353", "[::1]:5353"},
		{"[127.0.0.1]", "127.0.0.1:53"},
		{"ns1.example.com", "ns1.example.com:53"},
	} {
		c := f.mustParse(t, "[dns]\nprovider = \"rfc2136\"\nserver = \""+b.server+"\"\n"+tail+"resolvers = [\""+b.server+"\"]\n")
		if c.DNS.Server != b.want || c.DNS.Resolvers[0] != b.want {
			t.Errorf("server %q: %q and resolver %q, want %q", b.server, c.DNS.Server, c.DNS.Resolvers[0], b.want)
		}
	}
	parseWant(t, f, "[dns]\nprovider = \"rfc2136\"\nserver = \"[ns1.example.com]\"\n"+tail,
		`tlspilot.toml:3: dns.server: "[ns1.example.com]": brackets are for an IPv6 address`)
}

// TestTSIGSecretInline: certbot's way, the secret written in the config
// as tsig_secret, is refused pointing at tsig_secret_file and
// tsig_secret_env, without quoting the secret and without a second error
// saying tsig_secret_file is missing.
func TestTSIGSecretInline(t *testing.T) {
	f := newFixture(t)
	_, err := f.parse(t, rfc2136Head+"tsig_key = \"k.\"\ntsig_secret = \"c2VjcmV0Cg==\"\n")
	want := `tlspilot.toml:5: dns.tsig_secret: unknown key (did you mean "tsig_secret_file" or "tsig_secret_env"?)`
	if err == nil || !strings.Contains(err.Error(), want) || strings.Contains(err.Error(), "c2VjcmV0") ||
		strings.Contains(err.Error(), "required") || strings.Count(err.Error(), "\n") != 0 {
		t.Errorf("tsig_secret:\n got %v\nwant only %q", err, want)
	}
}

// TestSecretFileWritable: a secret file that group or others may write
// is refused as one they may read is (whoever writes it chooses the
// secret), naming the mode and the chmod to run: the TSIG secret and the
// webhook signing secret alike.
func TestSecretFileWritable(t *testing.T) {
	f := newFixture(t)
	for _, mode := range []os.FileMode{0o602, 0o620, 0o622} {
		p := f.write(t, "w.secret", "c2VjcmV0Cg==\n", mode)
		want := fmt.Sprintf("%s is writable by group or others (want mode 0600 or 0400): it is %04o; run chmod 0600 %[1]s", p, mode)
		parseWant(t, f, rfc2136Head+"tsig_key = \"k.\"\ntsig_secret_file = \"w.secret\"\n", "tlspilot.toml:5: dns.tsig_secret_file: "+want)
		parseWant(t, f, "notify_webhook = \"https://h.example/\"\nnotify_webhook_secret_file = \"w.secret\"\n",
			"tlspilot.toml:2: notify_webhook_secret_file: "+want)
	}
	p := f.write(t, "r.secret", "c2VjcmV0Cg==\n", 0o640)
	parseWant(t, f, rfc2136Head+"tsig_key = \"k.\"\ntsig_secret_file = \"r.secret\"\n",
		"dns.tsig_secret_file: "+p+" is readable by group or others (want mode 0600 or 0400): it is 0640; run chmod 0600 "+p)
	f.write(t, "ro.secret", "c2VjcmV0Cg==\n", 0o400)
	f.mustParse(t, rfc2136Head+"tsig_key = \"k.\"\ntsig_secret_file = \"ro.secret\"\n")
}

// TestDNSRestartOnlyDocumented: every [dns] key is read when serve or
// certs starts (the provider, with the TSIG secret, is built once), so
// docs/config.md marks each "Restart only.", as it marks the other keys
// SIGHUP does not reload, and says that a rotated secret file needs a
// restart.
func TestDNSRestartOnlyDocumented(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "config.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(doc), "\n## `[dns]`")
	if !ok {
		t.Fatal("docs/config.md has no [dns] section")
	}
	section, _, _ = strings.Cut(section, "\n## ")
	rows := 0
	for _, l := range strings.Split(section, "\n") {
		if !strings.HasPrefix(l, "| `") {
			continue
		}
		rows++
		if !strings.Contains(l, "Restart only.") {
			t.Errorf("[dns] row not marked \"Restart only.\": %s", l)
		}
		if strings.HasPrefix(l, "| `tsig_secret_file`") && !strings.Contains(l, "SIGHUP") {
			t.Errorf("the tsig_secret_file row does not say that SIGHUP keeps the secret read at start: %s", l)
		}
	}
	if rows < 12 {
		t.Errorf("found %d [dns] rows", rows)
	}
}
