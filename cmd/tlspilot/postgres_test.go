package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tlspilot/tlspilot"
	"github.com/tlspilot/tlspilot/internal/testenv"
)

// pgConfig writes e's config with sites, its storage a PostgreSQL
// database and a kek_file, and returns its path and the KEK file.
func pgConfig(t *testing.T, e *env, url, sites string) (conf, kek string) {
	t.Helper()
	kek = filepath.Join(e.dir, "kek")
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	if err := os.WriteFile(kek, key, 0o400); err != nil {
		t.Fatal(err)
	}
	conf = e.config(sites)
	text, err := os.ReadFile(conf)
	if err != nil {
		t.Fatal(err)
	}
	dirLine := fmt.Sprintf("storage = %q\n", filepath.Join(e.dir, "storage"))
	if !strings.Contains(string(text), dirLine) {
		t.Fatalf("config has no line %q", dirLine)
	}
	pgLines := fmt.Sprintf("storage = %q\nkek_file = %q\n", url, kek)
	write(t, conf, strings.Replace(string(text), dirLine, pgLines, 1))
	return conf, kek
}

// TestServePostgresStorage: serve, status, renew and revoke with
// storage = "postgres://..." and a kek_file: the certificate obtained from
// Pebble is served, status and renew read and write the same database,
// and a dump of every value in it holds no usable private key.
func TestServePostgresStorage(t *testing.T) {
	e := newEnv(t)
	pg := testenv.StartPostgres(t)
	const name = "pg.example.test"
	conf, _ := pgConfig(t, e, pg.URL, fmt.Sprintf("[[site]]\nnames = [%q]\nkey_type = [\"ecdsa-p256\", \"rsa2048\"]\nroot = %q\n", name, filepath.Join(e.dir, "www")))

	e.serve()
	e.waitIssued(name, 60*time.Second)
	first := servedSerial(t, e, name)
	schema := statusSchema(t)
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		r, code := status(t, schema, conf)
		valid := 0
		for _, c := range r.Certificates {
			if c.State == tlspilot.StateValid {
				valid++
			}
		}
		if code == tlspilot.ExitOK && valid == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("status: exit %d, %+v (%s); want both key types valid", code, r.Certificates, r.Error)
		}
	}
	if code, out, errOut := runBinary(t, "renew", "--force", "--config", conf, name); code != 0 {
		t.Fatalf("renew --force: exit %d\n%s%s", code, out, errOut)
	}
	renewed := waitServedChange(t, e, name, first, 60*time.Second)
	if code, out, errOut := runBinary(t, "revoke", "--config", conf, name); code != 0 {
		t.Errorf("revoke: exit %d\n%s%s", code, out, errOut)
	}
	t.Logf("served %s, renewed to %s, revoked", first, renewed)
	if _, err := os.Stat("postgres:"); err == nil {
		t.Errorf("a directory named after the URL was created")
	}

	values := dumpValues(t, pg.URL)
	if len(values) < 4 {
		t.Fatalf("the database holds %d values, want the account, certificates and more", len(values))
	}
	for key, v := range values {
		if why := usableKey(v); why != "" {
			t.Errorf("value %s in the database holds a usable private key: %s", key, why)
		}
	}
	t.Logf("%d values in the database, none holds a usable private key", len(values))
}

// dumpValues returns every value of the database's key/value table.
func dumpValues(t *testing.T, url string) map[string][]byte {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	rows, err := conn.Query(t.Context(), `SELECT key, value FROM tlspilot_kv`)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]byte{}
	var key string
	var v []byte
	_, err = pgx.ForEachRow(rows, []any{&key, &v}, func() error {
		out[key] = bytes.Clone(v)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// usableKey says how v holds a private key in clear, or "": a PEM block
// whose type names a private key, or DER that parses as a PKCS #8, SEC 1
// or PKCS #1 private key, in v itself, in any PEM block of it, or in any
// base64 string of a JSON document (at any depth), at any offset.
func usableKey(v []byte) string {
	for _, c := range candidates(v, 0) {
		if why := derKey(c); why != "" {
			return why
		}
	}
	if bytes.Contains(v, []byte("PRIVATE KEY")) {
		return "the text \"PRIVATE KEY\" (a PEM block)"
	}
	return ""
}

// candidates returns v and what is encoded inside it.
func candidates(v []byte, depth int) [][]byte {
	out := [][]byte{v}
	if depth > 3 {
		return out
	}
	for rest := v; ; {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			break
		}
		out = append(out, candidates(b.Bytes, depth+1)...)
	}
	var doc any
	if json.Unmarshal(v, &doc) == nil {
		for _, s := range jsonStrings(doc) {
			for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
				if b, err := enc.DecodeString(s); err == nil {
					out = append(out, candidates(b, depth+1)...)
				}
			}
			out = append(out, candidates([]byte(s), depth+1)...)
		}
	}
	return out
}

// jsonStrings returns every string in a decoded JSON document.
func jsonStrings(doc any) []string {
	switch d := doc.(type) {
	case string:
		return []string{d}
	case []any:
		var out []string
		for _, x := range d {
			out = append(out, jsonStrings(x)...)
		}
		return out
	case map[string]any:
		var out []string
		for k, x := range d {
			out = append(out, k)
			out = append(out, jsonStrings(x)...)
		}
		return out
	}
	return nil
}

// derKey tries every DER SEQUENCE in b as a private key.
func derKey(b []byte) string {
	for i := range b {
		if b[i] != 0x30 {
			continue
		}
		der := b[i:]
		if k, err := x509.ParsePKCS8PrivateKey(der); err == nil {
			return fmt.Sprintf("a PKCS #8 %T at byte %d", k, i)
		}
		if _, err := x509.ParseECPrivateKey(der); err == nil {
			return fmt.Sprintf("a SEC 1 EC key at byte %d", i)
		}
		if n := derLen(der); n > 0 {
			if _, err := x509.ParsePKCS1PrivateKey(der[:n]); err == nil {
				return fmt.Sprintf("a PKCS #1 RSA key at byte %d", i)
			}
		}
	}
	return ""
}

// derLen returns the length of the DER element at the start of b, or 0.
func derLen(b []byte) int {
	if len(b) < 2 {
		return 0
	}
	n, hdr := int(b[1]), 2
	if n&0x80 != 0 {
		l := n & 0x7f
		if l == 0 || l > 3 || len(b) < 2+l {
			return 0
		}
		n = 0
		for _, c := range b[2 : 2+l] {
			n = n<<8 | int(c)
		}
		hdr += l
	}
	if hdr+n > len(b) {
		return 0
	}
	return hdr + n
}

// TestUsableKeyFinds checks the scanner of TestServePostgresStorage: it
// finds a key stored in clear in each form it looks for, and none in
// random bytes.
func TestUsableKeyFinds(t *testing.T) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	p8, _ := x509.MarshalPKCS8PrivateKey(k)
	sec1, _ := x509.MarshalECPrivateKey(k)
	doc, _ := json.Marshal(map[string]any{"cert": map[string][]byte{"key": append([]byte("prefix"), p8...)}})
	pemKey := pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: sec1})
	for name, v := range map[string][]byte{
		"raw PKCS #8 after other bytes": append([]byte{1, 2, 3}, p8...),
		"PKCS #8 in base64 inside JSON": doc,
		"PEM":                           pemKey,
		"PEM without its type":          bytes.ReplaceAll(pemKey, []byte("EC PRIVATE KEY"), []byte("DATA")),
	} {
		if usableKey(v) == "" {
			t.Errorf("%s: key not found", name)
		}
	}
	noise := make([]byte, 4096)
	_, _ = rand.Read(noise)
	if why := usableKey(noise); why != "" {
		t.Errorf("random bytes: %s", why)
	}
}

// TestCheckPostgresStorage: check accepts a PostgreSQL storage with a
// readable kek_file without connecting to it, and refuses, at the line of
// the storage key, a password in the URL and a missing kek_file.
func TestCheckPostgresStorage(t *testing.T) {
	dir := t.TempDir()
	kek := filepath.Join(dir, "kek")
	if err := os.WriteFile(kek, make([]byte, 32), 0o400); err != nil {
		t.Fatal(err)
	}
	site := "[[site]]\nnames = [\"a.example.test\"]\nroot = \"" + dir + "\"\n"
	head := "ca = \"https://ca.example.test/dir\"\n"
	cases := []struct{ name, config, want string }{
		{"ok", head + "storage = \"postgres://tlspilot@db.invalid/tlspilot\"\nkek_file = \"" + kek + "\"\n" + site,
			"storage path: postgres://tlspilot@db.invalid/tlspilot"},
		{"password", head + "storage = \"postgres://tlspilot:pw@db.invalid/tlspilot\"\nkek_file = \"" + kek + "\"\n" + site,
			"tlspilot.toml:2: storage: a password in the storage URL is refused"},
		{"no kek_file", head + "storage = \"postgresql://tlspilot@db.invalid/tlspilot\"\n" + site,
			"tlspilot.toml:2: storage: a PostgreSQL storage needs kek_file"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			conf := filepath.Join(t.TempDir(), "tlspilot.toml")
			write(t, conf, c.config)
			var out, errb bytes.Buffer
			code := run(t.Context(), []string{"check", "--config", conf}, &out, &errb)
			if !strings.Contains(out.String()+errb.String(), c.want) || (code == 0) != (c.name == "ok") {
				t.Errorf("check: exit %d\n%s%s\nwant %q", code, out.String(), errb.String(), c.want)
			}
		})
	}
}
