// Package lazyre compiles a regular expression on its first use instead of
// at start-up. Every package-level regexp.MustCompile runs before main in
// every process of the relay binary, the sandbox trampoline and relay
// notify included, and together they were a fifth of the CPU a relay spent
// before it could do anything.
package lazyre

import (
	"regexp"
	"sync"
)

// New returns a function that compiles expr on its first call and returns
// the same *regexp.Regexp from then on. It panics, as regexp.MustCompile
// does, if expr does not compile: expr is a constant of the program.
func New(expr string) func() *regexp.Regexp {
	return sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(expr) })
}
