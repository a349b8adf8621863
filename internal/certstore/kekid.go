package certstore

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/tlspilot/tlspilot/storage"
)

// KEKIDKey is the record holding the id of the key-encryption key every
// private key in the storage is sealed under (keys.Sealer.ID): written
// once, by the first process that checks it, and never replaced.
const KEKIDKey = "kek-id"

// kekIDLock serialises the first writing of KEKIDKey.
const kekIDLock = "kek-id"

// ErrWrongKEK means the storage's private keys are sealed under another
// key-encryption key than this process's.
var ErrWrongKEK = errors.New("the storage's private keys are sealed under another key-encryption key")

// CheckKEK tells whether this Store's KEK is the one the storage's keys
// are sealed under, so that a process given another KEK (a cluster node
// with a different kek_file) stops before it replaces what it cannot
// read. The storage records the id of its KEK (KEKIDKey); a storage
// written before the id was kept has it added, once a sealed account key
// in it opens with this KEK (or it has none). It returns an error
// wrapping ErrWrongKEK when the ids differ or a stored account key does
// not open, and the storage's error when it cannot be read; it changes
// nothing else.
func (st *Store) CheckKEK(ctx context.Context) error {
	recorded, err := st.KEKMatches(ctx)
	if err != nil || recorded {
		return err
	}
	id := st.sealer.ID()
	lease, err := st.s.Lock(ctx, kekIDLock)
	if err != nil {
		return err
	}
	defer func() { _ = lease.Unlock(context.WithoutCancel(ctx)) }()
	if b, err := st.s.Load(ctx, KEKIDKey); err == nil {
		return compareKEKID(string(b), id) // another process wrote it meanwhile
	} else if !IsNotExist(err) {
		return err
	}
	return st.s.Store(storage.WithLease(ctx, lease), KEKIDKey, []byte(id+"\n"))
}

// KEKMatches is CheckKEK without writing: recorded says the storage
// holds its KEK's id. A storage without it and without account keys
// matches any KEK.
func (st *Store) KEKMatches(ctx context.Context) (recorded bool, err error) {
	b, err := st.s.Load(ctx, KEKIDKey)
	if err == nil {
		return true, compareKEKID(string(b), st.sealer.ID())
	}
	if !IsNotExist(err) {
		return false, err
	}
	return false, st.openAnAccountKey(ctx)
}

func compareKEKID(stored, id string) error {
	if stored = strings.TrimSpace(stored); stored != id {
		return fmt.Errorf("%w (its %s record says %s, this key-encryption key is %s)", ErrWrongKEK, KEKIDKey, stored, id)
	}
	return nil
}

// openAnAccountKey tells, for a storage from before KEKIDKey was kept,
// whether its account keys were sealed under this KEK: it is when one of
// them opens (a damaged one, or one of an account no longer used, does not
// count against it), or when there are none.
func (st *Store) openAnAccountKey(ctx context.Context) error {
	ks, err := st.s.List(ctx, "accounts")
	if err != nil {
		return err
	}
	var failed error
	for _, k := range ks {
		if !strings.HasSuffix(k, "/key") {
			continue
		}
		b, err := st.s.Load(ctx, k)
		if IsNotExist(err) {
			continue
		}
		if err != nil {
			return err
		}
		if _, err := st.open(string(b), k); err != nil {
			failed = err
			continue
		}
		return nil
	}
	if failed != nil {
		return fmt.Errorf("%w: no account key opens with it: %w", ErrWrongKEK, failed)
	}
	return nil
}

// ErrKEKMissing means the key-encryption key file is missing while the
// storage holds private keys sealed under a key-encryption key: a new
// one would open none of them. It wraps ErrWrongKEK.
var ErrKEKMissing = fmt.Errorf("the key-encryption key file is missing: %w", ErrWrongKEK)

// RefuseNewKEK is called before a missing key-encryption key file at
// path is created for storage s. It returns an error wrapping
// ErrKEKMissing, naming path and the id in the storage's KEKIDKey
// record, when s holds keys sealed under a key-encryption key: the
// record exists, or (a storage from before the record was kept) an
// account key does. It returns nil only when s answered that it holds
// none: a storage that cannot be read gets an error saying so, since a
// key made then might be the wrong one for every sealed key in it. It
// reads only.
func RefuseNewKEK(ctx context.Context, s storage.Storage, path string) error {
	if b, err := s.Load(ctx, KEKIDKey); err == nil {
		return fmt.Errorf("%w with id %s (its %s record): %s does not exist; restore that file: a new key-encryption key would open none of them",
			ErrKEKMissing, strings.TrimSpace(string(b)), KEKIDKey, path)
	} else if !IsNotExist(err) {
		return fmt.Errorf("key-encryption key %s does not exist, and the storage could not be read to tell whether its keys are sealed under another one (a new one would open none of them): %w", path, err)
	}
	ks, err := s.List(ctx, "accounts")
	if err != nil {
		return fmt.Errorf("key-encryption key %s does not exist, and the storage could not be read to tell whether its keys are sealed under another one (a new one would open none of them): %w", path, err)
	}
	for _, k := range ks {
		if strings.HasSuffix(k, "/key") {
			return fmt.Errorf("%w (account key %s): %s does not exist; restore that file: a new key-encryption key would open none of them",
				ErrKEKMissing, k, path)
		}
	}
	return nil
}
