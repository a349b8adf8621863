package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tlspilot/tlspilot/internal/deploy"
	"github.com/tlspilot/tlspilot/internal/fleet"
	"github.com/tlspilot/tlspilot/internal/keys"
	"github.com/tlspilot/tlspilot/internal/testenv"
	"github.com/tlspilot/tlspilot/storage/fsstore"
)

// fleetEnv is an issuer's config, initialised, that obtains certificates
// with dns-01 from Pebble through BIND (zone example.test).
type fleetEnv struct {
	*env
	addr  string // issuer_listen
	b     *testenv.BIND
	roots *x509.CertPool // the fleet CA
}

// newFleetEnv makes the issuer's config, with its storage in the
// PostgreSQL database at pgURL if set, and runs init.
func newFleetEnv(t *testing.T, pgURL string) *fleetEnv {
	t.Helper()
	return newFleetEnvWith(t, pgURL, testenv.PebbleOptions{})
}

// newFleetEnvWith is newFleetEnv with Pebble configured by opts (its
// DNSServer is the env's BIND).
func newFleetEnvWith(t *testing.T, pgURL string, opts testenv.PebbleOptions) *fleetEnv {
	t.Helper()
	b := testenv.StartBIND(t, testenv.BINDOptions{Zones: []testenv.BINDZone{{Name: "example.test", Updatable: true}}})
	opts.DNSServer = b.Addr
	e := newEnvWith(t, opts)
	f := &fleetEnv{env: e, addr: freeAddr(t), b: b}
	conf := fmt.Sprintf(`issuer_listen = %q
issuer_names = ["127.0.0.1"]

[dns]
provider = "rfc2136"
server = %q
tsig_key = %q
tsig_algorithm = %q
tsig_secret_file = %q
resolvers = [%q]
authoritative_port = %d
propagation_timeout = "30s"
`, f.addr, b.Addr, b.KeyName, b.KeyAlgorithm, b.SecretFile(t), b.Addr, b.Port)
	if pgURL != "" {
		pgConfig(t, e, pgURL, conf)
	} else {
		e.config(conf)
	}
	mustRun(t, "init", "--config", e.conf)
	caPEM, _ := mustRun(t, "issuer", "ca", "--config", e.conf)
	f.roots = x509.NewCertPool()
	if !f.roots.AppendCertsFromPEM([]byte(caPEM)) {
		t.Fatalf("issuer ca printed %q", caPEM)
	}
	write(t, filepath.Join(e.dir, "fleet-ca.pem"), caPEM)
	return f
}

// issuerProc is a `tlspilot issuer` process.
type issuerProc struct {
	cmd    *exec.Cmd
	out    *syncBuffer
	exited chan error
}

// start runs the issuer until the test ends (or kill) and waits until it
// listens.
func (f *fleetEnv) start(t *testing.T) *issuerProc {
	t.Helper()
	p := &issuerProc{cmd: exec.Command(buildBinary(t), "issuer", "--config", f.conf), out: &syncBuffer{}, exited: make(chan error, 1)}
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.exited <- p.cmd.Wait() }()
	t.Cleanup(func() {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.exited:
		case <-time.After(10 * time.Second):
			_ = p.cmd.Process.Kill()
			t.Errorf("issuer did not stop on SIGTERM:\n%s", p.out.String())
		}
		if t.Failed() {
			t.Logf("issuer log:\n%s", p.out.String())
		}
	})
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if c, err := net.Dial("tcp", f.addr); err == nil {
			_ = c.Close()
			return p
		}
		select {
		case err := <-p.exited:
			t.Fatalf("issuer exited before listening: %v\n%s", err, p.out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("issuer not listening on %s:\n%s", f.addr, p.out.String())
		}
	}
}

// kill stops the issuer at once, as a crash would.
func (p *issuerProc) kill(t *testing.T) {
	t.Helper()
	_ = p.cmd.Process.Kill()
	<-p.exited
	p.exited <- nil // for the cleanup
}

// enrol makes a token for host with the binary and enrols a client with
// it; the policy is host's name and its wildcard.
func (f *fleetEnv) enrol(t *testing.T, host string) (*fleet.Client, *fleet.Identity) {
	t.Helper()
	name := host + ".example.test"
	tok, _ := mustRun(t, "issuer", "enroll", "--config", f.conf, host, "--names", name+",*."+name)
	c, err := fleet.NewClient(fleet.ClientOptions{Issuer: "https://" + f.addr, Roots: f.roots})
	if err != nil {
		t.Fatal(err)
	}
	id, err := c.Enroll(t.Context(), strings.TrimSpace(tok))
	if err != nil {
		t.Fatal(err)
	}
	if c, err = fleet.NewClient(fleet.ClientOptions{Issuer: "https://" + f.addr, Roots: f.roots, Identity: id}); err != nil {
		t.Fatal(err)
	}
	return c, id
}

// agentCSR makes a key and a CSR for host's name and wildcard.
func agentCSR(t *testing.T, host string) []byte {
	t.Helper()
	k, err := keys.Generate(keys.ECDSAP256)
	if err != nil {
		t.Fatal(err)
	}
	name := host + ".example.test"
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		Subject: pkix.Name{CommonName: name}, DNSNames: []string{name, "*." + name}}, k)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// untilValid sends csr until the issuer's answer is valid, riding out
// an issuer that is down (connection refused) meanwhile.
func untilValid(ctx context.Context, c *fleet.Client, csr []byte) (*fleet.CertificateResponse, error) {
	var last error
	for {
		resp, err := c.Certificate(ctx, csr, false)
		switch {
		case err == nil && resp.Status == fleet.CertValid:
			return resp, nil
		case err == nil && resp.Status == fleet.CertFailed:
			return resp, fmt.Errorf("failed: %s", resp.Error)
		case err != nil:
			last = err
		}
		select {
		case <-time.After(200 * time.Millisecond):
		case <-ctx.Done():
			return nil, fmt.Errorf("%w (last error: %v)", ctx.Err(), last)
		}
	}
}

// TestFleetIssuerKilledMidBatch: four agents ask at once; the issuer
// process is killed (SIGKILL) once every order has reached finalize, and
// started again. The agents, which kept asking with the same CSR, all
// get their certificates, and the CA saw one order per certificate (the
// issue allows one extra): the orders were resumed, not placed again.
func TestFleetIssuerKilledMidBatch(t *testing.T) {
	f := newFleetEnv(t, "")
	proc := f.start(t)
	const n = 4
	clients := make([]*fleet.Client, n)
	for i := range clients {
		clients[i], _ = f.enrol(t, fmt.Sprintf("crash%d", i))
	}
	var finalizes atomic.Int32
	held := make(chan struct{})
	f.p.SetFault(func(_ http.ResponseWriter, r *http.Request) bool {
		if strings.HasPrefix(r.URL.Path, "/finalize-order/") {
			finalizes.Add(1)
			select {
			case <-held:
			case <-r.Context().Done():
			}
		}
		return false
	})
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i, c := range clients {
		csr := agentCSR(t, fmt.Sprintf("crash%d", i))
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = untilValid(ctx, c, csr)
		}()
	}
	for deadline := time.Now().Add(time.Minute); finalizes.Load() < n; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d orders reached finalize:\n%s", finalizes.Load(), n, proc.out.String())
		}
	}
	proc.kill(t)
	close(held)
	f.p.SetFault(nil)
	before := proc.out.String()
	if !strings.Contains(before, "challenges for") || strings.Contains(before, "issued certificate for") {
		t.Errorf("the issuer was not killed mid-batch:\n%s", before)
	}
	proc = f.start(t)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("agent crash%d: %v", i, err)
		}
	}
	if o := f.p.Orders(); o > 2*n {
		t.Errorf("the CA saw %d orders for %d certificates; at most one extra per certificate", o, n)
	} else {
		t.Logf("%d orders for %d certificates", o, n)
	}
	log := proc.out.String()
	for _, want := range []string{"resuming certificate work", "resuming saved order"} {
		if !strings.Contains(log, want) {
			t.Errorf("the restarted issuer's log lacks %q", want)
		}
	}
	if got := strings.Count(log, "issued certificate for crash"); got != n {
		t.Errorf("the restarted issuer issued %d certificates, want %d", got, n)
	}
}

// TestFleetFiftyAgents: one issuer (a process, its storage and audit
// trail in PostgreSQL) and fifty agents (each a Keeper in a goroutine,
// with its own storage, key and client certificate) on loopback. Every
// agent gets and deploys a certificate for its names; no request to the
// CA carries any agent's private key; the audit table holds one
// "issued" row per certificate, with its serial; the dns-01 records went
// to BIND in batches.
func TestFleetFiftyAgents(t *testing.T) {
	pg := testenv.StartPostgres(t)
	url := pg.NewDatabase(t)
	f := newFleetEnv(t, url)
	var bodies syncBuffer // every request body sent to the CA
	f.p.SetFault(func(_ http.ResponseWriter, r *http.Request) bool {
		b, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(b))
		bodies.Write(append(b, '\n'))
		return false
	})
	proc := f.start(t)
	const n = 50
	keepers := make([]*fleet.Keeper, n)
	dirs := make([]string, n)
	for i := range keepers {
		keepers[i], dirs[i] = f.agent(t, fmt.Sprintf("agent%02d", i))
	}
	ctx, cancel := context.WithTimeout(t.Context(), 4*time.Minute)
	defer cancel()
	var wg sync.WaitGroup
	results := make([][]fleet.OnceResult, n)
	for i, k := range keepers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = k.Once(ctx, 3*time.Minute)
		}()
	}
	wg.Wait()
	serials := map[string]bool{}
	for i, rs := range results {
		host := fmt.Sprintf("agent%02d", i)
		if len(rs) != 1 || !rs[0].OK {
			t.Errorf("%s: %+v", host, rs)
			continue
		}
		leaf := parseLeafFile(t, filepath.Join(dirs[i], "fullchain.pem"))
		if err := leaf.VerifyHostname("x." + host + ".example.test"); err != nil {
			t.Errorf("%s: %v", host, err)
		}
		serials[fmt.Sprintf("%x", leaf.SerialNumber)] = true
		key := readFile(t, filepath.Join(dirs[i], "privkey.pem"))
		blk, _ := pem.Decode([]byte(key))
		if blk == nil {
			t.Fatalf("%s: no PEM key deployed", host)
		}
		for _, enc := range []string{string(blk.Bytes), base64.RawURLEncoding.EncodeToString(blk.Bytes), base64.StdEncoding.EncodeToString(blk.Bytes)} {
			if strings.Contains(bodies.String(), enc) {
				t.Errorf("%s: its private key was sent to the CA", host)
			}
		}
	}
	if strings.Contains(bodies.String(), "PRIVATE KEY") {
		t.Error("a request to the CA holds a PEM private key")
	}
	if o := f.p.Orders(); o != n {
		t.Errorf("the CA saw %d orders for %d certificates", o, n)
	}

	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	rows, err := conn.Query(ctx, "SELECT host, serial FROM "+fleet.AuditTable+" WHERE decision = 'issued'")
	if err != nil {
		t.Fatal(err)
	}
	audited := map[string]bool{}
	hosts := map[string]int{}
	for rows.Next() {
		var host, serial string
		if err := rows.Scan(&host, &serial); err != nil {
			t.Fatal(err)
		}
		audited[serial] = true
		hosts[host]++
	}
	if rows.Err() != nil {
		t.Fatal(rows.Err())
	}
	if len(audited) != n || len(hosts) != n || !maps.Equal(audited, serials) {
		t.Errorf("audit table: %d issued rows for %d hosts; serials audited %v, deployed %v", len(audited), len(hosts), audited, serials)
	}
	for h, c := range hosts {
		if c != 1 {
			t.Errorf("audit table: %d issued rows for %s", c, h)
		}
	}

	log := proc.out.String()
	updates := strings.Count(log, "challenges for ")
	if updates == 0 || updates > n/2 { // 10 on a quiet machine; one per certificate without batching
		t.Errorf("%d DNS updates presented the records of %d orders; want them batched", updates, n)
	}
	t.Logf("%d orders, %d DNS updates adding records for %d certificates (%d records)", f.p.Orders(), updates, n, 2*n)
}

// agent enrols host (policy: its name and wildcard) and returns its
// Keeper, with its own storage, deploying fullchain.pem and privkey.pem
// into the directory it also returns.
func (f *fleetEnv) agent(t *testing.T, host string) (*fleet.Keeper, string) {
	t.Helper()
	dir := t.TempDir()
	st, err := fsstore.New(fsstore.Options{Dir: filepath.Join(dir, "storage")})
	if err != nil {
		t.Fatal(err)
	}
	sealer, err := keys.LoadOrCreateSealer(filepath.Join(dir, "storage", "kek"))
	if err != nil {
		t.Fatal(err)
	}
	_, id := f.enrol(t, host)
	if err := fleet.SaveIdentity(t.Context(), st, sealer, id); err != nil {
		t.Fatal(err)
	}
	d, err := deploy.New(deploy.Options{Fullchain: filepath.Join(dir, "fullchain.pem"), Privkey: filepath.Join(dir, "privkey.pem")})
	if err != nil {
		t.Fatal(err)
	}
	name := host + ".example.test"
	k, err := fleet.NewKeeper(t.Context(), fleet.KeeperOptions{Storage: st, Sealer: sealer, Issuer: "https://" + f.addr, Roots: f.roots,
		Certificates: []fleet.KeptCert{{Names: []string{name, "*." + name}, KeyType: keys.ECDSAP256, Deployer: d}}})
	if err != nil {
		t.Fatal(err)
	}
	return k, dir
}

// parseLeafFile parses the first certificate of a PEM file.
func parseLeafFile(t *testing.T, path string) *x509.Certificate {
	t.Helper()
	b, _ := pem.Decode([]byte(readFile(t, path)))
	if b == nil {
		t.Fatalf("%s: no PEM", path)
	}
	c, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}
