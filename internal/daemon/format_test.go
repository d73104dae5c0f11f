package daemon

import (
	"strings"
	"testing"

	"github.com/relaychat/relay/internal/fakebotapi"
)

const formatCmds = `  temp:
    argv: [/bin/echo, '{"state": "12.5", "unit": "°C"}']
    format: {jq: '.state + " " + .unit'}
    timeout: 10s
    sandbox: none
  tempfail:
    argv: [/bin/sh, -c, 'echo "{\"state\": \"12.5\"}"; exit 3']
    format: {jq: '.state'}
    timeout: 10s
    sandbox: none
  nojson:
    argv: [/bin/echo, "<b>not json</b>"]
    format: {jq: '.state'}
    timeout: 10s
    sandbox: none
  rows:
    argv: [/bin/echo, '[{"light": "hall", "state": "off"}, {"light": "kitchen", "state": "on"}]']
    format: {table: [light, state]}
    timeout: 10s
    sandbox: none
  htmly:
    argv: [/bin/echo, '{"name": "<b>kitchen</b> & <a href=x>"}']
    format: {jq: '.name'}
    timeout: 10s
    sandbox: none
  huge:
    argv: [/usr/bin/head, -c, "5000000", /dev/zero]
    format: {jq: '.'}
    timeout: 10s
    max_output: 8MiB
    sandbox: none
  longtext:
    argv: [/bin/sh, -c, 'printf "\"%05000d\"" 0']
    format: {jq: '. + . + .'}
    timeout: 10s
    sandbox: none
`

// TestFormats: a command's format shapes what the owner reads when it
// exited 0; a failed command shows its output as it is; a format that does
// not fit the output, or a bound it reaches, shows the raw output with a
// one-line note; rendered text is escaped like any output.
func TestFormats(t *testing.T) {
	h := newHarness(t, hopts{commands: formatCmds})
	h.login()

	h.say("/temp")
	m := h.expect("/temp · exit 0")
	if !strings.HasPrefix(m.Text, "12.5 °C\n") || strings.Contains(m.Text, `"state"`) {
		t.Errorf("got %q, want the formatted line only", m.Text)
	}
	h.say("/tempfail")
	m = h.expect("/tempfail · exit 3")
	if !strings.Contains(m.Text, `{"state": "12.5"}`) || strings.Contains(m.Text, "format") {
		t.Errorf("got %q, want a failed command's raw output, no note", m.Text)
	}
	h.say("/nojson")
	m = h.expect("/nojson · exit 0")
	if !strings.Contains(m.Text, "<b>not json</b>") || !strings.Contains(m.Text, "format failed (") || !strings.Contains(m.Text, "raw output shown") {
		t.Errorf("got %q, want the raw output and the note", m.Text)
	}
	h.say("/rows")
	m = h.expect("/rows · exit 0")
	if !strings.Contains(m.Text, "light    state\n") || !strings.Contains(m.Text, "kitchen  on") {
		t.Errorf("got %q, want a table", m.Text)
	}

	h.say("/htmly")
	m = h.expect("/htmly · exit 0")
	if !strings.HasPrefix(m.Text, "<b>kitchen</b> & <a href=x>\n") || len(m.Entities) > 1 {
		t.Errorf("got %q with entities %+v, want the rendered text as text", m.Text, m.Entities)
	}

	h.say("/huge")
	ctx := ctxT(t)
	doc, err := h.api.WaitDocument(ctx, func(d fakebotapi.Document) bool { return strings.HasPrefix(d.FileName, "huge-") })
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(doc.Caption, "format failed (the output is over") || doc.Size != 5000000 {
		t.Errorf("got a %d-byte document captioned %q, want the raw output with the input bound's note", doc.Size, doc.Caption)
	}
	h.say("/longtext")
	doc, err = h.api.WaitDocument(ctx, func(d fakebotapi.Document) bool { return strings.HasPrefix(d.FileName, "longtext-") })
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(doc.Caption, "formatted, 15000 bytes") || doc.Size != 15000 {
		t.Errorf("got a %d-byte document captioned %q, want the formatted text too long for a message", doc.Size, doc.Caption)
	}
}
