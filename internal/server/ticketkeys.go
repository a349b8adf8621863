package server

import (
	"crypto/rand"
	"crypto/tls"
	"fmt"
	"sync"
	"time"
)

// Session ticket key rotation for configurations that hold keys of their
// own (sites with ClientAuth), as crypto/tls does for its automatic keys
// (which SetSessionTicketKeys turns off): a new key every day, each kept
// a week, the longest crypto/tls accepts a ticket.
const (
	ticketKeyRotation = 24 * time.Hour
	ticketKeyLifetime = 7 * 24 * time.Hour
)

// ticketKeys are the session ticket keys of one tls.Config, newest
// first.
type ticketKeys struct {
	conf *tls.Config

	mu      sync.Mutex
	keys    [][32]byte
	created time.Time // of keys[0]
}

// newTicketKeys gives conf a fresh key of its own, made at now.
func newTicketKeys(conf *tls.Config, now time.Time) (*ticketKeys, error) {
	k := &ticketKeys{conf: conf}
	if err := k.add(now); err != nil {
		return nil, err
	}
	return k, nil
}

// rotate adds a new key once the newest is ticketKeyRotation old,
// dropping those older than ticketKeyLifetime. Called from the Server's
// watch loop; an error (no random bytes) keeps the keys in use.
func (k *ticketKeys) rotate(now time.Time) error {
	k.mu.Lock()
	due := now.Sub(k.created) >= ticketKeyRotation
	k.mu.Unlock()
	if !due {
		return nil
	}
	return k.add(now)
}

func (k *ticketKeys) add(now time.Time) error {
	var key [32]byte
	if _, err := rand.Read(key[:]); err != nil {
		return fmt.Errorf("session ticket key: %w", err)
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	keep := int(ticketKeyLifetime / ticketKeyRotation)
	k.keys = append([][32]byte{key}, k.keys[:min(len(k.keys), keep-1)]...)
	k.created = now
	k.conf.SetSessionTicketKeys(k.keys)
	return nil
}
