package tail

import "strings"

// A binlog QueryEvent carries a statement as text. In ROW format that is
// DDL (and BEGIN/COMMIT); but a session may log its DML as a statement
// (SET SESSION binlog_format = 'STATEMENT', or MIXED, where the server picks
// statements for whatever it deems safe), and TRUNCATE TABLE is always
// logged as a statement. Such changes have no row images: the tail cannot
// carry them, and must not let them pass as "DDL".
//
// classifyStatement reads just enough of the statement to tell what it does
// to the followed table. It is deliberately conservative: it never executes
// or resolves anything, and where a DML statement might change the table it
// says so, preferring a tail that stops for nothing over one that skips a
// change:
//
//   - INSERT and REPLACE change the table named after INTO (or right after
//     the verb and its modifiers); LOAD DATA|XML the table after INTO TABLE.
//     A mention in their SELECT part is a read, not a change.
//   - UPDATE and DELETE change one of the tables they list before SET (for
//     UPDATE) or before WHERE, ORDER BY, LIMIT or RETURNING (for DELETE), so
//     any mention there counts, join conditions included: the multi-table
//     forms do not say which table they change without resolving aliases.
//   - WITH … followed by a DML verb (MySQL 8) counts when the table is
//     mentioned anywhere.
//   - TRUNCATE [TABLE] of the table is a truncate (carried as op "t").
//   - ALTER TABLE … TRUNCATE|DROP|EXCHANGE PARTITION that mentions the table
//     removes or swaps rows without row events.
//   - Any other ALTER, CREATE, DROP or RENAME that mentions the table may
//     change its shape (ddl.go); CREATE and DROP INDEX do not. An ALTER that
//     only adds an index counts too: telling it apart would need a parser,
//     and it costs a stop only where the binlog names no columns.
//
// A name matches when it is the table qualified by the source database, or
// the table unqualified while the statement's default database (the
// event's schema) is the source database, or when there is no default
// database. Names compare case-insensitively, so a server with
// case-sensitive names may stop for a same-named table of another case.
// Double-quoted text is matched like a name (under ANSI_QUOTES it is one).
// Executable comments (/*! … */, /*M! … */) are read as statement text,
// others are skipped. Changes made by triggers, stored functions or views
// are not visible in the text and are not detected.
func classifyStatement(query, session, db, table string) (effect stmtEffect, dml bool) {
	toks := tokenize(query)
	if len(toks) == 0 {
		return stmtNone, false
	}
	m := matcher{session: session, db: db, table: table}
	verb := strings.ToUpper(toks[0].text)
	if toks[0].kind != tokWord {
		return stmtNone, false
	}
	switch verb {
	case "INSERT", "REPLACE":
		i := 1
		for i < len(toks) && toks[i].kind == tokWord && isOneOf(toks[i].text, "LOW_PRIORITY", "DELAYED", "HIGH_PRIORITY", "IGNORE", "INTO") {
			i++
		}
		if m.nameAt(toks, i) {
			return stmtDML, true
		}
		return stmtNone, true
	case "LOAD":
		for i := 1; i+2 < len(toks); i++ {
			if toks[i].isWord("INTO") && toks[i+1].isWord("TABLE") {
				if m.nameAt(toks, i+2) {
					return stmtDML, true
				}
				return stmtNone, true
			}
		}
		// LOAD INDEX INTO CACHE and the like are no DML; a LOAD DATA whose
		// target cannot be found is, and may be ours.
		if len(toks) > 1 && (toks[1].isWord("DATA") || toks[1].isWord("XML")) {
			return stmtDML, true
		}
		return stmtNone, false
	case "UPDATE":
		if m.anyName(toks[1:topLevel(toks, 1, "SET")]) {
			return stmtDML, true
		}
		return stmtNone, true
	case "DELETE":
		if m.anyName(toks[1:topLevel(toks, 1, "WHERE", "ORDER", "LIMIT", "RETURNING")]) {
			return stmtDML, true
		}
		return stmtNone, true
	case "WITH":
		if topLevel(toks, 1, "INSERT", "REPLACE", "UPDATE", "DELETE") == len(toks) {
			return stmtNone, false // WITH … SELECT
		}
		if m.anyName(toks[1:]) {
			return stmtDML, true
		}
		return stmtNone, true
	case "TRUNCATE":
		i := 1
		if i < len(toks) && toks[i].isWord("TABLE") {
			i++
		}
		if m.nameAt(toks, i) {
			return stmtTruncate, false
		}
	case "ALTER", "CREATE", "DROP", "RENAME":
		for i := 1; verb == "ALTER" && i+1 < len(toks); i++ {
			if toks[i+1].isWord("PARTITION") && (toks[i].isWord("TRUNCATE") || toks[i].isWord("DROP") || toks[i].isWord("EXCHANGE")) {
				if m.anyName(toks[1:]) {
					return stmtPartition, false
				}
				break
			}
		}
		i := 1
		if i < len(toks) && (verb == "CREATE" || verb == "DROP") && isOneOf(toks[i].text, "UNIQUE", "FULLTEXT", "SPATIAL") {
			i++
		}
		if i < len(toks) && toks[i].isWord("INDEX") && verb != "ALTER" {
			return stmtNone, false // an index: no row image changes
		}
		if m.anyName(toks[1:]) {
			return stmtShape, false
		}
	}
	return stmtNone, false
}

// stmtEffect is what a statement logged as text does to the followed table.
type stmtEffect int

const (
	stmtNone      stmtEffect = iota // leaves its rows alone (as far as the text says)
	stmtDML                         // changes its rows, with no row images in the binlog
	stmtTruncate                    // TRUNCATE TABLE of it
	stmtPartition                   // ALTER TABLE … TRUNCATE|DROP|EXCHANGE PARTITION touching it
	stmtShape                       // other DDL naming it: its columns may have changed (ddl.go)
)

type tokKind int

const (
	tokWord   tokKind = iota // a bare word: keyword or name
	tokQuoted                // a `quoted` or "double-quoted" name
	tokString                // a 'string' literal
	tokPunct                 // one character of punctuation
)

type token struct {
	kind tokKind
	text string // unquoted, for names
}

func (t token) isWord(w string) bool { return t.kind == tokWord && strings.EqualFold(t.text, w) }

func (t token) isName() bool { return t.kind == tokWord || t.kind == tokQuoted }

func isOneOf(s string, words ...string) bool {
	for _, w := range words {
		if strings.EqualFold(s, w) {
			return true
		}
	}
	return false
}

// tokenize splits a statement into words, quoted names, string literals
// and punctuation, dropping comments and whitespace. Unterminated quotes
// and comments run to the end.
func tokenize(q string) []token {
	var toks []token
	inExec := false // inside /*! … */: the closing */ is skipped
	for i := 0; i < len(q); {
		c := q[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v':
			i++
		case c == '#' || (c == '-' && strings.HasPrefix(q[i:], "--") && (i+2 == len(q) || q[i+2] <= ' ')):
			for i < len(q) && q[i] != '\n' {
				i++
			}
		case strings.HasPrefix(q[i:], "/*!") || strings.HasPrefix(q[i:], "/*M!"):
			i += strings.IndexByte(q[i:], '!') + 1
			for i < len(q) && q[i] >= '0' && q[i] <= '9' { // the version
				i++
			}
			inExec = true
		case c == '/' && strings.HasPrefix(q[i:], "/*"):
			end := strings.Index(q[i+2:], "*/")
			if end < 0 {
				return toks
			}
			i += 2 + end + 2
		case c == '*' && inExec && strings.HasPrefix(q[i:], "*/"):
			inExec = false
			i += 2
		case c == '`' || c == '"' || c == '\'':
			var sb strings.Builder
			j := i + 1
			for j < len(q) {
				if q[j] == '\\' && c != '`' && j+1 < len(q) {
					sb.WriteByte(q[j+1])
					j += 2
					continue
				}
				if q[j] == c {
					if j+1 < len(q) && q[j+1] == c { // a doubled quote
						sb.WriteByte(c)
						j += 2
						continue
					}
					break
				}
				sb.WriteByte(q[j])
				j++
			}
			kind := tokQuoted
			if c == '\'' {
				kind = tokString
			}
			toks = append(toks, token{kind: kind, text: sb.String()})
			i = j + 1
		case isWordByte(c):
			j := i
			for j < len(q) && isWordByte(q[j]) {
				j++
			}
			toks = append(toks, token{kind: tokWord, text: q[i:j]})
			i = j
		default:
			toks = append(toks, token{kind: tokPunct, text: q[i : i+1]})
			i++
		}
	}
	return toks
}

func isWordByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '$' || c >= 0x80
}

// topLevel returns the index of the first bare word among words at
// parenthesis depth 0 from i on, or len(toks).
func topLevel(toks []token, i int, words ...string) int {
	depth := 0
	for ; i < len(toks); i++ {
		t := toks[i]
		switch {
		case t.kind == tokPunct && t.text == "(":
			depth++
		case t.kind == tokPunct && t.text == ")":
			depth = max(depth-1, 0)
		case depth == 0 && t.kind == tokWord && isOneOf(t.text, words...):
			return i
		}
	}
	return len(toks)
}

// matcher tells whether names in a statement are the followed table.
type matcher struct{ session, db, table string }

func (m matcher) is(db, table string) bool {
	return strings.EqualFold(table, m.table) && strings.EqualFold(db, m.db)
}

// nameAt reports whether the (qualified) name starting at toks[i] is the table.
func (m matcher) nameAt(toks []token, i int) bool {
	if i >= len(toks) || !toks[i].isName() {
		return false
	}
	if i+2 < len(toks) && toks[i+1].kind == tokPunct && toks[i+1].text == "." && toks[i+2].isName() {
		return m.is(toks[i].text, toks[i+2].text)
	}
	return m.unqualified(toks[i].text)
}

func (m matcher) unqualified(name string) bool {
	return strings.EqualFold(name, m.table) && (m.session == "" || strings.EqualFold(m.session, m.db))
}

// anyName reports whether any name among toks is the table: db.table, or
// the table alone (an alias or column of the same name counts too).
func (m matcher) anyName(toks []token) bool {
	for i := 0; i < len(toks); i++ {
		if !toks[i].isName() {
			continue
		}
		if i+2 < len(toks) && toks[i+1].kind == tokPunct && toks[i+1].text == "." && toks[i+2].isName() {
			if m.is(toks[i].text, toks[i+2].text) || m.unqualified(toks[i].text) {
				return true
			}
			i += 2
			continue
		}
		if m.unqualified(toks[i].text) {
			return true
		}
	}
	return false
}
