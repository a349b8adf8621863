package acmeclient

import (
	"context"
	"crypto"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"

	"github.com/mholt/acmez/v3/acme"
)

// Account is a registered ACME account.
type Account struct {
	URL     string
	Key     crypto.Signer
	Contact []string
}

// EAB is an External Account Binding: a key identifier and the
// base64url-encoded HMAC key the CA handed out with it.
type EAB struct {
	KeyID   string
	HMACKey string
}

// Check says what is wrong with e, nil if nothing: a key identifier is
// needed, and an HMAC key in base64url without padding (RFC 8555
// §7.3.4), as the CA hands it out. The ACME library panics on an empty
// key identifier and fails every registration on a key it cannot
// decode.
func (e EAB) Check() error {
	if e.KeyID == "" {
		return errors.New("no key identifier")
	}
	if e.HMACKey == "" {
		return errors.New("no HMAC key")
	}
	if _, err := base64.RawURLEncoding.DecodeString(e.HMACKey); err != nil {
		return fmt.Errorf("HMAC key is not base64url without padding: %w", err)
	}
	return nil
}

// RegisterOptions says how to create an account.
type RegisterOptions struct {
	Contact    []string // e.g. "mailto:ops@example.com"
	AgreeTerms bool     // agree to the CA's terms of service
	EAB        *EAB
}

// ErrTermsNotAgreed is returned when the CA has terms of service and the
// caller did not agree to them.
var ErrTermsNotAgreed = errors.New("the CA has terms of service that the configuration does not agree to (set agree_terms)")

// Register creates an account for key, or finds the one the CA already
// holds for that key (the CA answers newAccount for a known key with the
// existing account).
func (c *Client) Register(ctx context.Context, key crypto.Signer, opts RegisterOptions) (Account, error) {
	dir, err := c.Directory(ctx)
	if err != nil {
		return Account{}, err
	}
	if dir.TermsOfService != "" && !opts.AgreeTerms {
		return Account{}, fmt.Errorf("register account: %s: %w", dir.TermsOfService, ErrTermsNotAgreed)
	}
	if dir.ExternalAccountRequired && opts.EAB == nil {
		return Account{}, &Error{Op: "register account", Class: BadAccount,
			Err: errors.New("the CA requires external account binding (key id and HMAC key)")}
	}
	acct := acme.Account{
		Contact:              opts.Contact,
		TermsOfServiceAgreed: opts.AgreeTerms,
		PrivateKey:           key,
	}
	if opts.EAB != nil {
		if err := opts.EAB.Check(); err != nil {
			return Account{}, &Error{Op: "register account", Class: BadAccount, Err: fmt.Errorf("external account binding: %w", err)}
		}
		ctx, s := withSink(ctx, EndpointNewAccount)
		if err := acct.SetExternalAccountBinding(ctx, c.c, acme.EAB{KeyID: opts.EAB.KeyID, MACKey: opts.EAB.HMACKey}); err != nil {
			return Account{}, wrap("external account binding", err, s)
		}
	}
	ctx, s := withSink(ctx, EndpointNewAccount)
	got, err := c.c.NewAccount(ctx, acct)
	if err != nil {
		return Account{}, wrap(opRegister, err, s)
	}
	if got.Location == "" {
		return Account{}, &Error{Op: "register account", Err: errors.New("CA returned no account URL")}
	}
	return Account{URL: got.Location, Key: key, Contact: got.Contact}, nil
}

// acme returns a as acmez takes it. Its Contact is a copy: acmez decodes
// the CA's answer into the account it is given, into the same slice, and
// an Account is shared by every order of a Manager (two failing at once
// both asked for the account's state: a data race on a.Contact).
func (a Account) acme() acme.Account {
	return acme.Account{Location: a.URL, PrivateKey: a.Key, Contact: slices.Clone(a.Contact), Status: "valid"}
}

// Thumbprint returns the account key's JWK thumbprint (RFC 7638), the
// second half of every key authorization.
func (a Account) Thumbprint() (string, error) {
	aa := a.acme()
	return aa.Thumbprint()
}

// Account states (RFC 8555 §7.1.6).
const (
	AccountValid       = acme.StatusValid
	AccountDeactivated = acme.StatusDeactivated // by its holder; final
	AccountRevoked     = acme.StatusRevoked     // by the CA; final
)

// AccountStatus asks the CA for the account's state (RFC 8555 §7.3.3,
// POST-as-GET to the account URL): "valid", "deactivated" or "revoked".
// A CA that no longer knows the account answers with an *Error of class
// BadAccount (accountDoesNotExist or unauthorized).
func (c *Client) AccountStatus(ctx context.Context, acct Account) (string, error) {
	ctx, s := withSink(ctx, EndpointNewAccount)
	got, err := c.c.GetAccount(ctx, acct.acme())
	if err != nil {
		return "", wrap(opGetAccount, err, s)
	}
	return got.Status, nil
}

// DeactivateAccount deactivates the account at the CA for good (RFC 8555
// §7.3.6): the CA refuses every later request signed with its key.
func (c *Client) DeactivateAccount(ctx context.Context, acct Account) error {
	ctx, s := withSink(ctx, EndpointAccount)
	a := acct.acme()
	a.Status = acme.StatusDeactivated
	_, err := c.c.UpdateAccount(ctx, a)
	return wrap("deactivate account", err, s)
}
