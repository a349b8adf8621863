package issuance

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/tlspilot/tlspilot/dns01"
	"github.com/tlspilot/tlspilot/internal/acmeclient"
	"github.com/tlspilot/tlspilot/internal/certstore"
	"github.com/tlspilot/tlspilot/internal/solvers"
)

// Answers left behind. An answer whose removal failed (the DNS server
// was down, a clean-up hook failed) or could not be tried (no solver of
// its type is configured any more: the certificate moved off dns-01) is
// kept in a small record under its certificate, apart from the order
// progress, whose life it outlives: an order given up or completed is
// forgotten, its leftovers are not. Every Obtain for the certificate
// (under its issue lock) and Sweep try to remove them again; Leftovers
// lists them for reports.

// LeftFile is the name of the record of answers left behind in a
// certificate's folder (certstore.Store.ListCertsWith finds them).
const LeftFile = "answers-left.json"

// leftKey is the storage key of id's record of answers left behind.
func leftKey(id string) string { return "certs/" + id + "/" + LeftFile }

// Leftovers returns the answers recorded as left behind for certificate
// id: presented, and not removed. A missing record is no leftovers.
func Leftovers(ctx context.Context, st *certstore.Store, id string) ([]certstore.Challenge, error) {
	b, err := st.Storage().Load(ctx, leftKey(id))
	if certstore.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("load answers left behind: %w", err)
	}
	var chs []certstore.Challenge
	if err := json.Unmarshal(b, &chs); err != nil {
		return nil, fmt.Errorf("load answers left behind: %s: %w", leftKey(id), err)
	}
	return chs, nil
}

// Where describes where answer c is published, for messages that tell an
// operator what to remove: a dns-01 answer is the TXT record name
// ("_acme-challenge.example.com", or where its CNAME points) and value; others are the identifier
// and the token.
func Where(c certstore.Challenge) (name, value string) {
	if c.Type == "dns-01" {
		name := strings.TrimSuffix(dns01.ChallengeName(c.Identifier), ".")
		return name, acmeclient.Challenge{KeyAuthorization: c.KeyAuth}.DNS01Value()
	}
	return c.Identifier, c.Token
}

// storeLeft replaces id's record of answers left behind with chs,
// deleting it when chs is empty.
func (f *Flow) storeLeft(ctx context.Context, id string, chs []certstore.Challenge) error {
	if len(chs) == 0 {
		if err := f.Store.Storage().Delete(ctx, leftKey(id)); err != nil && !certstore.IsNotExist(err) {
			return err
		}
		return nil
	}
	b, err := json.Marshal(chs)
	if err != nil {
		return err
	}
	return f.Store.Storage().Store(ctx, leftKey(id), b)
}

// keepLeft adds chs, answers just found impossible to remove, to id's
// record of answers left behind.
func (f *Flow) keepLeft(ctx context.Context, id string, chs []certstore.Challenge) {
	if len(chs) == 0 {
		return
	}
	ctx, cancel := detach(ctx)
	defer cancel()
	old, err := Leftovers(ctx, f.Store, id)
	if err != nil {
		f.Log.Warn("answers left behind: record unreadable, replaced", "cert", id, "error", err)
	}
	for _, c := range chs {
		if !slices.Contains(old, c) {
			old = append(old, c)
		}
	}
	err = f.storeLeft(ctx, id, old)
	for _, c := range chs {
		name, value := Where(c)
		if err != nil {
			f.Log.Error("challenge answer left behind and not recorded: remove it by hand", "cert", id,
				"type", c.Type, "record", name, "value", value, "error", err)
		} else {
			f.Log.Warn("challenge answer left behind: recorded, its removal tried again at each attempt for this certificate", "cert", id,
				"type", c.Type, "record", name, "value", value)
		}
	}
}

// Sweep tries again to remove the answers recorded as left behind for
// certificate id, and returns those still left. The caller holds id's
// issue lock (Obtain sweeps by itself). Sweep removes under ctx, and does
// nothing once ctx ended: no one waits on these answers, so a stop need
// not wait for their removal; those not removed stay recorded for the
// next Sweep.
func (f *Flow) Sweep(ctx context.Context, id string) []certstore.Challenge {
	ctx = solvers.WithOwner(ctx, id)
	chs, err := Leftovers(ctx, f.Store, id)
	if err != nil {
		f.Log.Warn("answers left behind", "cert", id, "error", err)
		return nil
	}
	if len(chs) == 0 || ctx.Err() != nil {
		return chs
	}
	left := f.removeRecorded(ctx, id, chs)
	if len(left) == len(chs) {
		return left // nothing changed: the record stays as it is
	}
	sctx, cancel := detach(ctx)
	defer cancel()
	if err := f.storeLeft(sctx, id, left); err != nil {
		f.Log.Warn("save answers left behind", "cert", id, "error", err)
	}
	f.Log.Info("removed challenge answers left behind", "cert", id, "count", len(chs)-len(left))
	return left
}

// storeTimeout bounds the saving of a record that must outlive ctx.
const storeTimeout = 10 * time.Second

// detach returns a context that goes on after ctx ended, for at most
// storeTimeout, for saving what the end of ctx must not lose.
func detach(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), storeTimeout)
}
