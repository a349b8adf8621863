package certstore

import "context"

// Challenge answers are stored under a hash of the token or identifier, so
// nothing a client sends is ever used as a key.

func httpKey(token string) string      { return "challenges/http-01/" + hashKey(token) }
func alpnKey(identifier string) string { return "challenges/tls-alpn-01/" + hashKey(identifier) }

// StoreHTTP01 saves the key authorization answering token.
func (st *Store) StoreHTTP01(ctx context.Context, token, keyAuth string) error {
	return st.s.Store(ctx, httpKey(token), []byte(keyAuth))
}

// LoadHTTP01 returns the key authorization answering token.
func (st *Store) LoadHTTP01(ctx context.Context, token string) (string, error) {
	b, err := st.s.Load(ctx, httpKey(token))
	return string(b), err
}

// DeleteHTTP01 removes the answer for token.
func (st *Store) DeleteHTTP01(ctx context.Context, token string) error {
	return st.s.Delete(ctx, httpKey(token))
}

// StoreTLSALPN01 saves the key authorization for identifier.
func (st *Store) StoreTLSALPN01(ctx context.Context, identifier, keyAuth string) error {
	return st.s.Store(ctx, alpnKey(identifier), []byte(keyAuth))
}

// LoadTLSALPN01 returns the key authorization for identifier.
func (st *Store) LoadTLSALPN01(ctx context.Context, identifier string) (string, error) {
	b, err := st.s.Load(ctx, alpnKey(identifier))
	return string(b), err
}

// DeleteTLSALPN01 removes the answer for identifier.
func (st *Store) DeleteTLSALPN01(ctx context.Context, identifier string) error {
	return st.s.Delete(ctx, alpnKey(identifier))
}
