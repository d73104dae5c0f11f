package render

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"math"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"
)

// FuzzDecode holds the decoder to encoding/json, the reference: whatever
// it accepts, encoding/json accepts with the same values (and whatever
// encoding/json accepts within the depth bound, it accepts too).
func FuzzDecode(f *testing.F) {
	for _, s := range []string{haState, haLights, `1 2 "a"[3]{}`, `"\ud83d\ude00 \ud800x \udc00"`, `-0`, `1e400`, `[1,]`, "\"\xff\"", `{"a":1,"a":2}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		d := &decoder{b: b}
		var ours []any
		var oerr error
		for {
			v, end, err := d.next()
			if err != nil {
				oerr = err
				break
			}
			if end {
				break
			}
			ours = append(ours, v)
		}
		jd := json.NewDecoder(bytes.NewReader(b))
		var ref []any
		var rerr error
		for {
			var v any
			if err := jd.Decode(&v); err != nil {
				if err != io.EOF {
					rerr = err
				}
				break
			}
			ref = append(ref, v)
		}
		if errors.Is(oerr, errTooDeep) {
			return // encoding/json allows 10000 levels; the relay 256
		}
		if (oerr == nil) != (rerr == nil) {
			// encoding/json reads "1x" as 1 then fails; both must fail.
			t.Fatalf("decoder error %v, encoding/json error %v, on %q", oerr, rerr, b)
		}
		if oerr == nil && !reflect.DeepEqual(ours, ref) && !sameNaNFree(ours, ref) {
			t.Fatalf("got %#v, encoding/json %#v, on %q", ours, ref, b)
		}
	})
}

// sameNaNFree compares values where -0 and 0 differ only by sign.
func sameNaNFree(a, b []any) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		fa, ok1 := a[i].(float64)
		fb, ok2 := b[i].(float64)
		if !ok1 || !ok2 || fa != fb || math.Signbit(fa) != math.Signbit(fb) {
			return false
		}
	}
	return true
}

// FuzzRender feeds hostile outputs and expressions to Render: it must
// never panic, and must end within its bounds with text or an *Error.
func FuzzRender(f *testing.F) {
	f.Add(`.state + " " + .attributes.unit_of_measurement`, []byte(haState), false)
	f.Add(`[.[] | {id: .entity_id, state}]`, []byte(haLights), true)
	f.Add(`. as $x | [$x, $x] | tojson`, []byte(`[[[[1]]]]`), false)
	f.Add(`.[] | tostring * 3`, []byte(`[1, "a", null]`), false)
	f.Add(`[splits(",")]`, []byte(`"a,b,c"`), true)
	f.Fuzz(func(t *testing.T, jq string, out []byte, table bool) {
		p, err := Compile(Spec{JQ: jq, Table: table})
		if err != nil {
			var ce *CompileError
			if !errors.As(err, &ce) {
				t.Fatalf("compile error %T %v, want a *CompileError", err, err)
			}
			return
		}
		text, err := p.Render(context.Background(), bytes.NewReader(out), Limits{Time: 50 * time.Millisecond, Alloc: 32 << 20, Output: 4096, Units: 1000})
		if err != nil {
			var e *Error
			if !errors.As(err, &e) || strings.ContainsAny(e.Reason, "\n\r") {
				t.Fatalf("got %T %q, want a one-line *Error", err, err)
			}
			return
		}
		if len(text) > 4096 || table && units(text) > 1000 {
			t.Fatalf("got %d bytes, %d units, want within the limits", len(text), units(text))
		}
	})
}

func TestFuzzSeedCorpusNotEmpty(t *testing.T) {
	for _, name := range []string{"FuzzDecode", "FuzzRender"} {
		ents, err := os.ReadDir("testdata/fuzz/" + name)
		if err != nil || len(ents) == 0 {
			t.Errorf("%s seed corpus: got %d files (%v), want some", name, len(ents), err)
		}
	}
}
