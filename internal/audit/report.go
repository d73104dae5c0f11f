package audit

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"html/template"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// ReportOptions adjust Report.
type ReportOptions struct {
	// Since and Until bound the records shown (inclusive); zero means
	// unbounded. Verification always covers the whole log.
	Since, Until time.Time
	// Title names the log in the page (its directory, say).
	Title string
	// Verify is what verification to run first: its Key, Signed
	// checkpoints and PublicKey are used; its Progress is ignored.
	Verify VerifyOptions
	// Now is the clock for "generated at"; nil means time.Now.
	Now func() time.Time
	// Progress, when set, is called now and then with the bytes read so
	// far and in all, across both passes (verify, then the scan).
	Progress func(done, total int64)
}

// The series the timeline plots, in order.
var reportSeries = []struct{ Name, Label, Color string }{
	{"commands", "commands", "#2f6fdf"},
	{"denials", "denials", "#d98c00"},
	{"logins", "logins", "#1f9d55"},
	{"lockouts", "lockouts", "#8e44ad"},
	{"failures", "failures", "#d0312d"},
}

// seriesOf says which series a record counts in: commands are requests,
// denials any denied outcome, logins successful logins (with TOTP or a
// recovery code), lockouts logins refused by the limiter, and failures
// failed commands, logins and step-ups.
func seriesOf(e *Entry) (out [5]bool) {
	out[0] = e.Type == KindRequest
	out[1] = e.Outcome == OutcomeDenied
	out[2] = e.Type == KindLogin && (e.Outcome == OutcomeLoginOK || e.Outcome == OutcomeRecoveryUsed)
	out[3] = e.Type == "lockout" || (e.Type == KindLogin && e.Outcome == OutcomeLockout)
	switch e.Outcome {
	case "failed", "login_failed", "stepup_failed", "auth_state_error":
		out[4] = true
	}
	out[4] = out[4] || e.TimedOut
	return out
}

// Burst thresholds: records of one kind (stale or unauthorized) no more
// than burstGap apart form a burst, reported when it stands for at least
// burstMin updates (counting those each record says it stands for).
const (
	burstGap = 10 * time.Minute
	burstMin = 5
	// maxAnomalies and maxRefs bound the page: a log with a million
	// unauthorized updates makes a page, not a gigabyte.
	maxAnomalies = 500
	maxRefs      = 50
	maxDays      = 3660
	maxRawShown  = 4096
)

type reportAnomaly struct {
	Kind   string
	Title  string
	Detail string
	When   string
	Refs   []reportRef
	More   int // refs left out
}

type reportRef struct {
	ID    string
	Label string
}

type reportRecord struct {
	file    string
	lineNo  int
	ID      string
	Seq     string
	Time    string
	Type    string
	Outcome string
	Command string
	Summary string
	Raw     string
	Bad     bool
}

type reportDay struct {
	Date   string
	Counts [5]int
}

type reportPoint struct {
	X, Y   float64
	Series string
	Date   string
	N      int
}

type reportLine struct {
	Series, Label, Color, Points string
	Total                        int
}

type reportCommand struct {
	Name             string
	Requests, Denied int
	Width            float64
}

type reportPage struct {
	Title        string
	Generated    string
	Range        string
	Verify       string
	VerifyOK     bool
	Records      int
	Days         []reportDay
	Lines        []reportLine
	Points       []reportPoint
	Ticks        []reportTick
	YMax         int
	Width        float64
	Height       float64
	PlotLeft     float64
	PlotBottom   float64
	Commands     []reportCommand
	Anomalies    []reportAnomaly
	AnomaliesCut int
	Shown        []reportRecord
}

type reportTick struct {
	X     float64
	Label string
}

//go:embed report.html.tmpl
var reportTemplateText string

// reportTemplate is parsed at its first use, not at every start of the
// binary: only relay audit report needs it.
var reportTemplate = sync.OnceValue(func() *template.Template {
	return template.Must(template.New("report").Parse(reportTemplateText))
})

// Report writes a self-contained HTML page about the log in files: what
// verify says, a timeline of commands, denials, logins, lockouts and
// failures per day, the busiest commands, and every anomaly (verify's
// finding, recovery records, unreadable lines, lockouts, bursts of stale or
// unauthorized updates), each linking to its records, which are in the
// page. The page fetches nothing: no script, no external style, font or
// image, and a Content-Security-Policy that forbids them. Everything from
// the log is escaped (html/template): it is attacker-influenced text.
//
// The result carries what verify found; the error is for a page that could
// not be made.
func Report(files []string, o ReportOptions, w io.Writer) (ReportResult, error) {
	var res ReportResult
	if len(files) == 0 {
		return res, errors.New("audit report: no audit files (pass the files, or check audit.dir)")
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	files = sortFiles(files)
	var total int64
	for _, p := range files {
		if fi, err := os.Stat(p); err == nil {
			total += fi.Size()
		}
	}
	vo := o.Verify
	vo.Progress = nil
	if o.Progress != nil {
		vo.Progress = func(done, _ int64) { o.Progress(done, 2*total) }
	}
	page := reportPage{Title: o.Title, Generated: o.Now().UTC().Format(time.RFC3339)}
	sum, verr := VerifyFiles(files, vo)
	res.Summary, res.Verify = sum, verr
	var ve *VerifyError
	switch {
	case errors.As(verr, &ve):
		page.Verify = "BROKEN: " + ve.Error()
	case verr != nil:
		page.Verify = "could not verify: " + verr.Error()
	default:
		page.Verify, page.VerifyOK = sum.String(), sum.MACsVerified || sum.Signed > 0
	}

	r := newReporter(&o, ve)
	if verr != nil && ve == nil {
		r.add(reportAnomaly{Kind: "verify", Title: "verification failed", Detail: verr.Error()})
	}
	q := newQuery(&Filter{})
	var done int64
	for _, path := range files {
		err := scanShowN(path, q, func(l Line, lineNo int, raw []byte) error {
			done += int64(len(raw))
			if o.Progress != nil && done-r.lastProgress >= progressStep {
				r.lastProgress = done
				o.Progress(total+min(done, total), 2*total)
			}
			r.line(l, lineNo, raw)
			return nil
		})
		if err != nil {
			return res, fmt.Errorf("audit report: %w", err)
		}
	}
	r.finish(&page)
	if o.Progress != nil {
		o.Progress(2*total, 2*total)
	}
	res.Records, res.Anomalies = page.Records, len(page.Anomalies)+page.AnomaliesCut
	if err := reportTemplate().Execute(w, &page); err != nil {
		return res, fmt.Errorf("audit report: %w", err)
	}
	return res, nil
}

// ReportResult is what Report found.
type ReportResult struct {
	// Summary and Verify are VerifyFiles' answer for the whole log.
	Summary Summary
	Verify  error
	// Records is how many records the page covers; Anomalies how many
	// it lists (or would, past its limit).
	Records, Anomalies int
}

// reporter accumulates the page while the log streams past.
type reporter struct {
	o            *ReportOptions
	ve           *VerifyError
	veFound      bool
	days         map[string]*[5]int
	first, last  time.Time
	commands     map[string]*reportCommand
	anomalies    []reportAnomaly
	cut          int
	want         map[string]bool // record IDs to show
	shown        map[string]reportRecord
	order        []string
	bursts       map[string]*burst
	records      int
	lastProgress int64
}

type burst struct {
	typ         string
	start, last time.Time
	weight      int
	more        int
	recs        []reportRecord
}

func newReporter(o *ReportOptions, ve *VerifyError) *reporter {
	return &reporter{o: o, ve: ve, days: map[string]*[5]int{}, commands: map[string]*reportCommand{},
		want: map[string]bool{}, shown: map[string]reportRecord{}, bursts: map[string]*burst{}}
}

func recordID(file string, lineNo int) string {
	return "r-" + strings.NewReplacer(".", "-").Replace(file) + "-" + strconv.Itoa(lineNo)
}

func (r *reporter) inRange(t time.Time) bool {
	return (r.o.Since.IsZero() || !t.Before(r.o.Since)) && (r.o.Until.IsZero() || !t.After(r.o.Until))
}

func (r *reporter) add(a reportAnomaly) {
	if len(r.anomalies) >= maxAnomalies {
		r.cut++
		return
	}
	r.anomalies = append(r.anomalies, a)
}

// keep puts a record in the page and returns its reference.
func (r *reporter) keep(rec reportRecord) reportRef {
	if _, ok := r.shown[rec.ID]; !ok {
		r.shown[rec.ID] = rec
		r.order = append(r.order, rec.ID)
	}
	label := "line " + rec.ID[strings.LastIndexByte(rec.ID, '-')+1:]
	if rec.Seq != "" {
		label = "seq " + rec.Seq
	}
	return reportRef{ID: rec.ID, Label: label}
}

func toRecord(l Line, lineNo int, raw []byte) reportRecord {
	rec := reportRecord{file: l.File, lineNo: lineNo, ID: recordID(l.File, lineNo), Type: string(l.Type), Outcome: string(l.Outcome), Command: l.Command, Summary: l.String()}
	if l.Type == kindUnreadable {
		rec.Bad = true
		rec.Type = "unreadable"
		rec.Summary = l.File + " line " + strconv.Itoa(lineNo)
	} else {
		rec.Seq = strconv.FormatUint(l.Seq, 10)
		rec.Time = l.Time.UTC().Format("2006-01-02 15:04:05Z")
	}
	raw = bytes.TrimSuffix(raw, newline)
	if len(raw) > maxRawShown {
		raw = append(raw[:maxRawShown:maxRawShown], "…"...)
	}
	rec.Raw = strings.ToValidUTF8(string(raw), string(utf8.RuneError))
	return rec
}

func (r *reporter) line(l Line, lineNo int, raw []byte) {
	isVE := r.ve != nil && r.ve.File == l.File && r.ve.Line == lineNo
	if l.Type == kindUnreadable {
		rec := toRecord(l, lineNo, raw)
		if isVE {
			r.veAnomaly(rec)
		} else {
			r.add(reportAnomaly{Kind: "unreadable", Title: "unreadable line", Detail: l.File + " line " + strconv.Itoa(lineNo) + " is not a record (torn or damaged)", Refs: []reportRef{r.keep(rec)}})
		}
		return
	}
	if isVE {
		r.veAnomaly(toRecord(l, lineNo, raw))
	}
	if !r.inRange(l.Time) {
		return
	}
	r.records++
	if r.first.IsZero() {
		r.first = l.Time
	}
	r.last = l.Time
	day := l.Time.UTC().Format("2006-01-02")
	c := r.days[day]
	if c == nil {
		c = new([5]int)
		r.days[day] = c
	}
	for i, in := range seriesOf(&l.Entry) {
		if in {
			c[i]++
		}
	}
	if l.Type == KindRequest && l.Command != "" {
		cmd := r.commands[l.Command]
		if cmd == nil {
			if len(r.commands) >= 10000 {
				return
			}
			cmd = &reportCommand{Name: l.Command}
			r.commands[l.Command] = cmd
		}
		cmd.Requests++
		if l.Outcome == OutcomeDenied {
			cmd.Denied++
		}
	}
	when := l.Time.UTC().Format("2006-01-02 15:04:05Z")
	switch {
	case l.Type == KindRecovery:
		d := l.Reason
		if l.TornBytes > 0 {
			d = fmt.Sprintf("%s; %d torn bytes recovered (sha256 %.16s…)", d, l.TornBytes, l.TornSHA256)
		}
		r.add(reportAnomaly{Kind: "recovery", Title: "recovery from a failed or torn write", Detail: d, When: when, Refs: []reportRef{r.keep(toRecord(l, lineNo, raw))}})
	case l.Type == "lockout" || (l.Type == KindLogin && l.Outcome == OutcomeLockout):
		r.add(reportAnomaly{Kind: "lockout", Title: "login lockout", Detail: l.Reason, When: when, Refs: []reportRef{r.keep(toRecord(l, lineNo, raw))}})
	case l.Type == KindStale || l.Type == KindUnauthorized:
		r.burstLine(l, toRecord(l, lineNo, raw))
	}
}

func (r *reporter) veAnomaly(rec reportRecord) {
	if r.veFound {
		return
	}
	r.veFound = true
	r.add(reportAnomaly{Kind: "verify", Title: "the chain is broken here", Detail: r.ve.Error(), When: rec.Time, Refs: []reportRef{r.keep(rec)}})
}

func (r *reporter) burstLine(l Line, rec reportRecord) {
	b := r.bursts[string(l.Type)]
	if b != nil && l.Time.Sub(b.last) > burstGap {
		r.closeBurst(b)
		b = nil
	}
	if b == nil {
		b = &burst{typ: string(l.Type), start: l.Time}
		r.bursts[string(l.Type)] = b
	}
	b.last = l.Time
	b.weight += 1 + l.Count
	if len(b.recs) < maxRefs {
		b.recs = append(b.recs, rec)
	} else {
		b.more++
	}
}

func (r *reporter) closeBurst(b *burst) {
	delete(r.bursts, b.typ)
	if b.weight < burstMin {
		return
	}
	a := reportAnomaly{Kind: b.typ, Title: b.typ + " updates in a burst", When: b.start.UTC().Format("2006-01-02 15:04:05Z"),
		Detail: fmt.Sprintf("%d %s updates between %s and %s", b.weight, b.typ, b.start.UTC().Format("2006-01-02 15:04:05Z"), b.last.UTC().Format("15:04:05Z")), More: b.more}
	for _, rec := range b.recs {
		a.Refs = append(a.Refs, r.keep(rec))
	}
	r.add(a)
}

func (r *reporter) finish(p *reportPage) {
	for _, typ := range []string{"stale", "unauthorized"} {
		if b := r.bursts[typ]; b != nil {
			r.closeBurst(b)
		}
	}
	if r.ve != nil && !r.veFound {
		r.add(reportAnomaly{Kind: "verify", Title: "the chain is broken", Detail: r.ve.Error()})
	}
	p.Records = r.records
	// The chain's break first, then in time order (bursts are closed
	// after the records that follow them).
	sort.SliceStable(r.anomalies, func(i, j int) bool {
		a, b := r.anomalies[i], r.anomalies[j]
		if (a.Kind == "verify") != (b.Kind == "verify") {
			return a.Kind == "verify"
		}
		return a.When < b.When
	})
	p.Anomalies, p.AnomaliesCut = r.anomalies, r.cut
	for _, id := range r.order {
		p.Shown = append(p.Shown, r.shown[id])
	}
	sort.Slice(p.Shown, func(i, j int) bool {
		a, b := p.Shown[i], p.Shown[j]
		if an, bn := fileOrder(a.file), fileOrder(b.file); an != bn {
			return an < bn
		}
		return a.lineNo < b.lineNo
	})

	// Days: every day from the first to the last, empty ones too, so the
	// timeline's x axis is time.
	from, to := r.first, r.last
	if !r.o.Since.IsZero() && (from.IsZero() || r.o.Since.Before(from)) {
		from = r.o.Since
	}
	if !r.o.Until.IsZero() && r.o.Until.After(to) && !r.o.Until.After(r.o.Now()) {
		to = r.o.Until
	}
	if !from.IsZero() {
		d0 := time.Date(from.UTC().Year(), from.UTC().Month(), from.UTC().Day(), 0, 0, 0, 0, time.UTC)
		d1 := time.Date(to.UTC().Year(), to.UTC().Month(), to.UTC().Day(), 0, 0, 0, 0, time.UTC)
		if days := int(d1.Sub(d0)/(24*time.Hour)) + 1; days > maxDays {
			d0 = d1.AddDate(0, 0, -(maxDays - 1))
		}
		for d := d0; !d.After(d1); d = d.AddDate(0, 0, 1) {
			key := d.Format("2006-01-02")
			day := reportDay{Date: key}
			if c := r.days[key]; c != nil {
				day.Counts = *c
			}
			p.Days = append(p.Days, day)
		}
	}
	if p.Range = "no records"; len(p.Days) > 0 {
		p.Range = p.Days[0].Date + " to " + p.Days[len(p.Days)-1].Date
	}
	r.plot(p)

	var cmds []reportCommand
	for _, c := range r.commands {
		cmds = append(cmds, *c)
	}
	sort.Slice(cmds, func(i, j int) bool {
		if cmds[i].Requests != cmds[j].Requests {
			return cmds[i].Requests > cmds[j].Requests
		}
		return cmds[i].Name < cmds[j].Name
	})
	if len(cmds) > 20 {
		cmds = cmds[:20]
	}
	for i := range cmds {
		cmds[i].Width = 100 * float64(cmds[i].Requests) / float64(cmds[0].Requests)
	}
	p.Commands = cmds
}

func fileOrder(name string) int {
	n, _ := fileNumber(name)
	return n
}

// plot lays the timeline out: one polyline per series, a point per day.
func (r *reporter) plot(p *reportPage) {
	p.Width, p.Height, p.PlotLeft, p.PlotBottom = 960, 280, 48, 250
	const top, right = 16.0, 48.0
	ymax := 1
	for _, d := range p.Days {
		for _, n := range d.Counts {
			ymax = max(ymax, n)
		}
	}
	p.YMax = ymax
	n := len(p.Days)
	x := func(i int) float64 {
		if n == 1 {
			return p.PlotLeft + (p.Width-p.PlotLeft-right)/2
		}
		return p.PlotLeft + float64(i)*(p.Width-p.PlotLeft-right)/float64(n-1)
	}
	y := func(v int) float64 { return p.PlotBottom - float64(v)*(p.PlotBottom-top)/float64(ymax) }
	for s, ser := range reportSeries {
		var pts strings.Builder
		total := 0
		for i, d := range p.Days {
			fmt.Fprintf(&pts, "%.1f,%.1f ", x(i), y(d.Counts[s]))
			total += d.Counts[s]
			p.Points = append(p.Points, reportPoint{X: x(i), Y: y(d.Counts[s]), Series: ser.Name, Date: d.Date, N: d.Counts[s]})
		}
		p.Lines = append(p.Lines, reportLine{Series: ser.Name, Label: ser.Label, Color: ser.Color, Points: strings.TrimSpace(pts.String()), Total: total})
	}
	step := max(1, n/8)
	for i := 0; i < n; i += step {
		p.Ticks = append(p.Ticks, reportTick{X: x(i), Label: p.Days[i].Date})
	}
}
