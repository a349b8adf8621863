package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/tlspilot/tlspilot/internal/devca"
)

// served is what a TLS client got for one name.
type served struct {
	name    string
	leaf    *x509.Certificate
	chain   []*x509.Certificate // verified, leaf first, root last
	version uint16              // TLS version
}

// checkServed connects to ca's TLS port once per name, with that name as
// SNI, and verifies the certificate served against ca's issuing root.
func checkServed(ctx context.Context, ca *devca.CA, names []string) ([]served, error) {
	roots, err := ca.IssuerRoots()
	if err != nil {
		return nil, err
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(ca.TLSPort))
	var out []served
	for _, name := range names {
		d := tls.Dialer{Config: &tls.Config{ServerName: name, RootCAs: roots}}
		conn, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return nil, fmt.Errorf("TLS connection to %s as %s (verifying against the test CA's root): %w", addr, name, err)
		}
		cs := conn.(*tls.Conn).ConnectionState()
		conn.Close()
		out = append(out, served{name: name, leaf: cs.PeerCertificates[0], chain: cs.VerifiedChains[0], version: cs.Version})
	}
	return out, nil
}

// storage is what the storage directory holds.
type storage struct {
	dir   string
	files int
	clear []string // files holding a PEM "PRIVATE KEY" block
}

// scanStorage counts the files under dir and looks for private keys in
// clear.
func scanStorage(dir string) (storage, error) {
	st := storage{dir: dir}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		st.files++
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if bytes.Contains(data, []byte("PRIVATE KEY")) {
			st.clear = append(st.clear, path)
		}
		return nil
	})
	if err != nil {
		return st, fmt.Errorf("scan storage: %w", err)
	}
	return st, nil
}

// err reports private keys found in clear.
func (st storage) err() error {
	if len(st.clear) > 0 {
		return fmt.Errorf("private key stored in clear in %s", strings.Join(st.clear, ", "))
	}
	return nil
}

// summary is what run prints.
type summary struct {
	ca                     *devca.CA
	served                 []served
	storage                storage
	removed                bool // the storage directory is removed at exit
	caStart, obtain, total time.Duration
}

// write prints s for a human.
func (s summary) write(w io.Writer) {
	fmt.Fprintf(w, "tlspilot obtained a certificate from a local ACME test CA (Pebble, %s)\n\n", s.ca.DirectoryURL)
	printed := map[string]bool{}
	for _, sv := range s.served {
		serial := fmt.Sprintf("%X", sv.leaf.SerialNumber)
		if !printed[serial] {
			printed[serial] = true
			writeCert(w, sv.leaf, s.served)
		}
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "storage\t%s (%s)\n", s.storage.dir, s.removedNote())
	fmt.Fprintf(tw, "\t%d files; %s\n", s.storage.files, s.storage.keysNote())
	fmt.Fprintf(tw, "time\t%v (test CA start %v, obtaining %v)\n",
		s.total.Round(time.Millisecond), s.caStart.Round(time.Millisecond), s.obtain.Round(time.Millisecond))
	tw.Flush()
}

// writeCert prints one certificate and the names it was served for.
func writeCert(w io.Writer, leaf *x509.Certificate, all []served) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	subject := leaf.Subject.String()
	if subject == "" {
		subject = "(empty subject; the names are in the SAN)"
	}
	fmt.Fprintf(tw, "certificate\t%s\n", subject)
	fmt.Fprintf(tw, "  SAN\t%s\n", strings.Join(sans(leaf), ", "))
	fmt.Fprintf(tw, "  issuer\t%s\n", leaf.Issuer)
	fmt.Fprintf(tw, "  serial\t%X\n", leaf.SerialNumber)
	fmt.Fprintf(tw, "  not before\t%s\n", leaf.NotBefore.Local().Format(time.RFC3339))
	fmt.Fprintf(tw, "  not after\t%s (%v)\n", leaf.NotAfter.Local().Format(time.RFC3339), lifetime(leaf))
	fmt.Fprintf(tw, "  key\t%s\n", keyAlgorithm(leaf))
	label := "  served"
	for _, sv := range all {
		if sv.leaf.Equal(leaf) {
			root := sv.chain[len(sv.chain)-1]
			fmt.Fprintf(tw, "%s\t%s: verified (%s, chain of %d to the test CA's root %q)\n",
				label, sv.name, tls.VersionName(sv.version), len(sv.chain), root.Subject.CommonName)
			label = ""
		}
	}
	tw.Flush()
	fmt.Fprintln(w)
}

// sans lists the subject alternative names of c.
func sans(c *x509.Certificate) []string {
	names := append([]string(nil), c.DNSNames...)
	for _, ip := range c.IPAddresses {
		names = append(names, ip.String())
	}
	return names
}

// lifetime is c's validity period, in days when it is long.
func lifetime(c *x509.Certificate) string {
	d := c.NotAfter.Sub(c.NotBefore)
	if d >= 48*time.Hour {
		return fmt.Sprintf("%.0f days", d.Hours()/24)
	}
	return d.Round(time.Second).String()
}

// keyAlgorithm names the algorithm and size of c's public key.
func keyAlgorithm(c *x509.Certificate) string {
	switch k := c.PublicKey.(type) {
	case *ecdsa.PublicKey:
		return "ECDSA " + k.Curve.Params().Name
	case *rsa.PublicKey:
		return fmt.Sprintf("RSA %d bits", k.N.BitLen())
	case ed25519.PublicKey:
		return "Ed25519"
	}
	return c.PublicKeyAlgorithm.String()
}

// removedNote says what becomes of the storage directory.
func (s summary) removedNote() string {
	if s.removed {
		return "temporary, removed at exit; -keep keeps it"
	}
	return "kept"
}

// keysNote says whether private keys are stored in clear.
func (st storage) keysNote() string {
	if len(st.clear) > 0 {
		return fmt.Sprintf("WARNING: %d hold a private key in clear", len(st.clear))
	}
	return `no private key in clear (no file holds a "PRIVATE KEY" block): keys are sealed under the key in ` + filepath.Join(st.dir, "kek")
}
