package agentapi

import (
	"bytes"
	"encoding"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Decode reads one JSON request of at most limit bytes from r into v, which
// should be zero, and then validates it when *T is a Validator. It is
// strict where encoding/json is lenient, because a request that two
// parsers could read differently is a request to refuse:
//
//   - more than limit bytes: payload_too_large (an *http.MaxBytesError from
//     http.MaxBytesReader counts too);
//   - an empty body, a top-level null, trailing data after the value:
//     invalid_request;
//   - object keys must match the json tags exactly: an unknown key, a key
//     in another case ("RunID" for "runId") or a repeated key is
//     invalid_request;
//   - a value of the wrong JSON type, a fraction or out-of-range number
//     for an integer field, a malformed time: invalid_request.
//
// Every error is an *APIError (wrapping the cause of a failed read, for
// the server's log) whose message names the field by its JSON path
// ("parts[3].etag") and never repeats a value from the body; an object key
// that cannot be one of our field names is not repeated either.
//
// Decode is for the server reading requests. A client reading responses
// should decode leniently instead, so that a newer server may add fields.
// It understands the subset of encoding/json the wire types use: tags
// with names and omitempty/omitzero, pointers, slices, string-keyed maps,
// interfaces, and types with their own UnmarshalJSON or UnmarshalText.
func Decode[T any](r io.Reader, limit int64, v *T) error {
	body, err := readBody(r, limit)
	if err != nil {
		return err
	}
	if err := checkShape(body, reflect.TypeFor[T]()); err != nil {
		return err
	}
	// The shape check has refused everything encoding/json would be
	// lenient about, so only the conversion is left to it.
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		return decodeError(err)
	}
	if validator, ok := any(v).(Validator); ok {
		return validator.Validate()
	}
	return nil
}

// readBody reads all of r, refusing more than limit bytes.
func readBody(r io.Reader, limit int64) ([]byte, error) {
	tooLarge := NewError(CodePayloadTooLarge, "request body exceeds %d bytes", limit)
	limit = max(limit, 0)
	body, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			return nil, tooLarge
		}
		return nil, fmt.Errorf("%w: %w", invalid("", "could not read the request body"), err)
	}
	if int64(len(body)) > limit {
		return nil, tooLarge
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return nil, invalid("", "request body is empty")
	}
	return body, nil
}

// decodeError turns what encoding/json reports after a passed shape check
// (rare: the check covers the common cases) into an APIError without the
// values the standard errors quote.
func decodeError(err error) error {
	if typeErr, ok := errors.AsType[*json.UnmarshalTypeError](err); ok && typeErr.Field != "" {
		// Field is a dotted path of our own json names: safe to show.
		return invalid(typeErr.Field, "has the wrong type")
	}
	return invalid("", "malformed request body")
}

// checkShape checks body against t: one JSON value and nothing after it,
// then every object key and value kind against the Go type. It walks the
// bytes itself, after encoding/json has checked the syntax, because
// json.Decoder.Token is an order of magnitude slower and the largest
// complete request has tens of thousands of values.
func checkShape(body []byte, t reflect.Type) error {
	if !json.Valid(body) {
		return syntaxOrTrailing(body)
	}
	w := &shapeWalker{data: body, fields: map[reflect.Type]structFields{}}
	w.skipSpace()
	if bytes.HasPrefix(body[w.pos:], []byte("null")) {
		return invalid("request body", "must be %s, not null", describe(t))
	}
	return w.value(t)
}

// syntaxOrTrailing explains why json.Valid refused body: a syntax error
// in the first value, or data after it.
func syntaxOrTrailing(body []byte) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	var first json.RawMessage
	if err := dec.Decode(&first); err != nil {
		return syntaxError(err)
	}
	return invalid("", "unexpected data after the JSON value")
}

// shapeWalker walks syntactically valid JSON alongside the Go type it is to
// be decoded into. Because the syntax was checked, it can assume every
// string is closed and every bracket matched.
type shapeWalker struct {
	data []byte
	pos  int
	// path is where the walk is, for error messages only.
	path []step
	// fields caches the json fields of each struct type for this body (a
	// complete request has thousands of parts of the same type).
	fields map[reflect.Type]structFields
}

// step is one element of a path: a field name of ours, or an index (-1
// for the value of a map entry, whose key is the sender's and maybe a
// pasted secret, so it is not shown).
type step struct {
	name  string
	index int
}

// structFields are a struct type's JSON fields by name.
type structFields map[string]structField

type structField struct {
	name  string // the json name, the map's key, kept to avoid allocating it
	typ   reflect.Type
	index int // 0..len-1, to mark the field seen
}

// subject names what an error is about: the path, as "parts[3].etag", or
// "request body".
func (w *shapeWalker) subject() string {
	if len(w.path) == 0 {
		return "request body"
	}
	var b strings.Builder
	for _, s := range w.path {
		switch {
		case s.name != "" && b.Len() > 0:
			b.WriteString("." + s.name)
		case s.name != "":
			b.WriteString(s.name)
		case s.index < 0:
			b.WriteString("[…]")
		default:
			b.WriteString("[" + strconv.Itoa(s.index) + "]")
		}
	}
	return b.String()
}

// invalid is an invalid_request error about the current path.
func (w *shapeWalker) invalid(format string, args ...any) error {
	return invalid(w.subject(), format, args...)
}

// wrongType names what was expected and what came, never the value.
func (w *shapeWalker) wrongType(t reflect.Type, got string) error {
	return w.invalid("must be %s, not %s", describe(t), got)
}

// value checks the value at w.pos against t and moves past it.
func (w *shapeWalker) value(t reflect.Type) error {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	w.skipSpace()
	start := w.pos
	if t.Kind() == reflect.Interface || implementsUnmarshaler(t) {
		w.skip()
		return w.opaque(t, w.data[start:w.pos])
	}
	switch w.data[w.pos] {
	case 'n':
		// Like encoding/json: null leaves the field as it is (zero).
		w.pos += len("null")
		return nil
	case 't', 'f':
		w.skip()
		if t.Kind() == reflect.Bool {
			return nil
		}
		return w.wrongType(t, "true or false")
	case '"':
		w.pos = w.stringEnd(w.pos)
		if t.Kind() == reflect.String {
			return nil
		}
		return w.wrongType(t, "a string")
	case '{':
		switch {
		case t.Kind() == reflect.Struct:
			return w.object(w.structFields(t))
		case t.Kind() == reflect.Map && t.Key().Kind() == reflect.String:
			return w.mapObject(t.Elem())
		}
		return w.wrongType(t, "an object")
	case '[':
		if t.Kind() == reflect.Slice || t.Kind() == reflect.Array {
			return w.array(t.Elem())
		}
		return w.wrongType(t, "an array")
	default:
		w.skip()
		return w.number(t, w.data[start:w.pos])
	}
}

// object checks the object at w.pos against a struct's fields: every key
// known, none repeated.
func (w *shapeWalker) object(fields structFields) error {
	// Our structs have far fewer than 64 fields; seenMore is for others.
	var seen uint64
	var seenMore []bool
	if len(fields) > 64 {
		seenMore = make([]bool, len(fields))
	}
	return w.members(func(key []byte) error {
		f, known := fields[string(key)]
		if !known {
			if name, ok := safeName(string(key)); ok {
				return w.invalid("has an unknown field %q (field names are case-sensitive)", name)
			}
			return w.invalid("has an unknown field")
		}
		var repeated bool
		if seenMore != nil {
			repeated, seenMore[f.index] = seenMore[f.index], true
		} else {
			repeated, seen = seen&(1<<f.index) != 0, seen|1<<f.index
		}
		if repeated {
			return w.invalid("has the field %q twice", f.name)
		}
		w.path = append(w.path, step{name: f.name})
		err := w.value(f.typ)
		w.path = w.path[:len(w.path)-1]
		return err
	})
}

// mapObject checks the object at w.pos as a map: no key repeated, every
// value of type elem.
func (w *shapeWalker) mapObject(elem reflect.Type) error {
	seen := map[string]bool{}
	return w.members(func(keyBytes []byte) error {
		key := string(keyBytes)
		if seen[key] {
			if name, ok := safeName(key); ok {
				return w.invalid("has the key %q twice", name)
			}
			return w.invalid("has a repeated key")
		}
		seen[key] = true
		w.path = append(w.path, step{index: -1})
		err := w.value(elem)
		w.path = w.path[:len(w.path)-1]
		return err
	})
}

// members calls member for each key of the object at w.pos, unescaped,
// with w.pos at the key's value; member must move past the value.
func (w *shapeWalker) members(member func(key []byte) error) error {
	w.pos++ // '{'
	for {
		w.skipSpace()
		switch w.data[w.pos] {
		case '}':
			w.pos++
			return nil
		case ',':
			w.pos++
			w.skipSpace()
		}
		key, err := w.key()
		if err != nil {
			return err
		}
		w.skipSpace()
		w.pos++ // ':'
		if err := member(key); err != nil {
			return err
		}
	}
}

// array checks the array at w.pos, each element against elem.
func (w *shapeWalker) array(elem reflect.Type) error {
	w.pos++ // '['
	w.path = append(w.path, step{})
	defer func() { w.path = w.path[:len(w.path)-1] }()
	for i := 0; ; i++ {
		w.skipSpace()
		switch w.data[w.pos] {
		case ']':
			w.pos++
			return nil
		case ',':
			w.pos++
		}
		w.path[len(w.path)-1].index = i
		if err := w.value(elem); err != nil {
			return err
		}
	}
}

// key reads the object key at w.pos, unescaped as encoding/json does. The
// common case, a key without escapes, is the body's own bytes.
func (w *shapeWalker) key() ([]byte, error) {
	start := w.pos
	w.pos = w.stringEnd(w.pos)
	raw := w.data[start:w.pos]
	inner := raw[1 : len(raw)-1]
	if bytes.IndexByte(inner, '\\') < 0 && utf8.Valid(inner) {
		return inner, nil
	}
	var key string
	if err := json.Unmarshal(raw, &key); err != nil {
		return nil, w.invalid("has a malformed key")
	}
	return []byte(key), nil
}

// stringEnd is the position just after the string that starts at i.
func (w *shapeWalker) stringEnd(i int) int {
	for i++; ; i++ {
		switch w.data[i] {
		case '\\':
			i++ // the escaped character; the rest of \uXXXX is plain
		case '"':
			return i + 1
		}
	}
}

// skip moves past the value at w.pos.
func (w *shapeWalker) skip() {
	depth := 0
	for {
		switch w.data[w.pos] {
		case '"':
			w.pos = w.stringEnd(w.pos)
		case '{', '[':
			depth++
			w.pos++
		case '}', ']':
			depth--
			w.pos++
		default:
			if depth == 0 {
				// A number or literal ends at a delimiter or the end.
				for w.pos < len(w.data) && !isDelimiter(w.data[w.pos]) {
					w.pos++
				}
				return
			}
			w.pos++
		}
		if depth == 0 {
			return
		}
	}
}

func (w *shapeWalker) skipSpace() {
	for w.pos < len(w.data) && isSpace(w.data[w.pos]) {
		w.pos++
	}
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\n' }

func isDelimiter(c byte) bool { return c == ',' || c == ']' || c == '}' || isSpace(c) }

// opaque checks the value of an interface (anything goes; Validate judges
// it) or of a type with its own unmarshaling, which is run here so that
// its error, which may quote the value, is replaced.
func (w *shapeWalker) opaque(t reflect.Type, raw []byte) error {
	if t.Kind() == reflect.Interface || string(raw) == "null" {
		return nil
	}
	if err := json.Unmarshal(raw, reflect.New(t).Interface()); err != nil {
		if t == reflect.TypeFor[time.Time]() {
			return w.invalid("must be an RFC 3339 time")
		}
		return w.invalid("has an invalid value")
	}
	return nil
}

// number checks that the JSON number n fits t.
func (w *shapeWalker) number(t reflect.Type, n []byte) error {
	var err error
	switch t.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		_, err = strconv.ParseInt(string(n), 10, t.Bits())
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		_, err = strconv.ParseUint(string(n), 10, t.Bits())
	case reflect.Float32, reflect.Float64:
		_, err = strconv.ParseFloat(string(n), t.Bits())
	default:
		return w.wrongType(t, "a number")
	}
	switch {
	case err == nil:
		return nil
	case errors.Is(err, strconv.ErrRange):
		return w.invalid("is out of range")
	}
	return w.invalid("must be a whole number")
}

func implementsUnmarshaler(t reflect.Type) bool {
	p := reflect.PointerTo(t)
	return p.Implements(reflect.TypeFor[json.Unmarshaler]()) || p.Implements(reflect.TypeFor[encoding.TextUnmarshaler]())
}

// structFields lists the json fields of t the way encoding/json names
// them: the tag's name, else the Go name; "-" and unexported fields
// skipped; untagged embedded structs flattened.
func (w *shapeWalker) structFields(t reflect.Type) structFields {
	if fields, ok := w.fields[t]; ok {
		return fields
	}
	fields := structFields{}
	var add func(t reflect.Type)
	add = func(t reflect.Type) {
		for f := range t.Fields() {
			tag := f.Tag.Get("json")
			if tag == "-" {
				continue
			}
			name, _, _ := strings.Cut(tag, ",")
			ft := f.Type
			if f.Anonymous && name == "" {
				if ft.Kind() == reflect.Pointer {
					ft = ft.Elem()
				}
				if ft.Kind() == reflect.Struct {
					add(ft)
					continue
				}
			}
			if !f.IsExported() {
				continue
			}
			if name == "" {
				name = f.Name
			}
			fields[name] = structField{name: name, typ: f.Type, index: len(fields)}
		}
	}
	add(t)
	w.fields[t] = fields
	return fields
}

// describe is the JSON kind a Go type is decoded from.
func describe(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Struct, reflect.Map:
		return "an object"
	case reflect.Slice, reflect.Array:
		return "an array"
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a whole number"
	case reflect.Float32, reflect.Float64:
		return "a number"
	}
	return "a JSON value"
}

// syntaxError reports malformed JSON by offset only: the standard message
// quotes the offending character.
func syntaxError(err error) error {
	if syntaxErr, ok := errors.AsType[*json.SyntaxError](err); ok {
		return invalid("", "malformed JSON at byte offset %d", syntaxErr.Offset)
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return invalid("", "truncated JSON")
	}
	return invalid("", "malformed JSON")
}

// safeName returns key if it could be one of our field names (a short
// identifier), so messages can repeat it. Anything else (long, odd
// characters) might be a secret pasted into the wrong place and is not
// repeated. An API key, at 62 characters, is never short enough.
func safeName(key string) (string, bool) {
	if key == "" || len(key) > 32 {
		return "", false
	}
	for i := 0; i < len(key); i++ {
		if c := key[i]; !isAlnum(c) && c != '_' {
			return "", false
		}
	}
	return key, true
}
