package clientauth

import (
	"bytes"
	"crypto/sha256"
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"sync"
	"time"
)

// Object identifiers of the CRL and CRL entry extensions this package
// understands (RFC 5280, sections 5.2 and 5.3).
var (
	oidCRLNumber        = asn1.ObjectIdentifier{2, 5, 29, 20}
	oidReasonCode       = asn1.ObjectIdentifier{2, 5, 29, 21}
	oidInvalidityDate   = asn1.ObjectIdentifier{2, 5, 29, 24}
	oidDeltaCRL         = asn1.ObjectIdentifier{2, 5, 29, 27}
	oidIssuingDP        = asn1.ObjectIdentifier{2, 5, 29, 28}
	oidCertIssuer       = asn1.ObjectIdentifier{2, 5, 29, 29}
	oidAuthorityKeyID   = asn1.ObjectIdentifier{2, 5, 29, 35}
	oidFreshestCRL      = asn1.ObjectIdentifier{2, 5, 29, 46}
	oidAuthorityInfoAcc = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 1, 1}
)

// reasonRemoveFromCRL is the reason code of an entry that undoes a hold
// (RFC 5280, section 5.3.1); it does not revoke.
const reasonRemoveFromCRL = 8

// clockSkew is how far in the future a thisUpdate may be and still be
// taken: the clocks of a CA and of this host differ a little.
const clockSkew = 5 * time.Minute

// crl is one parsed CRL with its revoked serials indexed. Its fields are
// set once by parseCRL; verified is guarded by mu.
type crl struct {
	source     string // file path or URL, for logs
	rawIssuer  []byte
	authKeyID  []byte
	thisUpdate time.Time
	nextUpdate time.Time // zero if the CRL has none
	scope      crlScope
	revoked    map[string]revocation
	list       *x509.RevocationList // entries dropped; kept for its signature

	mu       sync.Mutex
	verified map[[32]byte]error // issuer certificate's SHA-256 → CheckSignatureFrom result
}

// revocation is what a CRL says of one revoked serial.
type revocation struct {
	at     time.Time
	reason int // RFC 5280 CRLReason; 0 also when absent
}

// crlScope is what the issuing distribution point extension says the CRL
// covers (RFC 5280, section 5.2.5); the zero value covers everything.
type crlScope struct {
	hasDP      bool     // a distributionPoint is named
	dpURIs     []string // its fullName URIs
	onlyUser   bool
	onlyCA     bool
	onlyAttr   bool
	indirect   bool
	someReason bool
}

// issuingDP is the ASN.1 of the issuing distribution point extension.
// Tags are implicit, as in RFC 5280's module.
type issuingDP struct {
	DistributionPoint asn1.RawValue  `asn1:"optional,tag:0"`
	OnlyUser          bool           `asn1:"optional,tag:1"`
	OnlyCA            bool           `asn1:"optional,tag:2"`
	OnlySomeReasons   asn1.BitString `asn1:"optional,tag:3"`
	Indirect          bool           `asn1:"optional,tag:4"`
	OnlyAttr          bool           `asn1:"optional,tag:5"`
}

// parseCRLs parses data, DER or one or more PEM "X509 CRL" blocks.
// source names where data came from, for logs and errors. PEM data must
// be whole (pemBlocks): a file cut short or with a broken block is an
// error, not a file with fewer CRLs; blocks of another type (the CA's
// certificate in the same file) are skipped.
func parseCRLs(data []byte, source string) ([]*crl, error) {
	if !bytes.Contains(data, []byte(pemBegin)) {
		l, err := parseCRL(data, source)
		if err != nil {
			return nil, err
		}
		return []*crl{l}, nil
	}
	blocks, err := pemBlocks(data, "X509 CRL")
	if err != nil {
		return nil, fmt.Errorf("crl %s: %w", source, err)
	}
	if len(blocks) == 0 {
		return nil, fmt.Errorf("crl %s: no PEM X509 CRL block", source)
	}
	out := make([]*crl, 0, len(blocks))
	for _, der := range blocks {
		l, err := parseCRL(der, source)
		if err != nil {
			return nil, err
		}
		out = append(out, l)
	}
	return out, nil
}

// parseCRL parses one DER CRL and indexes its revoked serials. It
// refuses delta CRLs and CRLs with a critical extension it does not
// understand (RFC 5280, section 5.2). It does not verify the signature:
// crl.verify does, once the issuer is known.
func parseCRL(der []byte, source string) (*crl, error) {
	list, err := x509.ParseRevocationList(der)
	if err != nil {
		return nil, fmt.Errorf("crl %s: %w", source, err)
	}
	l := &crl{
		source:     source,
		rawIssuer:  list.RawIssuer,
		authKeyID:  list.AuthorityKeyId,
		thisUpdate: list.ThisUpdate,
		nextUpdate: list.NextUpdate,
		revoked:    make(map[string]revocation, len(list.RevokedCertificateEntries)),
		verified:   make(map[[32]byte]error),
	}
	if err := l.readExtensions(list); err != nil {
		return nil, fmt.Errorf("crl %s: %w", source, err)
	}
	for _, e := range list.RevokedCertificateEntries {
		if err := checkEntryExtensions(e); err != nil {
			return nil, fmt.Errorf("crl %s: serial %s: %w", source, serialHex(e.SerialNumber), err)
		}
		if e.SerialNumber == nil || e.ReasonCode == reasonRemoveFromCRL {
			continue
		}
		l.revoked[serialKey(e.SerialNumber)] = revocation{at: e.RevocationTime, reason: e.ReasonCode}
	}
	// Indexed above; the signature needs only the raw parts. The parser
	// fills the deprecated field too: drop that copy as well.
	//lint:ignore SA1019 freeing the parser's copy, not using it
	list.RevokedCertificateEntries, list.RevokedCertificates = nil, nil
	l.list = list
	return l, nil
}

// readExtensions reads the scope and refuses what this package cannot use.
func (l *crl) readExtensions(list *x509.RevocationList) error {
	for _, ext := range list.Extensions {
		switch {
		case ext.Id.Equal(oidDeltaCRL):
			return errors.New("delta CRL not supported")
		case ext.Id.Equal(oidIssuingDP):
			s, err := parseScope(ext.Value)
			if err != nil {
				return fmt.Errorf("issuing distribution point: %w", err)
			}
			l.scope = s
		case ext.Id.Equal(oidCRLNumber), ext.Id.Equal(oidAuthorityKeyID),
			ext.Id.Equal(oidFreshestCRL), ext.Id.Equal(oidAuthorityInfoAcc):
		case ext.Critical:
			return fmt.Errorf("unknown critical extension %s", ext.Id)
		}
	}
	return nil
}

// checkEntryExtensions refuses an entry with a critical extension this
// package does not understand; a certificate issuer entry belongs to an
// indirect CRL, which is not used.
func checkEntryExtensions(e x509.RevocationListEntry) error {
	for _, ext := range e.Extensions {
		switch {
		case ext.Id.Equal(oidReasonCode), ext.Id.Equal(oidInvalidityDate):
		case ext.Id.Equal(oidCertIssuer):
			return errors.New("certificate issuer entry (indirect CRL) not supported")
		case ext.Critical:
			return fmt.Errorf("unknown critical entry extension %s", ext.Id)
		}
	}
	return nil
}

// parseScope parses an issuing distribution point extension's value.
func parseScope(der []byte) (crlScope, error) {
	var idp issuingDP
	rest, err := asn1.Unmarshal(der, &idp)
	if err != nil {
		return crlScope{}, err
	}
	if len(rest) != 0 {
		return crlScope{}, errors.New("trailing data")
	}
	s := crlScope{
		onlyUser:   idp.OnlyUser,
		onlyCA:     idp.OnlyCA,
		onlyAttr:   idp.OnlyAttr,
		indirect:   idp.Indirect,
		someReason: idp.OnlySomeReasons.BitLength > 0,
	}
	if len(idp.DistributionPoint.FullBytes) > 0 {
		s.hasDP = true
		s.dpURIs = fullNameURIs(idp.DistributionPoint.Bytes)
	}
	return s, nil
}

// fullNameURIs returns the URIs of a DistributionPointName when it is a
// fullName ([0] GeneralNames), and nil for nameRelativeToCRLIssuer or
// anything that does not parse.
func fullNameURIs(der []byte) []string {
	var name asn1.RawValue
	if _, err := asn1.Unmarshal(der, &name); err != nil || name.Class != asn1.ClassContextSpecific || name.Tag != 0 {
		return nil
	}
	var uris []string
	for rest := name.Bytes; len(rest) > 0; {
		var gn asn1.RawValue
		var err error
		if rest, err = asn1.Unmarshal(rest, &gn); err != nil {
			return uris
		}
		if gn.Class == asn1.ClassContextSpecific && gn.Tag == 6 { // uniformResourceIdentifier
			uris = append(uris, string(gn.Bytes))
		}
	}
	return uris
}

// covers reports whether l may answer for cert, issued by issuer: same
// issuer name, the same key identifier or a signature that verifies
// with issuer's key, and a scope that includes cert. The identifier only
// picks out the issuer's key, which the signature proves: a CA
// certificate re-issued with the same key under another identifier (a
// new validity period, another tool) has its key's CRLs. Otherwise it
// does not check the signature (verify) nor the dates (fresh).
func (l *crl) covers(cert, issuer *x509.Certificate) bool {
	if !bytes.Equal(l.rawIssuer, cert.RawIssuer) {
		return false
	}
	if !keyIDsAgree(l.authKeyID, issuer.SubjectKeyId) && l.verify(issuer) != nil {
		return false
	}
	s := l.scope
	switch {
	case s.onlyAttr, s.indirect, s.someReason:
		return false
	case s.onlyUser && cert.IsCA, s.onlyCA && !cert.IsCA:
		return false
	case s.hasDP:
		return slices.ContainsFunc(s.dpURIs, func(u string) bool { return slices.Contains(cert.CRLDistributionPoints, u) })
	}
	return true
}

// verify checks l's signature against issuer, once per issuer.
func (l *crl) verify(issuer *x509.Certificate) error {
	key := sha256.Sum256(issuer.Raw)
	l.mu.Lock()
	defer l.mu.Unlock()
	err, done := l.verified[key]
	if !done {
		err = l.list.CheckSignatureFrom(issuer)
		if err != nil {
			err = fmt.Errorf("crl %s: signature: %w", l.source, err)
		}
		l.verified[key] = err
	}
	return err
}

// fresh returns an error unless l may be used at now: thisUpdate not in
// the future (beyond clockSkew) and nextUpdate, if any, not passed.
func (l *crl) fresh(now time.Time) error {
	if l.thisUpdate.After(now.Add(clockSkew)) {
		return fmt.Errorf("crl %s: thisUpdate %s is in the future", l.source, l.thisUpdate.UTC().Format(time.RFC3339))
	}
	if !l.nextUpdate.IsZero() && !now.Before(l.nextUpdate) {
		return fmt.Errorf("crl %s: stale: nextUpdate %s has passed", l.source, l.nextUpdate.UTC().Format(time.RFC3339))
	}
	return nil
}

// answer is what l says of cert; l must cover cert.
func (l *crl) answer(cert *x509.Certificate) answer {
	if r, ok := l.revoked[serialKey(cert.SerialNumber)]; ok {
		return answer{revoked: true, at: r.at, reason: r.reason, source: "crl " + l.source}
	}
	return answer{source: "crl " + l.source}
}

// serialKey is the map key of a serial number: its sign and magnitude.
func serialKey(n *big.Int) string {
	if n == nil {
		return ""
	}
	if n.Sign() < 0 {
		return "-" + string(n.Bytes())
	}
	return "+" + string(n.Bytes())
}

// newest returns the CRL among ls with the latest thisUpdate, or nil.
func newest(ls []*crl) *crl {
	var best *crl
	for _, l := range ls {
		if best == nil || l.thisUpdate.After(best.thisUpdate) {
			best = l
		}
	}
	return best
}
