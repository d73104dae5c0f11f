// Package render turns a command's captured output into the text the owner
// reads on a phone: a jq expression (github.com/itchyny/gojq) over the JSON
// the command printed, and optionally an aligned table of a JSON array.
//
// It owns the bounds of that work. The output is untrusted (a compromised
// device or service answers whatever it likes) and the expression, though
// the owner's, may be pathological, so Render must never let either stall
// or bloat the relay:
//
//   - the input is at most Limits.Input bytes (and the caller passes no
//     more than the command's max_output), decoded by a bounded, exact
//     JSON decoder (nesting at most 256 levels);
//   - evaluation runs under a deadline (Limits.Time), checked by gojq
//     before every instruction, and under an allocation budget
//     (Limits.Alloc): a watchdog reads the runtime's cumulative heap
//     allocation and cancels the evaluation once it has grown by more;
//   - no single built-in can do unbounded work in one step, which neither
//     bound above could interrupt: Compile refuses the built-ins that take
//     a size from their arguments or reach outside (input, $ENV, debug,
//     setpath, transpose, jn, …) and rewrites every other call, operator
//     and interpolation that walks whole values so that its operands are
//     first measured, by logical size, against a bound (values in gojq
//     share structure, so [$x, $x] is cheap to build and expensive to
//     print); operations that grow a string into many values (split,
//     regular expressions, explode) take strings of at most 64 KiB;
//   - the rendered text is at most Limits.Output bytes, and a table at
//     most Limits.Units UTF-16 units, cut at a row with a count of what
//     was left out.
//
// It never runs a process, never reads a file or the environment, and never
// emits HTML: the caller hands the text to chatfmt, which escapes it.
package render
