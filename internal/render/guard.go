package render

import (
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"sync"

	"github.com/itchyny/gojq"
)

// Bounds on what one built-in may be handed. gojq cannot be interrupted
// inside a built-in, so each is measured before it runs.
const (
	// maxUnits bounds the logical size of a value a whole-value built-in
	// (tojson, join, sort, ==, +, …) is handed, measured as the bytes of
	// its compact JSON (see measure). The whole of a MaxInput output
	// always passes, and a value built by sharing ([$x, $x, …]), cheap to
	// build, is measured as what it would print.
	maxUnits = 4 * MaxInput
	// maxPair bounds the product of the sizes of the two operands of the
	// built-ins that compare every element of one with every element of
	// the other (array subtraction, contains, inside, indices), counting
	// a value as 8 bytes.
	maxPair = 1 << 24
	// maxStr bounds a string handed to a built-in that can turn each of
	// its bytes into a value of its own (split, regular expressions,
	// explode, fromjson).
	maxStr = 64 << 10
	// maxGuardDepth bounds how deeply a measured value may nest; it also
	// bounds the recursion of the built-ins that walk it.
	maxGuardDepth = 4 * maxDepth
)

// Function classes. A name in none of them is refused: a built-in that a
// later gojq adds is not allowed until someone has classified it.
var (
	// cheap built-ins cost at most a pass over what their input really
	// holds in memory (or stream through the evaluator, whose every step
	// checks the deadline), so they need no measuring.
	cheap = names(`empty path length utf8bytelength keys has toboolean tonumber type
		reverse startswith endswith ltrimstr rtrimstr trimstr ltrim rtrim trim
		ascii_downcase ascii_upcase abs not select map map_values walk recurse
		range repeat while until limit first last nth skip isempty values nulls
		booleans numbers strings arrays objects iterables scalars finites normals
		paths getpath any all in to_entries from_entries with_entries tostream
		fromstream truncate_stream combinations infinite isfinite
		isinfinite nan isnan isnormal gmtime localtime mktime strftime
		strflocaltime strptime now todate fromdate todateiso8601
		fromdateiso8601 frexp modf sin cos tan asin acos atan sinh cosh tanh
		asinh acosh atanh floor round nearbyint rint ceil trunc significand
		fabs sqrt cbrt exp exp10 exp2 expm1 log log10 log1p log2 logb gamma
		tgamma lgamma erf erfc j0 j1 y0 y1 atan2 copysign drem fdim fmax fmin
		fmod hypot nextafter nexttoward remainder ldexp scalb scalbln pow fma`)
	// whole built-ins walk their input (and arguments) by logical size.
	whole = names(`tostring tojson add join flatten implode min max min_by max_by
		sort sort_by group_by unique unique_by bsearch format error`)
	// stringy built-ins may turn each byte of a string into a value.
	stringy = names(`split splits test match capture scan sub gsub explode fromjson`)
	// regexes take a regular expression first (split only with two
	// arguments), then flags. gojq keeps every compiled expression for the
	// life of the program, so one taken from the output would grow it
	// without bound: they must be literals.
	regexes = names(`splits test match capture scan sub gsub`)
	// pairwise built-ins compare every element with every element.
	pairwise = names(`contains inside indices index rindex`)
	// refused built-ins reach outside the evaluation, change paths (where an
	// index sizes an allocation), or take their cost from an argument.
	refused = map[string]string{
		"input": "reads input", "inputs": "reads input", "debug": "writes to the relay's log",
		"stderr": "writes to the relay's log", "input_filename": "reads input", "input_line_number": "reads input",
		"env": "reads the relay's environment", "$ENV": "reads the relay's environment",
		"builtins": "lists the evaluator", "modulemeta": "loads modules", "halt": "stops the evaluator",
		"halt_error": "stops the evaluator", "setpath": "sizes an array from its argument",
		"delpaths": "changes paths", "del": "changes paths", "pick": "sizes an array from its argument",
		"transpose": "pads every row to the longest", "jn": "loops its first argument's times",
		"yn": "loops its first argument's times",
	}
)

func names(s string) map[string]bool {
	m := map[string]bool{}
	for _, f := range strings.Fields(s) {
		m[f] = true
	}
	return m
}

// The functions the rewrite inserts. Their names start with "_", which
// the check refuses in the owner's expression, so it cannot call or
// shadow them.
const (
	fnSize = "_relay_size"
	fnStr  = "_relay_str"
	fnKey  = "_relay_key"
	fnPair = "_relay_pair"
	fnMul  = "_relay_mul"
	fnSub  = "_relay_sub"
	varL   = "$__relay_l"
	varR   = "$__relay_r"
)

// guardError is a bound a value broke. It is a jq error, so "try" can
// catch it, which is harmless: the work it would have started never ran.
type guardError struct{ msg string }

func (e *guardError) Error() string { return e.msg }

// measure returns the logical size of v, about the bytes of its compact
// JSON (8 for a number, true, false or null), stopping as soon as it
// exceeds budget (it then returns more than budget). It counts shared
// structure once per occurrence, as printing or comparing it would.
func measure(v any, budget int) int {
	var n int
	var walk func(v any, depth int)
	walk = func(v any, depth int) {
		if n > budget {
			return
		}
		if depth > maxGuardDepth {
			n = budget + 1
			return
		}
		switch v := v.(type) {
		case string:
			n += len(v) + 2
		case []any:
			n += 2 + len(v)
			for _, e := range v {
				walk(e, depth+1)
				if n > budget {
					return
				}
			}
		case map[string]any:
			n += 2
			for k, e := range v {
				n += len(k) + 4
				walk(e, depth+1)
				if n > budget {
					return
				}
			}
		default:
			n += 8
		}
	}
	walk(v, 0)
	return n
}

func sizeGuard(v any, _ []any) any {
	if measure(v, maxUnits) > maxUnits {
		return &guardError{"a value is too large to format (limit: 16 MiB as JSON)"}
	}
	return v
}

func strGuard(v any, _ []any) any {
	if s, ok := v.(string); ok {
		if len(s) > maxStr {
			return &guardError{fmt.Sprintf("a %d-byte string is too long to split or match (limit: 64 KiB)", len(s))}
		}
		return v
	}
	return sizeGuard(v, nil)
}

func keyGuard(v any, _ []any) any {
	switch v.(type) {
	case []any, map[string]any:
		return &guardError{"indexing by an array or object is not allowed in a format"}
	}
	return v
}

func pairGuard(v any, args []any) any {
	a := measure(v, maxUnits)
	b := measure(args[0], maxUnits)
	if a > maxUnits || b > maxUnits || (a/8+1)*(b/8+1) > maxPair {
		return &guardError{"values are too large to compare element by element"}
	}
	return v
}

// delegate runs gojq's own operator on [l, r], so a guarded operator keeps
// exactly gojq's semantics.
var (
	delegates    = map[string]*gojq.Code{}
	delegateOnce sync.Once
)

func delegate(op string, l, r any) any {
	delegateOnce.Do(func() {
		for _, src := range []string{".[0] * .[1]", ".[0] - .[1]"} {
			q, err := gojq.Parse(src)
			if err != nil {
				panic(err)
			}
			c, err := gojq.Compile(q)
			if err != nil {
				panic(err)
			}
			delegates[src[5:6]] = c
		}
	})
	v, _ := delegates[op].Run([]any{l, r}).Next()
	return v
}

func mulGuard(_ any, args []any) any {
	l, r := args[0], args[1]
	s, sok := l.(string)
	n, nok := r.(float64)
	if !sok {
		s, sok = r.(string)
		n, nok = l.(float64)
	}
	if sok && nok && n > 0 {
		if float64(len(s))*math.Ceil(n) > maxUnits {
			return &guardError{"a repeated string would be too large to format"}
		}
	} else if measure(l, maxUnits) > maxUnits || measure(r, maxUnits) > maxUnits {
		return &guardError{"a value is too large to format (limit: 16 MiB as JSON)"}
	}
	return delegate("*", l, r)
}

func subGuard(_ any, args []any) any {
	if err, ok := pairGuard(args[0], args[1:]).(error); ok {
		return err
	}
	return delegate("-", args[0], args[1])
}

// guardOptions registers the guard functions with the compiler.
func guardOptions() []gojq.CompilerOption {
	return []gojq.CompilerOption{
		gojq.WithFunction(fnSize, 0, 0, sizeGuard),
		gojq.WithFunction(fnStr, 0, 0, strGuard),
		gojq.WithFunction(fnKey, 0, 0, keyGuard),
		gojq.WithFunction(fnPair, 1, 1, pairGuard),
		gojq.WithFunction(fnMul, 2, 2, mulGuard),
		gojq.WithFunction(fnSub, 2, 2, subGuard),
		// No $ENV: an environment loader that sees nothing.
		gojq.WithEnvironLoader(func() []string { return nil }),
	}
}

// rewriter checks an expression against the classes above and rewrites it
// so that every whole-value operation is measured first. It keeps jq's
// semantics for every value within the bounds, including the order of the
// outputs of a binary operator (right operand outer, left inner).
type rewriter struct {
	src    string
	scopes []map[string]bool // user functions in scope, "name/arity"
	err    *CompileError
}

func (w *rewriter) fail(name, format string, a ...any) {
	if w.err != nil {
		return
	}
	w.err = &CompileError{Offset: w.offsetOf(name), Msg: fmt.Sprintf(format, a...)}
}

// offsetOf finds where name first appears as a word in the expression, for
// the error's column; the parsed tree carries no positions.
func (w *rewriter) offsetOf(name string) int {
	if name == "" {
		return -1
	}
	re := regexp.MustCompile(`(^|[^A-Za-z0-9_$@])` + regexp.QuoteMeta(name) + `($|[^A-Za-z0-9_])`)
	if m := re.FindStringIndex(w.src); m != nil {
		if m[0] == 0 && strings.HasPrefix(w.src, name) {
			return 0
		}
		return m[0] + 1
	}
	return -1
}

func (w *rewriter) defined(name string, arity int) bool {
	key := name + "/" + strconv.Itoa(arity)
	for i := len(w.scopes) - 1; i >= 0; i-- {
		if w.scopes[i][key] {
			return true
		}
	}
	return false
}

func call(name string, args ...*gojq.Query) *gojq.Query {
	return &gojq.Query{Term: &gojq.Term{Type: gojq.TermTypeFunc, Func: &gojq.Func{Name: name, Args: args}}}
}

func pipe(l, r *gojq.Query) *gojq.Query { return &gojq.Query{Left: l, Op: gojq.OpPipe, Right: r} }

// guarded is q | fn: q's every output, measured by fn.
func guarded(q *gojq.Query, fn string) *gojq.Query { return pipe(q, call(fn)) }

func paren(q *gojq.Query) *gojq.Term { return &gojq.Term{Type: gojq.TermTypeQuery, Query: q} }

// bind is src as $name | body.
func bind(src *gojq.Query, name string, body *gojq.Query) *gojq.Query {
	return &gojq.Query{Left: src, Op: gojq.OpPipe, Right: body, Patterns: []*gojq.Pattern{{Name: name}}}
}

func (w *rewriter) query(q *gojq.Query) {
	if q == nil || w.err != nil {
		return
	}
	if len(q.Imports) > 0 || q.Meta != nil {
		w.fail("import", "modules (import, include) are not allowed in a format")
		return
	}
	if len(q.FuncDefs) > 0 {
		scope := map[string]bool{}
		w.scopes = append(w.scopes, scope)
		defer func() { w.scopes = w.scopes[:len(w.scopes)-1] }()
		for _, fd := range q.FuncDefs {
			if strings.HasPrefix(fd.Name, "_") {
				w.fail(fd.Name, "names beginning with _ are reserved: %s", fd.Name)
				return
			}
			scope[fd.Name+"/"+strconv.Itoa(len(fd.Args))] = true // recursive
			params := map[string]bool{}
			for _, a := range fd.Args {
				params[strings.TrimPrefix(a, "$")+"/0"] = true
			}
			w.scopes = append(w.scopes, params)
			w.query(fd.Body)
			w.scopes = w.scopes[:len(w.scopes)-1]
		}
	}
	for _, p := range q.Patterns {
		w.pattern(p)
	}
	if q.Term != nil {
		w.term(q.Term)
	}
	switch op := q.Op; {
	case op == 0:
	case op >= gojq.OpAssign:
		w.fail(op.String(), "assignment (%s) is not allowed in a format; build the value you want to show instead", op)
	case op == gojq.OpMul || op == gojq.OpSub:
		w.query(q.Left)
		w.query(q.Right)
		fn := fnMul
		if op == gojq.OpSub {
			fn = fnSub
		}
		varCall := func(n string) *gojq.Query { return call(n) }
		*q = *bind(&gojq.Query{Term: paren(q.Right)}, varR,
			bind(&gojq.Query{Term: paren(q.Left)}, varL, call(fn, varCall(varL), varCall(varR))))
	case op == gojq.OpAdd || op >= gojq.OpEq && op <= gojq.OpLe:
		w.query(q.Left)
		w.query(q.Right)
		q.Left, q.Right = guarded(q.Left, fnSize), guarded(q.Right, fnSize)
	case op == gojq.OpDiv:
		w.query(q.Left)
		w.query(q.Right)
		q.Left, q.Right = guarded(q.Left, fnStr), guarded(q.Right, fnStr)
	default: // | , // and or %
		w.query(q.Left)
		w.query(q.Right)
	}
}

func (w *rewriter) pattern(p *gojq.Pattern) {
	if p == nil {
		return
	}
	if strings.HasPrefix(p.Name, "$__relay") {
		w.fail(p.Name, "variable names beginning with $__relay are reserved")
	}
	for _, e := range p.Array {
		w.pattern(e)
	}
	for _, o := range p.Object {
		if strings.HasPrefix(o.Key, "$__relay") {
			w.fail(o.Key, "variable names beginning with $__relay are reserved")
		}
		w.str(o.KeyString)
		if o.KeyQuery != nil {
			w.query(o.KeyQuery)
			o.KeyQuery = guarded(o.KeyQuery, fnKey)
		}
		w.pattern(o.Val)
	}
}

func (w *rewriter) str(s *gojq.String) {
	if s == nil {
		return
	}
	for i, q := range s.Queries {
		if q.Term != nil && q.Term.Type == gojq.TermTypeString && q.Term.Str != nil && q.Term.Str.Queries == nil {
			continue // a literal part
		}
		w.query(q)
		// gojq reads each part's Term: keep the shape (q | guard).
		s.Queries[i] = &gojq.Query{Term: paren(guarded(q, fnSize))}
	}
}

func (w *rewriter) index(x *gojq.Index) {
	if x == nil {
		return
	}
	w.str(x.Str)
	w.query(x.Start)
	w.query(x.End)
	if !x.IsSlice && x.Start != nil {
		x.Start = guarded(x.Start, fnKey)
	}
}

func (w *rewriter) term(t *gojq.Term) {
	if w.err != nil {
		return
	}
	switch t.Type {
	case gojq.TermTypeIndex:
		w.index(t.Index)
	case gojq.TermTypeFunc:
		w.function(t)
	case gojq.TermTypeObject:
		for _, kv := range t.Object.KeyVals {
			switch {
			case kv.Key == "$ENV":
				w.fail("$ENV", "$ENV reads the relay's environment and is not allowed in a format")
			case strings.HasPrefix(kv.Key, "$__relay"):
				w.fail(kv.Key, "variable names beginning with $__relay are reserved")
			}
			w.str(kv.KeyString)
			if kv.KeyQuery != nil {
				w.query(kv.KeyQuery)
			}
			w.query(kv.Val)
		}
	case gojq.TermTypeArray:
		w.query(t.Array.Query)
	case gojq.TermTypeUnary:
		w.term(t.Unary.Term)
	case gojq.TermTypeFormat:
		if t.Str != nil {
			w.str(t.Str) // each interpolated value is measured
		} else {
			inner := &gojq.Term{Type: gojq.TermTypeFormat, Format: t.Format}
			*t = gojq.Term{Type: gojq.TermTypeQuery, Query: pipe(call(fnSize), &gojq.Query{Term: inner}), SuffixList: t.SuffixList}
		}
	case gojq.TermTypeString:
		w.str(t.Str)
	case gojq.TermTypeIf:
		w.query(t.If.Cond)
		w.query(t.If.Then)
		for _, e := range t.If.Elif {
			w.query(e.Cond)
			w.query(e.Then)
		}
		w.query(t.If.Else)
	case gojq.TermTypeTry:
		w.query(t.Try.Body)
		w.query(t.Try.Catch)
	case gojq.TermTypeReduce:
		w.query(t.Reduce.Query)
		for _, p := range t.Reduce.Patterns {
			w.pattern(p)
		}
		w.query(t.Reduce.Start)
		w.query(t.Reduce.Update)
	case gojq.TermTypeForeach:
		w.query(t.Foreach.Query)
		for _, p := range t.Foreach.Patterns {
			w.pattern(p)
		}
		w.query(t.Foreach.Start)
		w.query(t.Foreach.Update)
		w.query(t.Foreach.Extract)
	case gojq.TermTypeLabel:
		w.query(t.Label.Body)
	case gojq.TermTypeQuery:
		w.query(t.Query)
	}
	for _, s := range t.SuffixList {
		w.index(s.Index)
	}
}

// literal reports whether q is a string literal (or null), nothing computed.
func literal(q *gojq.Query) bool {
	if q == nil || q.Term == nil || q.Left != nil || q.Right != nil || len(q.FuncDefs) > 0 || len(q.Patterns) > 0 || len(q.Term.SuffixList) > 0 {
		return false
	}
	t := q.Term
	return t.Type == gojq.TermTypeNull || t.Type == gojq.TermTypeString && t.Str != nil && t.Str.Queries == nil
}

// function checks one call and rewrites it in place:
//
//	f(a; b)  ->  (_relay_size | f((a | _relay_size); (b | _relay_size)))
//	g(a)     ->  ((a | _relay_str) as $__relay_r | _relay_str | _relay_pair($__relay_r) | g($__relay_r))
func (w *rewriter) function(t *gojq.Term) {
	f := t.Func
	name, arity := f.Name, len(f.Args)
	for _, a := range f.Args {
		w.query(a)
	}
	if w.err != nil {
		return
	}
	switch {
	case strings.HasPrefix(name, "$"):
		if why, ok := refused[name]; ok {
			w.fail(name, "%s %s and is not allowed in a format", name, why)
		} else if strings.HasPrefix(name, "$__relay") {
			w.fail(name, "variable names beginning with $__relay are reserved")
		}
		return
	case w.defined(name, arity):
		return
	case strings.HasPrefix(name, "_"):
		w.fail(name, "%s is internal to jq and not allowed in a format", name)
		return
	}
	if why, ok := refused[name]; ok {
		w.fail(name, "%s %s and is not allowed in a format", name, why)
		return
	}
	sufs := t.SuffixList
	inner := &gojq.Term{Type: gojq.TermTypeFunc, Func: f}
	switch {
	case cheap[name]:
		return
	case whole[name]:
		for i, a := range f.Args {
			f.Args[i] = guarded(a, fnSize)
		}
		*t = gojq.Term{Type: gojq.TermTypeQuery, Query: pipe(call(fnSize), &gojq.Query{Term: inner}), SuffixList: sufs}
	case stringy[name]:
		if regexes[name] || name == "split" && arity == 2 {
			for i, a := range f.Args {
				isFlags := i == len(f.Args)-1 && (arity == 3 || (name != "sub" && name != "gsub" && arity == 2))
				if (i == 0 || isFlags) && !literal(a) {
					what := "regular expression"
					if i > 0 {
						what = "flags"
					}
					w.fail(name, "the %s of %s must be a literal string in a format", what, name)
					return
				}
			}
		}
		for i, a := range f.Args {
			f.Args[i] = guarded(a, fnStr)
		}
		*t = gojq.Term{Type: gojq.TermTypeQuery, Query: pipe(call(fnStr), &gojq.Query{Term: inner}), SuffixList: sufs}
	case pairwise[name] && arity == 1:
		arg := guarded(f.Args[0], fnStr)
		f.Args[0] = call(varR)
		body := pipe(call(fnStr), pipe(call(fnPair, call(varR)), &gojq.Query{Term: inner}))
		*t = gojq.Term{Type: gojq.TermTypeQuery, Query: bind(&gojq.Query{Term: paren(arg)}, varR, body), SuffixList: sufs}
	default:
		w.fail(name, "%s/%d is not a function a format may use", name, arity)
	}
}
