package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tlspilot/tlspilot"
	"github.com/tlspilot/tlspilot/internal/certstore"
	"github.com/tlspilot/tlspilot/internal/issuance"
	"github.com/tlspilot/tlspilot/internal/keys"
	"github.com/tlspilot/tlspilot/storage/fsstore"
)

// TestStatusListsAnswersLeft: challenge answers an order could not take
// down are listed by `tlspilot status`, under their certificate and in
// the first line, and in --json; before, only the log said so, once. The
// grade does not change: the certificate is not at risk. A token from storage
// is printed escaped, like every other stored text.
func TestStatusListsAnswersLeft(t *testing.T) {
	dir := t.TempDir()
	store := filepath.Join(dir, "storage")
	fs, err := fsstore.New(fsstore.Options{Dir: store})
	if err != nil {
		t.Fatal(err)
	}
	id := certstore.CertID([]string{"left.example.test"}, keys.ECDSAP256)
	left := []certstore.Challenge{
		{Type: "dns-01", Identifier: "left.example.test", Token: "tok", KeyAuth: "tok.thumbprint"},
		{Type: "http-01", Identifier: "left.example.test", Token: "evil\x1b[2Jtoken", KeyAuth: "x"},
	}
	b, err := json.Marshal(left)
	if err != nil {
		t.Fatal(err)
	}
	if err := fs.Store(context.Background(), "certs/"+id+"/"+issuance.LeftFile, b); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(dir, "tlspilot.toml")
	write(t, conf, "storage = "+strconvQuote(store)+"\nadmin_listen = \"off\"\nca = \"https://127.0.0.1:1/dir\"\n\n[[site]]\nnames = [\"left.example.test\"]\n")
	sum := sha256.Sum256([]byte("tok.thumbprint"))
	value := base64.RawURLEncoding.EncodeToString(sum[:])

	var out, errOut bytes.Buffer
	statusCmd(context.Background(), []string{"--config", conf}, &out, &errOut)
	text := out.String()
	first, _, _ := strings.Cut(text, "\n")
	if !strings.Contains(first, "2 answers left behind") {
		t.Errorf("first line %q does not count the answers left", first)
	}
	if !strings.Contains(text, "  answer left behind (dns-01): _acme-challenge.left.example.test "+value+"\n") {
		t.Errorf("the TXT record left is not listed:\n%s%s", text, errOut.String())
	}
	if !strings.Contains(text, `  answer left behind (http-01): left.example.test evil\x1b[2Jtoken`) || strings.Contains(text, "\x1b") {
		t.Errorf("the http-01 answer is not listed, escaped:\n%q", text)
	}

	out.Reset()
	code := statusCmd(context.Background(), []string{"--config", conf, "--json"}, &out, &errOut)
	var r tlspilot.StatusReport
	if err := json.Unmarshal(out.Bytes(), &r); err != nil {
		t.Fatalf("--json: %v\n%s", err, out.String())
	}
	if len(r.Certificates) != 1 || len(r.Certificates[0].AnswersLeft) != 2 {
		t.Fatalf("--json certificates: %+v", r.Certificates)
	}
	want := tlspilot.LeftAnswer{Type: "dns-01", Name: "_acme-challenge.left.example.test", Value: value}
	if got := r.Certificates[0].AnswersLeft[0]; got != want {
		t.Errorf("answers_left[0] = %+v, want %+v", got, want)
	}
	if err := fs.Delete(context.Background(), "certs/"+id+"/"+issuance.LeftFile); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	if without := statusCmd(context.Background(), []string{"--config", conf}, &out, &errOut); without != code {
		t.Errorf("exit code %d with answers left, %d without: they must not change the grade", code, without)
	}
	if strings.Contains(out.String(), "left behind") {
		t.Errorf("answers listed once their record is gone:\n%s", out.String())
	}
}
