//go:build !race

package reorder

const poison = false
