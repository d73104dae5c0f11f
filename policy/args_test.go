package policy

import (
	"strings"
	"testing"
)

func TestSplitArgs(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   string
		want []string // nil with ok false: an error
		ok   bool
	}{
		{"empty", "", nil, true},
		{"spaces", "   ", nil, true},
		{"words", "kitchen on", []string{"kitchen", "on"}, true},
		{"tabs and runs", "a\t\tb   c", []string{"a", "b", "c"}, true},
		{"quotes group", `"living room" on`, []string{"living room", "on"}, true},
		{"empty quotes", `"" x`, []string{"", "x"}, true},
		{"touching quotes", `a"b c"d`, []string{"ab cd"}, true},
		{"escaped quote", `"say \"hi\""`, []string{`say "hi"`}, true},
		{"escaped backslash", `"a\\b"`, []string{`a\b`}, true},
		{"other backslash literal", `"a\nb"`, []string{`a\nb`}, true},
		{"backslash outside quotes", `a\"b"`, []string{`a\b`}, true},
		{"phone quotes", "“living room” on", []string{"living room", "on"}, true},
		{"unbalanced", `"open`, nil, false},
		{"single quotes literal", `'a b'`, []string{"'a", "b'"}, true},
		{"emoji", "😀 👨‍👩‍👧", []string{"😀", "👨‍👩‍👧"}, true},
		{"nbsp is not a separator", "a\u00a0b", []string{"a\u00a0b"}, true},
		{"NUL", "a\x00b", nil, false},
		{"LF", "a\nb", nil, false},
		{"CR", "a\rb", nil, false},
		{"ESC", "\x1b[2J", nil, false},
		{"DEL", "a\x7f", nil, false},
		{"C1", "a\u0085", nil, false},
		{"tab in quotes", "\"a\tb\"", nil, false},
		{"RLO", "a\u202eb", nil, false},
		{"isolate", "\u2066a", nil, false},
		{"line separator", "a\u2028b", nil, false},
		{"invalid UTF-8", "a\xffb", nil, false},
		{"at the cap", strings.Repeat("a", MaxArgBytes), []string{strings.Repeat("a", MaxArgBytes)}, true},
		{"over the cap", strings.Repeat("a", MaxArgBytes+1), nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := SplitArgs(tc.in)
			if (err == nil) != tc.ok {
				t.Fatalf("got %q, %v; want ok %v", got, err, tc.ok)
			}
			if err != nil {
				if strings.Contains(err.Error(), tc.in) && tc.in != "" {
					t.Errorf("error echoes the input: %v", err)
				}
				return
			}
			if strings.Join(got, "\x00") != strings.Join(tc.want, "\x00") || len(got) != len(tc.want) {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}
