package render

import (
	"strings"
	"testing"
)

const haLights = `[
 {"entity_id":"light.kitchen","state":"on","attributes":{"friendly_name":"Kitchen","brightness":255}},
 {"entity_id":"light.living_room","state":"off","attributes":{"friendly_name":"Living room"}},
 {"entity_id":"sensor.outdoor_temperature","state":"12.5","attributes":{"friendly_name":"Outdoor"}},
 {"entity_id":"light.hall","state":"unavailable","attributes":{"friendly_name":"Hall"}}]`

func TestTable(t *testing.T) {
	for _, c := range []struct {
		name string
		spec Spec
		in   string
		want string
	}{
		{"columns named, rows from jq", Spec{
			JQ:    `[.[] | select(.entity_id | startswith("light.")) | {light: .attributes.friendly_name, state, brightness: .attributes.brightness}]`,
			Table: true, Columns: []string{"light", "state", "brightness"},
		}, haLights, "" +
			"light        state        brightness\n" +
			"────────────────────────────────────\n" +
			"Kitchen      on                  255\n" +
			"Living room  off\n" +
			"Hall         unavailable"},
		{"every key, sorted, when no columns are named", Spec{JQ: `.[] | {id: .entity_id, s: .state}`, Table: true}, haLights, "" +
			"id                        s\n" +
			"─────────────────────────────────────\n" +
			"light.kitchen             on\n" +
			"light.living_room         off\n" +
			"sensor.outdoor_temperat…  12.5\n" +
			"light.hall                unavailable"},
		{"array rows by position, no header", Spec{Table: true}, `[["a", 1], ["bb", 22, true]]`, "" +
			"a    1\n" +
			"bb  22  true"},
		{"scalar rows", Spec{JQ: `.[] | .state`, Table: true}, haLights, "on\noff\n12.5\nunavailable"},
		{"no rows", Spec{JQ: `.[] | select(false)`, Table: true}, haLights, "(no rows)"},
		{"a cell is one line, clipped", Spec{Table: true, Columns: []string{"v"}},
			`[{"v":"line one\nline two\u202e and a very long tail"}]`, "" +
				"v\n" +
				"────────────────────────\n" +
				"line one line two  and …"},
		{"nested values as compact JSON", Spec{Table: true, Columns: []string{"k", "v"}}, `[{"k":"a","v":{"x":[1,2]}}]`, "" +
			"k  v\n" +
			"──────────────\n" +
			`a  {"x":[1,2]}`},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := render(t, c.spec, c.in, Limits{})
			if err != nil {
				t.Fatal(err)
			}
			if got != c.want {
				t.Errorf("got\n%s\nwant\n%s", got, c.want)
			}
		})
	}
}

// TestTableFitsItsBudget: a table never exceeds its budget; it keeps its
// header and as many rows as fit, then says how many it left out.
func TestTableFitsItsBudget(t *testing.T) {
	var rows []string
	for i := range 500 {
		rows = append(rows, `{"name":"sensor `+strings.Repeat("x", i%30)+`","state":"`+strings.Repeat("9", i%7)+`"}`)
	}
	in := "[" + strings.Join(rows, ",") + "]"
	for _, budget := range []int{1, 40, 100, 1000, 3900} {
		got, err := render(t, Spec{Table: true, Columns: []string{"name", "state"}}, in, Limits{Units: budget})
		if err != nil {
			t.Fatal(err)
		}
		if budget >= 100 && units(got) > budget {
			t.Errorf("budget %d: got %d units", budget, units(got))
		}
		lines := strings.Split(got, "\n")
		if budget >= 100 && (!strings.HasPrefix(lines[0], "name") || !strings.HasSuffix(got, " more rows")) {
			t.Errorf("budget %d: got\n%s\nwant the header first and the rows left out last", budget, got)
		}
	}
}
