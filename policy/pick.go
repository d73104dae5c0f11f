package policy

import "strconv"

// Parameter pickers: a command sent without a parameter that has a short
// list of values answers with a button per value. These bound what a
// keyboard may hold, so that it fits a phone and Telegram's limits.
const (
	// MaxChoices is the most buttons one picker shows: an enum with more
	// values gets no picker, and a parameter may declare at most this
	// many choices.
	MaxChoices = 24
	// MaxIntChoices is the widest int range offered as buttons without
	// declared choices (min..max with at most this many values).
	MaxIntChoices = 12
	// MaxLabel bounds a choice's label, in characters.
	MaxLabel = 32
)

// Next says what comes after words, the arguments given so far in the
// form Bind takes them (split by SplitArgs, or picked; for a reauth
// command without its code, as the caller strips it for Bind). It is
// pure: it runs nothing and keeps nothing, so a picker is a loop of
//
//	p, choices, complete, err := cmd.Next(words)
//	// complete: inv, err := cmd.Bind(words), exactly as if typed
//	// else: offer choices; a press appends choices[i].Value to words
//
// and the final press binds exactly what typing the same words would.
//
//   - err is set, and nothing else, when a word is refused: the
//     *ArgError Bind gives that word (checked before any count, so a
//     wrong word is never followed by buttons), or, for too many words,
//     the *UsageError of Bind(words);
//   - complete is true when every required parameter has a word: the
//     caller binds (optional parameters left out take their defaults,
//     as when typed);
//   - otherwise p is the next parameter and choices are its buttons in
//     the policy's order; when p has none to offer, err is the
//     *UsageError of Bind(words) ("too few arguments"), with p still set.
//
// A parameter offers its declared choices; else an enum of at most
// MaxChoices values offers them all, and an int with at most
// MaxIntChoices values its range. Labels default to the value.
func (c *Command) Next(words []string) (p *Param, choices []Choice, complete bool, err error) {
	t, err := c.template()
	if err != nil {
		return nil, nil, false, err
	}
	required := 0
	for _, q := range c.Params {
		if !q.Optional {
			required++
		}
	}
	if len(words) > len(c.Params) {
		return nil, nil, false, c.usageError(len(words), required)
	}
	for i, w := range words {
		if _, aerr := bindValue(c.Params[i], t, i, w); aerr != nil {
			return nil, nil, false, aerr
		}
	}
	if len(words) >= required {
		return nil, nil, true, nil
	}
	p = c.Params[len(words)]
	if choices = p.picks(); len(choices) == 0 {
		return p, nil, false, c.usageError(len(words), required)
	}
	return p, choices, false, nil
}

// picks are the buttons a picker offers for p, or nil for none.
func (p *Param) picks() []Choice {
	var out []Choice
	switch {
	case len(p.Choices) > 0:
		out = make([]Choice, len(p.Choices))
		copy(out, p.Choices)
	case p.Type == TypeEnum && len(p.Values) <= MaxChoices:
		for _, v := range p.Values {
			out = append(out, Choice{Value: v})
		}
	case p.Type == TypeInt && p.Max >= p.Min && p.Max-p.Min >= 0 && p.Max-p.Min < MaxIntChoices: // >= 0: no overflow
		for n := p.Min; n <= p.Max; n++ {
			out = append(out, Choice{Value: strconv.FormatInt(n, 10)})
		}
	}
	for i := range out {
		if out[i].Label == "" {
			out[i].Label = out[i].Value
		}
	}
	return out
}
