package render

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/itchyny/gojq"
)

// haState is what Home Assistant's REST API answers for GET
// /api/states/sensor.outdoor_temperature.
const haState = `{"entity_id":"sensor.outdoor_temperature","state":"12.5",
 "attributes":{"unit_of_measurement":"°C","device_class":"temperature","friendly_name":"Outdoor temperature"},
 "last_changed":"2024-05-01T10:00:00.000000+00:00","last_updated":"2024-05-01T10:00:00.000000+00:00",
 "context":{"id":"01HWZ3RQ9M6D5K5Y4V1B8E7T2C","parent_id":null,"user_id":null}}`

func mustCompile(t testing.TB, s Spec) *Program {
	t.Helper()
	p, err := Compile(s)
	if err != nil {
		t.Fatalf("compile %+v: %v", s, err)
	}
	return p
}

func render(t testing.TB, s Spec, in string, lim Limits) (string, error) {
	t.Helper()
	return mustCompile(t, s).Render(context.Background(), strings.NewReader(in), lim)
}

func TestRender(t *testing.T) {
	for _, c := range []struct {
		name string
		spec Spec
		in   string
		want string
	}{
		{"state and unit", Spec{JQ: `.state + " " + .attributes.unit_of_measurement`}, haState, "12.5 °C"},
		{"interpolation", Spec{JQ: `"\(.attributes.friendly_name): \(.state) \(.attributes.unit_of_measurement)"`}, haState, "Outdoor temperature: 12.5 °C"},
		{"several results, one per line", Spec{JQ: `.entity_id, .state`}, haState, "sensor.outdoor_temperature\n12.5"},
		{"numbers as jq prints them", Spec{JQ: `.a, .b, .a * 2, .c`}, `{"a":21,"b":21.5,"c":1e20}`, "21\n21.5\n42\n100000000000000000000"},
		{"objects indented, keys sorted", Spec{JQ: `{z: .state, a: [1, null]}`}, haState, "{\n  \"a\": [\n    1,\n    null\n  ],\n  \"z\": \"12.5\"\n}"},
		{"a stream of JSON values", Spec{JQ: `.temperature`}, "{\"temperature\": 20}\n{\"temperature\": 21}\n", "20\n21"},
		{"text input, last newline dropped", Spec{JQ: `ascii_upcase`, Text: true}, "on\n", "ON"},
		{"text input that is not JSON", Spec{JQ: `"state: " + .`, Text: true}, "off", "state: off"},
		{"alternative for a missing unit", Spec{JQ: `.state + " " + (.attributes.unit // "")`}, haState, "12.5 "},
		{"service call answer", Spec{JQ: `if length == 0 then "done, nothing changed" else map(.entity_id + " → " + .state) | join("\n") end`},
			`[{"entity_id":"light.kitchen","state":"on"},{"entity_id":"light.hall","state":"off"}]`, "light.kitchen → on\nlight.hall → off"},
		{"nothing returned", Spec{JQ: `empty`}, haState, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := render(t, c.spec, c.in, Limits{})
			if err != nil {
				t.Fatalf("got error %v, want %q", err, c.want)
			}
			if got != c.want {
				t.Errorf("got %q, want %q", got, c.want)
			}
		})
	}
}

// TestRenderFailures: what the caller shows as a note above the raw output.
func TestRenderFailures(t *testing.T) {
	for _, c := range []struct {
		name, jq, in, want string
		limit              bool
	}{
		{"not JSON", `.state`, `<html>502 Bad Gateway</html>`, "the output is not JSON (at byte 0)", false},
		{"truncated JSON", `.state`, `{"state": "on", "attri`, "the output is not JSON (at byte 16)", false},
		{"empty output", `.state`, "  \n", "the output is empty, not JSON", false},
		{"jq type error", `.state.x`, haState, `jq: expected an object but got: string ("12.5")`, false},
		{"error() with a value", `error({a: 1})`, `null`, `jq: error: {"a":1}`, false},
		{"error() with a long string", `error("x" * 5000)`, `null`, "jq: error: " + strings.Repeat("x", 200) + "…", false},
		{"nested too deep", `.`, strings.Repeat("[", 300) + strings.Repeat("]", 300), "the output is JSON nested deeper than 256 levels", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			out, err := render(t, Spec{JQ: c.jq}, c.in, Limits{})
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("got %q, %v; want an *Error", out, err)
			}
			if e.Reason != c.want || e.Limit != c.limit {
				t.Errorf("got reason %q (limit %v), want %q (limit %v)", e.Reason, e.Limit, c.want, c.limit)
			}
			if n := Note(err); !strings.HasPrefix(n, "format failed (") || strings.ContainsAny(n, "\n\r") {
				t.Errorf("got note %q, want one line", n)
			}
		})
	}
}

func TestNote(t *testing.T) {
	got := Note(&Error{Reason: "took longer than 250ms", Limit: true})
	if want := "format failed (took longer than 250ms); raw output shown"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

// TestCompileRefuses: what policy check reports, with the character the
// error points at.
func TestCompileRefuses(t *testing.T) {
	for _, c := range []struct {
		jq     string
		offset int
		msg    string
	}{
		{`.state +`, 8, "jq syntax: unexpected EOF"},
		{`.state | foo(1)`, 9, "foo/1 is not a function a format may use"},
		{`{a: input}`, 4, "input reads input"},
		{`[inputs]`, 1, "inputs reads input"},
		{`$ENV.BOT_TOKEN`, 0, "$ENV reads the relay's environment"},
		{`env.HOME`, 0, "env reads the relay's environment"},
		{`{$ENV}`, 1, "$ENV reads the relay's environment"},
		{`. | debug`, 4, "debug writes to the relay's log"},
		{`stderr`, 0, "stderr writes to the relay's log"},
		{`input_filename`, 0, "input_filename reads input"},
		{`.a = 1`, 3, "assignment (=) is not allowed"},
		{`.a |= 1`, 3, "assignment (|=) is not allowed"},
		{`.a += 1`, 3, "assignment (+=) is not allowed"},
		{`setpath([1e8]; 1)`, 0, "setpath sizes an array from its argument"},
		{`pick(.[1e8])`, 0, "pick sizes an array from its argument"},
		{`del(.a)`, 0, "del changes paths"},
		{`transpose`, 0, "transpose pads every row"},
		{`jn(1e9; 1)`, 0, "jn loops"},
		{`halt_error`, 0, "halt_error stops the evaluator"},
		{`_match("a"; null; false)`, 0, "_match is internal to jq"},
		{`def _x: 1; _x`, 4, "names beginning with _ are reserved"},
		{`1 as $__relay_r | $__relay_r`, 5, "variable names beginning with $__relay are reserved"},
		{`import "m" as m; .`, 0, "modules (import, include) are not allowed"},
		{`test(.pattern)`, 0, "the regular expression of test must be a literal string"},
		{`[match("a"; .flags)]`, 1, "the flags of match must be a literal string"},
		{`split(.sep; null)`, 0, "the regular expression of split must be a literal string"},
		{`gsub("(?<x>a)"; "b"; .f)`, 0, "the flags of gsub must be a literal string"},
		{`include "m"; .`, -1, "modules (import, include) are not allowed"},
	} {
		t.Run(c.jq, func(t *testing.T) {
			_, err := Compile(Spec{JQ: c.jq})
			var ce *CompileError
			if !errors.As(err, &ce) {
				t.Fatalf("got %v, want a *CompileError", err)
			}
			if !strings.HasPrefix(ce.Msg, c.msg) || ce.Offset != c.offset {
				t.Errorf("got %q at %d, want %q… at %d", ce.Msg, ce.Offset, c.msg, c.offset)
			}
		})
	}
	if _, err := Compile(Spec{}); err == nil {
		t.Error("an empty format compiled; want a refusal")
	}
}

// TestGuardsKeepSemantics runs each expression both as the relay compiles
// it (checked and rewritten with guards) and as plain gojq, and requires
// the same outputs in the same order: the guards only ever refuse.
func TestGuardsKeepSemantics(t *testing.T) {
	inputs := []string{haState, `[3,1,2,[1],{"a":"x"}]`, `{"a":{"b":[1,2,{"c":"d"}]},"s":"a,b,c","n":4}`, `"text"`, `null`, `[]`}
	exprs := []string{
		`.`, `..`, `[paths]`, `to_entries`, `to_entries | map({key, value: (.value | tostring)}) | from_entries`, `[.[]?] | length`,
		`(1,2) + (10,20)`, `(1,2) * (3,4)`, `(10,20) - (1,2)`, `[(1,2) == (1,3)]`, `"ab" * (2,0,-1)`,
		`[1,2,3] - [2]`, `{a:1} * {a:{b:2}}`, `.[1:3]?`, `.["a"]?`, `. as $x | .[$x | keys[0]?]?`,
		`tostring`, `tojson`, `@csv "\([1, "a"])"`, `@json "v=\(.)"`, `@text`, `@base64`, `@sh "echo \("a b")"`,
		`[.[]? | numbers] | add`, `[.[]? | strings] | join("-")`, `flatten?`, `[.[]? | scalars] | sort`, `sort_by(type)?`, `group_by(type)?`, `unique?`, `min?`, `max?`,
		`.s? | split(",")?`, `.s? | test("b")?`, `[.s? | scan("[a-c]")?]`, `.s? | sub(","; ";")?`, `.s? | gsub(","; ";")?`, `.s? | explode? | implode`,
		`contains([1])?`, `inside([1,2,3,[1],{"a":"x"}])?`, `indices(1)?`, `index(",")?`, `rindex(",")?`,
		`def f(g): [g, g]; f(.n?)`, `def f($x): $x + x; f(1)`, `reduce (.[]? | numbers) as $x (0; . + $x)`,
		`[foreach (.[]? | numbers) as $x (0; . + $x; [$x, .])]`, `[limit(2; .[]?)]`, `first(.[]?)`, `[range(3)]`, `[range(0; 10; 3)]`,
		`label $out | 1, break $out, 2`, `try error("x") catch .`, `.a? // "none"`, `if type == "object" then keys else type end`,
		`. as [$a, $b] ?// {a: $a} | [$a, $b]`, `[.[]? | tostring | ascii_upcase]`, `getpath(["a","b"])?`,
		`[splits(", *")?]`, `.n? / 2`, `"a,b" / ","`, `.n? % 3`, `-(.n? // 1)`, `[.[]? | select(. == 1)]`, `any(.[]?; . == 1)`,
		`map_values(tostring)?`, `[walk(if type == "number" then . + 1 else . end)]`, `tostream`, `fromjson?`, `[.[]? | type] | unique`,
		`{(.s? // "k"): 1}`, `"\(1 + 2) and \("x" * 2)"`, `todate? // "n/a"`, `now | type`, `@html "<\(.)>"`, `ltrimstr("t")`, `[combinations(1)?]`,
	}
	for _, src := range exprs {
		ours, err := Compile(Spec{JQ: src})
		if err != nil {
			t.Errorf("%s: %v", src, err)
			continue
		}
		q, err := gojq.Parse(src)
		if err != nil {
			t.Fatalf("%s: %v", src, err)
		}
		plain, err := gojq.Compile(q)
		if err != nil {
			t.Fatalf("%s: %v", src, err)
		}
		for _, in := range inputs {
			d := &decoder{b: []byte(in)}
			v, _, err := d.next()
			if err != nil {
				t.Fatal(err)
			}
			got, want := collect(ours.code.Run(v)), collect(plain.Run(v))
			if got != want {
				t.Errorf("%s on %.40s:\ngot  %s\nwant %s", src, in, got, want)
			}
		}
	}
}

func collect(it gojq.Iter) string {
	var b strings.Builder
	for {
		v, ok := it.Next()
		if !ok {
			return b.String()
		}
		if err, ok := v.(error); ok {
			fmt.Fprintf(&b, "error(%v); ", err)
			continue
		}
		s, _ := gojq.Marshal(v)
		b.Write(s)
		b.WriteString("; ")
	}
}

// countingReader counts what Render reads.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// TestInputBounded: an output larger than the limit is refused after
// reading one byte more than the limit, never all of it.
func TestInputBounded(t *testing.T) {
	p := mustCompile(t, Spec{JQ: `.`})
	r := &countingReader{r: io.LimitReader(zeros{}, 1<<30)}
	_, err := p.Render(context.Background(), r, Limits{Input: 1 << 20})
	var e *Error
	if !errors.As(err, &e) || !e.Limit || e.Reason != "the output is over 1 MiB" {
		t.Errorf("got %v, want the output refused as over 1 MiB", err)
	}
	if r.n > 1<<20+1 {
		t.Errorf("read %d bytes, want at most the limit and one more", r.n)
	}
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = '0'
	}
	return len(p), nil
}
