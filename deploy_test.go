package tlspilot

import (
	"crypto/tls"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tlspilot/tlspilot/internal/certstore"
	"github.com/tlspilot/tlspilot/internal/deploy"
	"github.com/tlspilot/tlspilot/internal/testenv"
)

// TestDeployerFromGo: a Go program gives a Cert a challenge directory
// and a Deployer; Run obtains the certificate through answers served
// from that directory only (as another web server would), writes the
// files with the key the storage holds, reloads once, and Deploy with
// nothing new writes and reloads nothing.
func TestDeployerFromGo(t *testing.T) {
	p := testenv.StartPebble(t, testenv.PebbleOptions{})
	ev := &events{}
	dir := t.TempDir()
	challenges, live := filepath.Join(dir, "acme-challenge"), filepath.Join(dir, "live")
	for _, d := range []string{challenges, live} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	hl := listen(t, p.HTTPPort)
	hs := &http.Server{Handler: http.StripPrefix("/.well-known/acme-challenge/", http.FileServer(http.Dir(challenges))),
		ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = hs.Serve(hl) }()
	t.Cleanup(func() { _ = hs.Close() })
	reloads := filepath.Join(dir, "reloads")
	files, err := deploy.New(deploy.Options{
		Fullchain: filepath.Join(live, "fullchain.pem"), Privkey: filepath.Join(live, "privkey.pem"),
		Combined: filepath.Join(live, "combined.pem"), Mode: 0o640,
		Reload: []string{"sh", "-c", "echo reload >> " + reloads},
	})
	if err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(t, p, ev)
	m := startManager2(t, p, cfg)
	if err := m.ManageCerts(t.Context(), Cert{Names: []string{"files.example.test"}, ChallengeDir: challenges,
		Deployers: map[KeyType]Deployer{ECDSAP256: files}}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for len(ev.of(EventDeployed)) == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("no %s event; events: %+v", EventDeployed, ev.all)
		}
		time.Sleep(20 * time.Millisecond)
	}
	pair, err := tls.LoadX509KeyPair(filepath.Join(live, "fullchain.pem"), filepath.Join(live, "privkey.pem"))
	if err != nil {
		t.Fatal(err)
	}
	served, err := m.GetCertificate(helloFor("files.example.test"))
	if err != nil {
		t.Fatal(err)
	}
	if string(served.Certificate[0]) != string(pair.Certificate[0]) {
		t.Error("the deployed certificate is not the one in service")
	}
	if _, err := tls.LoadX509KeyPair(filepath.Join(live, "combined.pem"), filepath.Join(live, "combined.pem")); err != nil {
		t.Errorf("combined file: %v", err)
	}
	if ents, _ := os.ReadDir(challenges); len(ents) != 0 {
		t.Errorf("%d answer files left after validation", len(ents))
	}
	if err := m.Deploy(t.Context()); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(reloads)
	if n := strings.Count(string(b), "reload"); n != 1 || len(ev.of(EventDeployed)) != 1 {
		t.Errorf("%d reloads and %d deployed events, want 1 and 1", n, len(ev.of(EventDeployed)))
	}
	st := m.Status()
	if len(st) != 1 || st[0].Deploy == nil || st[0].Deploy.State != DeployDone || st[0].Deploy.Serial != st[0].Serial {
		t.Errorf("status: %+v", st)
	}

	// Another Manager on the same storage, already running, is given
	// the certificate with a Deployer to elsewhere: it deploys the
	// stored certificate at once.
	other := filepath.Join(dir, "other")
	if err := os.Mkdir(other, 0o755); err != nil {
		t.Fatal(err)
	}
	files2, err := deploy.New(deploy.Options{Fullchain: filepath.Join(other, "fullchain.pem"), Privkey: filepath.Join(other, "privkey.pem")})
	if err != nil {
		t.Fatal(err)
	}
	cfg.OnEvent = nil
	m2 := startManager2(t, p, cfg)
	if err := m2.ManageCerts(t.Context(), Cert{Names: []string{"files.example.test"}, ChallengeDir: challenges,
		Deployers: map[KeyType]Deployer{ECDSAP256: files2}}); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if b, err := os.ReadFile(filepath.Join(other, "fullchain.pem")); err == nil && string(b) == string(mustRead(t, filepath.Join(live, "fullchain.pem"))) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the stored certificate was not deployed by a Manager that manages it after Run started")
		}
	}
}

// TestDeployGrade: how a deployment grades the status report.
func TestDeployGrade(t *testing.T) {
	now := time.Now()
	valid, expired := now.Add(24*time.Hour), now.Add(-time.Hour)
	tests := []struct {
		name   string
		rec    certstore.Deployed
		serial string
		state  string
		code   int
	}{
		{"deployed", certstore.Deployed{Serial: "ab", NotAfter: valid}, "ab", DeployDone, ExitOK},
		{"newer not yet deployed", certstore.Deployed{Serial: "ab", NotAfter: valid}, "cd", DeployPending, ExitOK},
		{"reload owed", certstore.Deployed{Serial: "ab", NotAfter: valid, ReloadPending: true}, "ab", DeployPending, ExitOK},
		{"no certificate yet", certstore.Deployed{}, "", DeployPending, ExitOK},
		{"failing, never deployed", certstore.Deployed{Attempts: 1}, "ab", DeployFailing, ExitCritical},
		{"failing, previous still valid", certstore.Deployed{Serial: "ab", NotAfter: valid, Attempts: 3}, "cd", DeployFailing, ExitWarning},
		{"failing, previous expired", certstore.Deployed{Serial: "ab", NotAfter: expired, Attempts: 3}, "cd", DeployFailing, ExitCritical},
	}
	for _, tt := range tests {
		d := deployStatus(tt.rec, tt.serial)
		if d.State != tt.state || d.exitCode(now) != tt.code {
			t.Errorf("%s: state %s, exit %d; want %s, %d", tt.name, d.State, d.exitCode(now), tt.state, tt.code)
		}
	}
	var none *DeployStatus
	if none.exitCode(now) != ExitOK {
		t.Error("a certificate without a Deployer is graded")
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
