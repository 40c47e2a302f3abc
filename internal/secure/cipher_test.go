package secure

import "github.com/flynn/noise"

// noiseCipher is a receive cipher state with a known key, for tests and
// fuzzing that feed records to a Conn.
func noiseCipher(k [32]byte) *noise.CipherState { return noise.UnsafeNewCipherState(suite, k, 0) }
