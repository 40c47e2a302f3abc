//go:build race

package reorder

// poison overwrites buffers as they go back to the pool, so that a test
// (run with -race) reading one still in use sees garbage, not old bytes.
const poison = true
