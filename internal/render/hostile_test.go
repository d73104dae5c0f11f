package render

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"runtime/metrics"
	"strings"
	"testing"
	"time"
)

func allocated() uint64 {
	s := []metrics.Sample{{Name: "/gc/heap/allocs:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// cutOff runs a hostile case and requires that a bound stopped it, and
// that the whole run allocated at most slack bytes beyond the budget.
func cutOff(t *testing.T, spec Spec, in string, lim Limits, want string) {
	t.Helper()
	p := mustCompile(t, spec)
	before := allocated()
	out, err := p.Render(context.Background(), strings.NewReader(in), lim)
	used := allocated() - before
	var e *Error
	if !errors.As(err, &e) || !e.Limit {
		t.Fatalf("got %.60q, %v; want a bound to cut it off", out, err)
	}
	if !strings.Contains(e.Reason, want) {
		t.Errorf("got %q, want it cut off by %q", e.Reason, want)
	}
	budget := lim.withDefaults().Alloc
	if slack := uint64(64 << 20); used > budget+slack {
		t.Errorf("allocated %d MiB, want at most the %d MiB budget and %d MiB of slack", used>>20, budget>>20, slack>>20)
	}
}

// TestHostileExpressionsCutOff: an expression that never ends, or builds
// without end, is stopped by the memory or the time bound. The time bound
// of the memory cases is far away, so it is the memory bound that acts.
func TestHostileExpressionsCutOff(t *testing.T) {
	far := time.Minute
	for _, c := range []struct {
		name, jq string
		lim      Limits
		want     string
	}{
		{"an array of a billion numbers", `[range(1e9)]`, Limits{Time: far, Alloc: 32 << 20}, "memory"},
		{"unbounded recursion", `def f: [f, f]; f`, Limits{Time: far, Alloc: 32 << 20}, "memory"},
		{"a value that doubles forever", `def f: [., .] | f; f`, Limits{Time: far, Alloc: 32 << 20}, "memory"},
		{"quadratic copying", `reduce range(1e9) as $i ([]; . + [$i])`, Limits{Time: far, Alloc: 32 << 20}, "memory"},
		{"repeat", `[limit(1e9; repeat(.))]`, Limits{Time: far, Alloc: 32 << 20}, "memory"},
		{"a loop that allocates nothing kept", `last(range(1e12))`, Limits{Time: 30 * time.Millisecond}, "took longer than 30ms"},
		{"until that never holds", `0 | until(. < 0; . + 1)`, Limits{Time: 30 * time.Millisecond}, "took longer than 30ms"},
	} {
		t.Run(c.name, func(t *testing.T) { cutOff(t, Spec{JQ: c.jq}, "null", c.lim, c.want) })
	}
}

// TestSingleStepsMeasured: what no deadline can interrupt, a built-in
// doing unbounded work in one step, is refused before it starts.
func TestSingleStepsMeasured(t *testing.T) {
	long := `"` + strings.Repeat("a", 70000) + `"`
	nums := "[" + strings.Repeat("1,", 20000) + "1]"
	for _, c := range []struct {
		name, jq, in, want string
	}{
		{"a string repeated a billion times", `"x" * 1e9`, `null`, "repeated string"},
		{"a repeat count from the output", `.s * .n`, `{"s":"xyz","n":1e9}`, "repeated string"},
		{"serialising a value built by sharing", `. as $x | [range(1e5) | $x] | tojson`, haState, "too large to format"},
		{"joining shared strings", `.s as $s | [range(1e5) | $s] | join("")`, `{"s":` + long + `}`, "too large to format"},
		{"sorting shared arrays", `. as $x | [range(3000) | $x] | sort`, nums, "too large to format"},
		{"comparing shared values", `. as $x | [range(3000) | $x] as $y | $y == $y`, nums, "too large to format"},
		{"interpolating shared values", `. as $x | [range(3000) | $x] | "\(.)"`, nums, "too large to format"},
		{"array difference, every element against every element", `. - .`, nums, "element by element"},
		{"contains, element by element", `contains(.)`, nums, "element by element"},
		{"splitting a long string into characters", `split("")`, long, "too long to split"},
		{"matching a long string", `[match("a"; "g")]`, long, "too long to split"},
		{"explode", `explode`, long, "too long to split"},
		{"dividing a long string", `. / ""`, long, "too long to split"},
		{"indexing by an array", `.[[1]]`, nums, "indexing by an array"},
	} {
		// The deadline is far away, so that it is the measuring that acts
		// even on a slow machine (or under the race detector).
		t.Run(c.name, func(t *testing.T) { cutOff(t, Spec{JQ: c.jq}, c.in, Limits{Time: time.Minute}, c.want) })
	}
}

// TestHostileOutputBounded: rendered text and tables stay within their
// limits whatever the output holds.
func TestHostileOutputBounded(t *testing.T) {
	many := "[" + strings.Repeat(`"x",`, 100000) + `"x"]`
	// The size bound is the one under test: a generous deadline keeps the
	// time bound (tested above) from cutting in first on a slow machine,
	// or under the race detector.
	cutOff(t, Spec{JQ: `.[]`}, many, Limits{Time: time.Minute}, "rendered text is over 64 KiB")
	got, err := render(t, Spec{Table: true}, many, Limits{Units: 500, Time: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	if units(got) > 500 || !strings.HasSuffix(got, " more rows") {
		t.Errorf("got a table of %d units ending %q, want at most 500 ending with the rows left out", units(got), got[max(0, len(got)-30):])
	}
}

// TestHostileDecode: the JSON decoder refuses what would make the walks
// above deep, and never reads past its input.
func TestHostileDecode(t *testing.T) {
	for _, c := range []struct{ name, in, want string }{
		{"deep arrays", strings.Repeat("[", 100000), "nested deeper"},
		{"deep objects", strings.Repeat(`{"a":`, 100000), "nested deeper"},
		{"a number out of range", `1e400`, "not JSON"},
		{"a number glued to a word", `12abc`, "not JSON"},
		{"an unescaped control character", "\"a\x01b\"", "not JSON"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := render(t, Spec{JQ: `.`}, c.in, Limits{})
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("got %v, want %q", err, c.want)
			}
		})
	}
}

func BenchmarkHostile(b *testing.B) {
	for _, c := range []struct{ name, jq string }{
		{"range", `[range(1e9)]`},
		{"recursion", `def f: [f, f]; f`},
		{"time", `last(range(1e12))`},
	} {
		p := mustCompile(b, Spec{JQ: c.jq})
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				if _, err := p.Render(context.Background(), strings.NewReader("null"), Limits{}); err == nil {
					b.Fatal("not cut off")
				}
			}
		})
	}
}

// ExampleProgram_Render is the call the daemon makes after a job ends.
func ExampleProgram_Render() {
	p, err := Compile(Spec{JQ: `.state + " " + .attributes.unit_of_measurement`})
	if err != nil {
		panic(err)
	}
	out := `{"state": "21.5", "attributes": {"unit_of_measurement": "°C"}}`
	text, err := p.Render(context.Background(), strings.NewReader(out), Limits{Input: 64 << 10})
	if err != nil {
		fmt.Println(Note(err))
		return
	}
	fmt.Println(text)
	// Output: 21.5 °C
}

// Interned keys are bounded: an output of many distinct or long keys keeps
// at most maxInternedKeys of them, none longer than maxInternedKey, and
// still decodes as encoding/json decodes it.
func TestInternedKeysBounded(t *testing.T) {
	var b strings.Builder
	b.WriteString("[")
	for i := range 3 * maxInternedKeys {
		if i > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, `{"k%d":1,%q:2,"same":3}`, i, strings.Repeat("x", maxInternedKey+1+i%3))
	}
	b.WriteString("]")
	d := &decoder{b: []byte(b.String())}
	v, done, err := d.next()
	if err != nil || done {
		t.Fatalf("decode: %v %v", done, err)
	}
	if len(d.keys) > maxInternedKeys {
		t.Errorf("%d keys interned, want at most %d", len(d.keys), maxInternedKeys)
	}
	for k := range d.keys {
		if len(k) > maxInternedKey {
			t.Errorf("a key of %d bytes interned", len(k))
		}
	}
	var want any
	if err := json.Unmarshal([]byte(b.String()), &want); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(v, want) {
		t.Error("interned decoding differs from encoding/json")
	}
}
