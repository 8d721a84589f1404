package logging

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Filter is a parsed Cloud Logging filter: a conjunction of comparisons
// "FIELD OP VALUE" joined by AND or whitespace. FIELD is resource.type,
// resource.labels.K, labels.K (K may be quoted), logName, severity,
// timestamp, textPayload, insertId or jsonPayload.K (a top-level field); OP is = != < <= > >= or : (substring,
// case-insensitive). OR, NOT and parentheses are not supported.
type Filter []term

type term struct {
	field, op, value string
}

var severities = map[string]int{
	"DEFAULT": 0, "DEBUG": 100, "INFO": 200, "NOTICE": 300, "WARNING": 400,
	"ERROR": 500, "CRITICAL": 600, "ALERT": 700, "EMERGENCY": 800,
}

// ParseFilter parses a filter; the empty filter matches everything.
func ParseFilter(s string) (Filter, error) {
	var f Filter
	p := &lexer{s: s}
	for {
		p.space()
		if p.done() {
			return f, nil
		}
		word := p.peekWord()
		switch word {
		case "AND":
			p.i += 3
			continue
		case "OR", "NOT":
			return nil, fmt.Errorf("filter: %s is not supported by gcpsim", word)
		}
		if p.s[p.i] == '(' || p.s[p.i] == '-' {
			return nil, fmt.Errorf("filter: %q at %d is not supported by gcpsim", p.s[p.i], p.i)
		}
		field, err := p.field()
		if err != nil {
			return nil, err
		}
		p.space()
		op := p.operator()
		if op == "" {
			return nil, fmt.Errorf("filter: expected an operator after %s", field)
		}
		p.space()
		val, err := p.value()
		if err != nil {
			return nil, err
		}
		if err := checkField(field, op, val); err != nil {
			return nil, err
		}
		f = append(f, term{field, op, val})
	}
}

// Match reports whether e satisfies every comparison.
func (f Filter) Match(e Entry) bool {
	for _, t := range f {
		if !t.match(e) {
			return false
		}
	}
	return true
}

func checkField(field, op, val string) error {
	switch {
	case field == "resource.type", field == "logName", field == "textPayload", field == "insertId",
		strings.HasPrefix(field, "resource.labels."), strings.HasPrefix(field, "labels."),
		strings.HasPrefix(field, "jsonPayload."):
		return nil
	case field == "severity":
		if _, ok := severityRank(val); !ok {
			return fmt.Errorf("filter: unknown severity %q", val)
		}
		return nil
	case field == "timestamp":
		if _, err := time.Parse(time.RFC3339Nano, val); err != nil {
			return fmt.Errorf("filter: timestamp %q: %w", val, err)
		}
		return nil
	}
	return fmt.Errorf("filter: field %q is not supported by gcpsim", field)
}

func severityRank(v string) (int, bool) {
	if n, err := strconv.Atoi(v); err == nil {
		return n, true
	}
	n, ok := severities[strings.ToUpper(v)]
	return n, ok
}

func (t term) match(e Entry) bool {
	var got string
	var present bool
	switch {
	case t.field == "severity":
		a, _ := severityRank(e.Severity)
		b, _ := severityRank(t.value)
		return compare(a-b, t.op)
	case t.field == "timestamp":
		b, _ := time.Parse(time.RFC3339Nano, t.value)
		return compare(e.Time.Compare(b), t.op)
	case t.field == "resource.type":
		got, present = e.ResourceType, true
	case t.field == "logName":
		got, present = e.LogName, true
	case t.field == "textPayload":
		got, present = e.Text, true
	case t.field == "insertId":
		got, present = e.InsertID, true
	case strings.HasPrefix(t.field, "resource.labels."):
		got, present = e.Resource[strings.TrimPrefix(t.field, "resource.labels.")]
	case strings.HasPrefix(t.field, "labels."):
		got, present = e.Labels[strings.TrimPrefix(t.field, "labels.")]
	case strings.HasPrefix(t.field, "jsonPayload.") && e.JSON != nil:
		// Top-level fields only; numbers compare as their text.
		if v, ok := e.JSON.GetFields()[strings.TrimPrefix(t.field, "jsonPayload.")]; ok {
			got, present = fmt.Sprint(v.AsInterface()), true
		}
	}
	if !present {
		return t.op == "!="
	}
	if t.op == ":" {
		return strings.Contains(strings.ToLower(got), strings.ToLower(t.value))
	}
	return compare(strings.Compare(got, t.value), t.op)
}

func compare(c int, op string) bool {
	switch op {
	case "=":
		return c == 0
	case "!=":
		return c != 0
	case "<":
		return c < 0
	case "<=":
		return c <= 0
	case ">":
		return c > 0
	case ">=":
		return c >= 0
	}
	return false
}

type lexer struct {
	s string
	i int
}

func (l *lexer) done() bool { return l.i >= len(l.s) }

func (l *lexer) space() {
	for l.i < len(l.s) && strings.ContainsRune(" \t\r\n", rune(l.s[l.i])) {
		l.i++
	}
}

func (l *lexer) peekWord() string {
	j := l.i
	for j < len(l.s) && l.s[j] >= 'A' && l.s[j] <= 'Z' {
		j++
	}
	if j < len(l.s) && !strings.ContainsRune(" \t\r\n(", rune(l.s[j])) {
		return ""
	}
	return l.s[l.i:j]
}

// field reads a dotted path whose parts may be quoted.
func (l *lexer) field() (string, error) {
	var parts []string
	for {
		if l.done() {
			return "", fmt.Errorf("filter: unexpected end in field name")
		}
		if l.s[l.i] == '"' {
			v, err := l.quoted()
			if err != nil {
				return "", err
			}
			parts = append(parts, v)
		} else {
			j := l.i
			for j < len(l.s) && (isIdent(l.s[j])) {
				j++
			}
			if j == l.i {
				return "", fmt.Errorf("filter: expected a field name at %d", l.i)
			}
			parts = append(parts, l.s[l.i:j])
			l.i = j
		}
		if l.i < len(l.s) && l.s[l.i] == '.' {
			l.i++
			continue
		}
		f := strings.Join(parts, ".")
		f = strings.Replace(f, "log_name", "logName", 1)
		return f, nil
	}
}

func isIdent(c byte) bool {
	return c == '_' || c == '/' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

func (l *lexer) operator() string {
	for _, op := range []string{">=", "<=", "!=", "=", ">", "<", ":"} {
		if strings.HasPrefix(l.s[l.i:], op) {
			l.i += len(op)
			return op
		}
	}
	return ""
}

func (l *lexer) value() (string, error) {
	if l.done() {
		return "", fmt.Errorf("filter: expected a value")
	}
	if l.s[l.i] == '"' {
		return l.quoted()
	}
	j := l.i
	for j < len(l.s) && !strings.ContainsRune(" \t\r\n)", rune(l.s[j])) {
		j++
	}
	v := l.s[l.i:j]
	l.i = j
	return v, nil
}

func (l *lexer) quoted() (string, error) {
	var b strings.Builder
	for j := l.i + 1; j < len(l.s); j++ {
		switch l.s[j] {
		case '\\':
			if j+1 < len(l.s) {
				j++
				b.WriteByte(l.s[j])
			}
		case '"':
			l.i = j + 1
			return b.String(), nil
		default:
			b.WriteByte(l.s[j])
		}
	}
	return "", fmt.Errorf("filter: unterminated string")
}
