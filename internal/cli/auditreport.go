package cli

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/relaychat/relay/internal/atomicfile"
	"github.com/relaychat/relay/internal/audit"
)

func auditReport(env *Env, args []string) error {
	fs := newFlags("audit report")
	cfgPath := fs.String("config", "", "")
	dir := fs.String("dir", "", "")
	out := fs.String("o", "", "")
	since := fs.String("since", "", "")
	until := fs.String("until", "", "")
	keyArg := fs.String("key", "", "")
	pubArg := fs.String("public-key", "", "")
	archive := fs.String("archive", "", "")
	var cpFiles multiFlag
	fs.Var(&cpFiles, "checkpoints", "")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *out == "" {
		return usageErr("audit report: -o FILE is required (the page to write)")
	}
	now := time.Now()
	var o audit.ReportOptions
	var err error
	if *since != "" {
		if o.Since, err = parseWhen(*since, now); err != nil {
			return usageErr("audit report: --since: %v", err)
		}
	}
	if *until != "" {
		if o.Until, err = parseWhen(*until, now); err != nil {
			return usageErr("audit report: --until: %v", err)
		}
	}
	pub, err := readPublicKey(*pubArg, "audit report")
	if err != nil {
		return err
	}
	signed, legacy, err := readCheckpointArgs(env, nil, cpFiles, pub, *keyArg == "-", "audit report")
	if err != nil {
		return err
	}
	files := fs.Args()
	var w auditWhere
	if len(files) == 0 || (*keyArg == "" && (*cfgPath != "" || *dir == "")) {
		w, err = auditLocate(env, *cfgPath, *dir)
		if err != nil && len(files) == 0 {
			return err
		}
	}
	k0, err := auditKey(env, *keyArg, w, "audit report")
	if err != nil {
		return err
	}
	defer clear(k0)
	if len(files) == 0 {
		if files, err = audit.ListFiles(w.dir); err != nil {
			return err
		}
		o.Title = w.dir
	} else {
		o.Title = strings.Join(files, " ")
	}
	if *archive != "" {
		arch, err := audit.ListArchive(*archive)
		if err != nil {
			return err
		}
		files = append(arch, files...)
	}
	o.Verify = audit.VerifyOptions{Key: k0, Signed: signed, Checkpoints: legacy, PublicKey: pub}
	p := newProgress(env, "report")
	o.Progress = p.update
	var page bytes.Buffer
	res, err := audit.Report(files, o, &page)
	p.done()
	if err != nil {
		return err
	}
	if err := atomicfile.WriteFile(*out, page.Bytes(), 0o600); err != nil {
		return fmt.Errorf("audit report: write %s: %w", *out, err)
	}
	fmt.Fprintf(env.Stdout, "wrote %s: %d records, %d anomalies\n", *out, res.Records, res.Anomalies)
	// The page says what verify found; the exit status says it to scripts.
	var ve *audit.VerifyError
	if errors.As(res.Verify, &ve) {
		return withCode(ExitVerify, fmt.Errorf("audit report: the chain is BROKEN (%v); the page shows where", ve))
	}
	if k0 == nil {
		env.say(kindNote, "no audit key: the report checked links and hashes, not MACs (pass --key K0)")
	}
	return nil
}
