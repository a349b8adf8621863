package clientauth

import (
	"bytes"
	"crypto/x509"
	"fmt"
	"time"
)

// caLinks knows, for each certificate of Policy.CAs, those of them that
// issued it on the shortest way to a self-signed root among them, so a
// verified chain can be taken up to that root. crypto/x509 ends a chain
// at the first certificate of the pool it meets: with an intermediate
// in the ca file (intermediate + root, the usual bundle) the chain ends
// at the intermediate, and a client's own certificate listed there is a
// chain of one. OpenSSL (nginx's ssl_crl, -crl_check_all) goes on to the
// self-signed root, and so does Check. Built once by New; read-only
// after.
//
// The links are built from the roots down, breadth first (newCALinks):
// with several certificates of the same name and key (a cross-signed
// root, the link certificates of a root key rollover, RFC 4210 section
// 4.4, a root re-issued with new dates), taking the first issuer whose
// name and signature fit could pick a cross-certificate whose own issuer
// is missing, or go round in a loop, and the outcome would depend on the
// order of the file. Every issuer at the shortest distance is kept, so
// that extend can pass over one that has expired.
type caLinks struct {
	byRaw map[string]caLink // string(Raw) of a CA → its link
}

// caLink is what is known of one CA certificate.
type caLink struct {
	root   bool // self-signed
	toRoot bool // not self-signed, and issuers leads to a root
	// issuers are the certificates of CAs that issued it, preferred
	// first (those whose subject key identifier is its authority key
	// identifier, then in the order of CAs): when toRoot, those one step
	// closer to a root on a shortest way; else every one (a CA from
	// which no root can be reached, allowed in leaf mode, still has an
	// issuer to check a chain of one against). Empty for a root.
	issuers []*x509.Certificate
	// twins, for a CA from which no root can be reached, are those from
	// which a root can, with the same subject and public key (the root
	// itself, for a cross-certificate of it whose issuer is not in CAs),
	// preferred first: whatever the CA issued, a twin issued too, so a
	// chain ending at the CA may end at a twin instead.
	twins []*x509.Certificate
}

// rooted reports whether a self-signed root can be reached from the CA.
func (l caLink) rooted() bool { return l.root || l.toRoot || len(l.twins) > 0 }

// caNode is one distinct certificate of CAs while newCALinks links them.
type caNode struct {
	cert     *x509.Certificate
	root     bool  // self-signed
	parents  []int // nodes that issued it
	children []int // nodes it issued
	dist     int   // from the nearest root; -1 when none can be reached
}

// newCALinks links each of cas to its issuers among cas on the shortest
// way to a self-signed root, checking each signature once; CAs from
// which no root can be reached are linked to whichever of cas issued
// them, and get their twins (see unrooted). The order of cas decides
// only between issuers at the same distance from a root whose key
// identifiers fit as well. The cost grows with the number of CAs of the
// same name, not with the square of all: candidates are found by name.
func newCALinks(cas []*x509.Certificate) caLinks {
	nodes, bySubject := caNodes(cas)
	linkParents(nodes, bySubject)
	measureDistances(nodes)
	links := caLinks{byRaw: make(map[string]caLink, len(nodes))}
	for _, n := range nodes {
		link := caLink{root: n.root, toRoot: !n.root && n.dist > 0}
		for _, p := range n.parents {
			if !link.toRoot || nodes[p].dist == n.dist-1 {
				link.issuers = append(link.issuers, nodes[p].cert)
			}
		}
		if !link.rooted() {
			link.twins = twinsOf(n.cert, nodes, bySubject[string(n.cert.RawSubject)])
		}
		links.byRaw[string(n.cert.Raw)] = link
	}
	return links
}

// caNodes returns the distinct certificates of cas (the first of equal
// ones), in their order, and their indexes by subject.
func caNodes(cas []*x509.Certificate) ([]caNode, map[string][]int) {
	nodes := make([]caNode, 0, len(cas))
	seen := make(map[string]bool, len(cas))
	bySubject := make(map[string][]int, len(cas))
	for _, c := range cas {
		if seen[string(c.Raw)] {
			continue
		}
		seen[string(c.Raw)] = true
		bySubject[string(c.RawSubject)] = append(bySubject[string(c.RawSubject)], len(nodes))
		nodes = append(nodes, caNode{cert: c, root: selfSigned(c), dist: -1})
	}
	return nodes, bySubject
}

// linkParents sets the parents and children of nodes: for each that is
// not self-signed, the nodes named as its issuer that issued it
// (issuerFaultOf), those whose subject key identifier is its authority key
// identifier first.
func linkParents(nodes []caNode, bySubject map[string][]int) {
	for i := range nodes {
		c := nodes[i].cert
		if nodes[i].root {
			continue
		}
		var exact, other []int
		for _, p := range bySubject[string(c.RawIssuer)] {
			if p == i || issuerFaultOf(nodes[p].cert, c, nodes[p].root) != isIssuer {
				continue
			}
			if len(c.AuthorityKeyId) > 0 && bytes.Equal(c.AuthorityKeyId, nodes[p].cert.SubjectKeyId) {
				exact = append(exact, p)
			} else {
				other = append(other, p)
			}
			nodes[p].children = append(nodes[p].children, i)
		}
		nodes[i].parents = append(exact, other...)
	}
}

// measureDistances sets each node's distance from the nearest root,
// breadth first from the roots.
func measureDistances(nodes []caNode) {
	var queue []int
	for i := range nodes {
		if nodes[i].root {
			nodes[i].dist = 0
			queue = append(queue, i)
		}
	}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		for _, c := range nodes[p].children {
			if nodes[c].dist < 0 {
				nodes[c].dist = nodes[p].dist + 1
				queue = append(queue, c)
			}
		}
	}
}

// twinsOf returns the nodes among named (those of c's subject) from which
// a root can be reached through issuers, with the public key of c and no
// other subject key identifier: those with c's own identifier first.
func twinsOf(c *x509.Certificate, nodes []caNode, named []int) []*x509.Certificate {
	var exact, other []*x509.Certificate
	for _, i := range named {
		o := nodes[i].cert
		if nodes[i].dist < 0 || !bytes.Equal(o.RawSubjectPublicKeyInfo, c.RawSubjectPublicKeyInfo) ||
			!keyIDsAgree(c.SubjectKeyId, o.SubjectKeyId) {
			continue
		}
		if len(c.SubjectKeyId) > 0 && len(o.SubjectKeyId) > 0 {
			exact = append(exact, o)
		} else {
			other = append(other, o)
		}
	}
	return append(exact, other...)
}

// keyIDsAgree reports whether an authority key identifier and a subject
// key identifier may name the same key: equal, or one of them absent.
func keyIDsAgree(authority, subject []byte) bool {
	return len(authority) == 0 || len(subject) == 0 || bytes.Equal(authority, subject)
}

// issuerFault is why a certificate did not issue another, or isIssuer.
type issuerFault int

// The values of issuerFault, in the order issuerFaultOf checks them.
const (
	isIssuer issuerFault = iota
	faultName
	faultNotCA
	faultKeyUsage
	faultKeyID
	faultSignature
)

// issuerFaultOf returns isIssuer if p, self-signed when root, issued c,
// else the first thing that says it did not: c names p as its issuer, p
// may issue certificates (basic constraints with CA:TRUE, or a
// self-signed old root without them; no key usage, or one with
// keyCertSign, as OpenSSL asks), c's authority key identifier is p's
// subject key identifier when both have one (OpenSSL's
// X509_check_issued; crypto/x509 ranks such issuers first), and c's
// signature verifies with p's key. The signature is checked as
// crypto/x509 checks a self-signed one, SHA-1 allowed: a CA of the ca
// file signed with SHA-1 is a trust anchor that crypto/x509 takes
// without looking at its signature, and refusing to link it would
// refuse a configuration that works. Cheap checks come first, and no
// message is built: issued says why, when it is reported.
func issuerFaultOf(p, c *x509.Certificate, root bool) issuerFault {
	switch {
	case !bytes.Equal(c.RawIssuer, p.RawSubject):
		return faultName
	case p.BasicConstraintsValid && !p.IsCA || !p.BasicConstraintsValid && !root:
		return faultNotCA
	case p.KeyUsage != 0 && p.KeyUsage&x509.KeyUsageCertSign == 0:
		return faultKeyUsage
	case !keyIDsAgree(c.AuthorityKeyId, p.SubjectKeyId):
		return faultKeyID
	case p.CheckSignature(c.SignatureAlgorithm, c.RawTBSCertificate, c.Signature) != nil:
		return faultSignature
	}
	return isIssuer
}

// issued returns nil if p, self-signed when root, issued c, else why not
// (issuerFaultOf), in words. Of other key identifiers it says whether
// the signature verifies: if not, p holds another key (that says more).
func issued(p, c *x509.Certificate, root bool) error {
	fault := issuerFaultOf(p, c, root)
	var sigErr error
	if fault == faultKeyID || fault == faultSignature {
		sigErr = p.CheckSignature(c.SignatureAlgorithm, c.RawTBSCertificate, c.Signature)
		if sigErr != nil {
			fault = faultSignature
		}
	}
	switch fault {
	case faultName:
		return fmt.Errorf("%q is not named as the issuer of %q", p.Subject, c.Subject)
	case faultNotCA:
		return fmt.Errorf("%q (serial %s) is not a CA certificate (no basic constraints with CA:TRUE)", p.Subject, serialHex(p.SerialNumber))
	case faultKeyUsage:
		return fmt.Errorf("the key usage of %q (serial %s) does not allow signing certificates", p.Subject, serialHex(p.SerialNumber))
	case faultKeyID:
		return fmt.Errorf("the authority key identifier of CA %q (%x) is not the subject key identifier of %q (serial %s, %x), "+
			"though its signature verifies", c.Subject, c.AuthorityKeyId, p.Subject, serialHex(p.SerialNumber), p.SubjectKeyId)
	case faultSignature:
		return fmt.Errorf("the signature of CA %q does not verify with the key of %q (serial %s): %w",
			c.Subject, p.Subject, serialHex(p.SerialNumber), sigErr)
	}
	return nil
}

// selfSigned reports whether c is issued and signed by its own key.
func selfSigned(c *x509.Certificate) bool {
	return bytes.Equal(c.RawIssuer, c.RawSubject) &&
		c.CheckSignature(c.SignatureAlgorithm, c.RawTBSCertificate, c.Signature) == nil
}

// unrooted returns an error naming the first of cas from which no
// self-signed root of cas can be reached, and why: its issuer is not
// there, a certificate of its issuer's name is but did not sign it (or
// has another key identifier), or its issuers lead to no root (a loop, a
// root missing above them). In chain mode nothing could check its revocation, and every client under
// it would get no answer.
func (l caLinks) unrooted(cas []*x509.Certificate) error {
	for _, c := range cas {
		if !l.byRaw[string(c.Raw)].rooted() {
			return fmt.Errorf("revocation %q: %w, so its revocation cannot be checked: "+
				"add the CA certificates above it up to the self-signed root (or use revocation = %q)",
				RevocationChain, l.whyUnrooted(c, cas), RevocationLeaf)
		}
	}
	return nil
}

// whyUnrooted says why no root can be reached from c.
func (l caLinks) whyUnrooted(c *x509.Certificate, cas []*x509.Certificate) error {
	var first error // why the first certificate of the issuer's name did not issue c
	for _, p := range cas {
		if p == c || !bytes.Equal(c.RawIssuer, p.RawSubject) {
			continue
		}
		err := issued(p, c, l.byRaw[string(p.Raw)].root)
		if err == nil {
			return fmt.Errorf("no self-signed root of ca can be reached from CA %q: its issuers in ca lead to none (a loop, or a root missing above them)", c.Subject)
		}
		if first == nil {
			first = err
		}
	}
	if first != nil {
		return fmt.Errorf("no certificate of ca named %q issued CA %q: %w", c.Issuer, c.Subject, first)
	}
	return fmt.Errorf("the issuer of CA %q is not in ca", c.Subject)
}

// extend returns chain continued with the issuers of its last
// certificate found among the CAs, up to a self-signed one, and whether
// the last certificate of the result is self-signed. A last certificate
// (not the client's own) from which no root can be reached is replaced
// by a twin; a chain of one whose certificate reaches no root is
// continued with its issuer, and from there as a chain of two ending at
// that issuer would be (its twin in its place, on up to a root) when a
// root can be reached from it. Where the CAs offer several issuers or
// twins, the first from which a way of certificates all valid at now
// leads to a root is taken (OpenSSL and crypto/x509 pass over an expired
// issuer too), else the first (the first valid, for the issuer of a
// chain of one): crypto/x509 checked the dates of chain, not those of
// what extend adds, which the caller must check (Check refuses them as
// expired). chain itself is not changed.
func (l caLinks) extend(chain []*x509.Certificate, now time.Time) (full []*x509.Certificate, rooted bool) {
	return l.extendUp(chain, &upward{links: l, now: now})
}

// extendUp is extend, with up remembering which CAs lead to a root
// through valid certificates.
func (l caLinks) extendUp(chain []*x509.Certificate, up *upward) (full []*x509.Certificate, rooted bool) {
	last := len(chain) - 1
	top := chain[last]
	link, ok := l.byRaw[string(top.Raw)]
	switch {
	case !ok:
		return chain, selfSigned(top)
	case link.root:
		return chain, true
	case !link.toRoot && len(chain) == 1 && len(link.issuers) > 0:
		p := up.issuerOf(link.issuers)
		if !l.byRaw[string(p.Raw)].rooted() {
			return []*x509.Certificate{top, p}, false
		}
		return l.extendUp([]*x509.Certificate{top, p}, up)
	case !link.toRoot && (len(chain) == 1 || len(link.twins) == 0):
		return chain, false
	}
	full = append(make([]*x509.Certificate, 0, len(chain)+3), chain...)
	if !link.toRoot {
		full[last] = up.pick(link.twins)
		link = l.byRaw[string(full[last].Raw)]
	}
	// Each issuer is one step closer to a root than the certificate it
	// issued, and a twin reaches a root: the loop ends.
	for !link.root {
		p := up.pick(link.issuers)
		full = append(full, p)
		link = l.byRaw[string(p.Raw)]
	}
	return full, true
}

// issuerOfOne returns a chain of one, c alone, continued with the
// issuer leaf mode checks it against (c alone when it has none in the
// CAs), and whether that chain ends at a self-signed certificate: c's
// issuer itself, as for a chain of two ending at it, not a twin standing
// in for it (extend), whose dates leaf mode need not look at. Of several,
// one chosen as extend would (pick, for a CA from which a root can be
// reached), else the first valid at now.
func (l caLinks) issuerOfOne(c *x509.Certificate, now time.Time) (full []*x509.Certificate, rooted bool) {
	link, ok := l.byRaw[string(c.Raw)]
	switch {
	case !ok:
		return []*x509.Certificate{c}, selfSigned(c)
	case link.root:
		return []*x509.Certificate{c}, true
	case len(link.issuers) == 0:
		return []*x509.Certificate{c}, false
	case link.toRoot:
		return []*x509.Certificate{c, (&upward{links: l, now: now}).pick(link.issuers)}, false
	}
	return []*x509.Certificate{c, firstValid(link.issuers, now)}, false
}

// upward answers, for one call of extend, whether a CA and the
// certificates of some way from it up to a root are valid at now,
// remembering each answer: the ways up from a CA can be many (levels of
// re-issues of one intermediate multiply them), the CAs on them are few.
type upward struct {
	links caLinks
	now   time.Time
	known map[*x509.Certificate]bool // CA → validUp; nil until asked
}

// pick returns the first of cs, CAs from which a root can be reached,
// that is valid at now with the certificates of a way from it up to a
// root, else the first. With one (the usual case) it looks at no date.
func (u *upward) pick(cs []*x509.Certificate) *x509.Certificate {
	if len(cs) > 1 {
		for _, c := range cs {
			if u.validUp(c) {
				return c
			}
		}
	}
	return cs[0]
}

// issuerOf returns, of the issuers of a chain of one, the first from
// which the chain can be continued to a root through certificates valid
// at now (itself, or for one that reaches a root only through its twins,
// a twin in its place), else the first valid at now, else the first.
func (u *upward) issuerOf(cs []*x509.Certificate) *x509.Certificate {
	for _, c := range cs {
		link := u.links.byRaw[string(c.Raw)]
		if (link.root || link.toRoot) && u.validUp(c) {
			return c
		}
		for _, t := range link.twins {
			if u.validUp(t) {
				return c
			}
		}
	}
	return firstValid(cs, u.now)
}

// validUp reports whether c, a CA from which a root can be reached
// through issuers (a root, or toRoot), and the certificates of some way
// from it up to a root are valid at now. Each CA is looked at once per
// upward: the cost grows with the CAs and their links, not with the
// ways.
func (u *upward) validUp(c *x509.Certificate) bool {
	if ok, seen := u.known[c]; seen {
		return ok
	}
	ok := validAt(c, u.now)
	if link := u.links.byRaw[string(c.Raw)]; ok && !link.root {
		ok = false
		for _, p := range link.issuers { // each one step closer to a root
			if u.validUp(p) {
				ok = true
				break
			}
		}
	}
	if u.known == nil {
		u.known = make(map[*x509.Certificate]bool)
	}
	u.known[c] = ok
	return ok
}

// firstValid returns the first of cs valid at now, else the first.
func firstValid(cs []*x509.Certificate, now time.Time) *x509.Certificate {
	for _, c := range cs {
		if validAt(c, now) {
			return c
		}
	}
	return cs[0]
}
