package secure

import (
	"sync"

	"golang.org/x/crypto/argon2"
)

// Key is the pre-shared key both ends derive from the password.
type Key [32]byte

// Argon2id parameters: RFC 9106's second recommended option (section 4).
// The salt is fixed because both ends must derive the same key with
// nothing exchanged; the cost is what slows a dictionary attack on a
// recorded handshake (see docs/SECURITY.md).
const (
	argonTime    = 3
	argonMemory  = 64 << 10 // KiB
	argonThreads = 4
)

var argonSalt = []byte("mptp v2 pre-shared key")

// derived holds one password's key, computed once however many
// sub-connections ask for it at the same time.
type derived struct {
	once sync.Once
	key  Key
}

var keys sync.Map // password -> *derived

// KeyFromPassword derives the pre-shared key from a password. It takes a
// fraction of a second and 64 MiB the first time for a password; the key
// is cached after that.
func KeyFromPassword(password string) *Key {
	v, _ := keys.LoadOrStore(password, &derived{})
	d := v.(*derived)
	d.once.Do(func() {
		copy(d.key[:], argon2.IDKey([]byte(password), argonSalt, argonTime, argonMemory, argonThreads, uint32(len(d.key))))
	})
	return &d.key
}
