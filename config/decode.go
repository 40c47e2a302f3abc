package config

import (
	"bytes"
	"encoding"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"
)

// DecodeSettings decodes raw (a JSON object, or nil/null meaning "no
// settings") into v, a pointer to a struct with json tags. path names raw
// in messages; for an outbound it is ob.Path + ".settings".
//
// Keys that v has no field for are passed to warn (which may be nil) as
// `<path>: unknown key "foo"`, sorted, at every level of nesting. A value of
// the wrong type is an error naming its full path, e.g.
// `outbounds[0].settings.port: want number, got string`. Keys match fields
// the way encoding/json matches them, which does the actual decoding once
// the checks pass.
func DecodeSettings(path string, raw json.RawMessage, v any, warn func(string)) error {
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Pointer || rv.IsNil() {
		return fmt.Errorf("config: DecodeSettings needs a non-nil pointer, got %T", v)
	}
	if len(bytes.TrimSpace(raw)) == 0 {
		return nil
	}
	n, err := parse(raw)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if n.kind == "null" {
		return nil
	}
	if n.kind != "object" {
		return fmt.Errorf("%s: want object, got %s", path, n.kind)
	}
	c := &checker{data: raw, warn: warn}
	c.check(path, n, rv.Type().Elem())
	if len(c.errs) > 0 {
		return errors.Join(c.errs...)
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return fmt.Errorf("%s: %w", path, err) // a case the checks missed
	}
	return nil
}

// checker walks a parsed value alongside the Go type it will decode into.
type checker struct {
	data []byte
	warn func(string)
	errs []error
}

func (c *checker) fail(path, msg string) {
	c.errs = append(c.errs, fmt.Errorf("%s: %s", path, msg))
}

func (c *checker) typeErr(path, want string, n *node) {
	c.fail(path, fmt.Sprintf("want %s, got %s", want, n.kind))
}

var (
	jsonUnmarshaler = reflect.TypeFor[json.Unmarshaler]()
	textUnmarshaler = reflect.TypeFor[encoding.TextUnmarshaler]()
	numberType      = reflect.TypeFor[json.Number]()
)

func (c *checker) check(path string, n *node, t reflect.Type) {
	if n.kind == "null" {
		return // encoding/json leaves the value alone or sets it to nil
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	// Run custom decoders here too, so that their errors get a path.
	if reflect.PointerTo(t).Implements(jsonUnmarshaler) {
		u := reflect.New(t).Interface().(json.Unmarshaler)
		if err := u.UnmarshalJSON(c.data[n.off:n.end]); err != nil {
			c.fail(path, err.Error())
		}
		return
	}
	if reflect.PointerTo(t).Implements(textUnmarshaler) {
		if n.kind != "string" {
			c.typeErr(path, "string", n)
			return
		}
		u := reflect.New(t).Interface().(encoding.TextUnmarshaler)
		if err := u.UnmarshalText([]byte(n.text)); err != nil {
			c.fail(path, err.Error())
		}
		return
	}
	if t == numberType {
		if n.kind != "number" && n.kind != "string" {
			c.typeErr(path, "number", n)
		}
		return
	}

	switch t.Kind() {
	case reflect.Struct:
		if n.kind != "object" {
			c.typeErr(path, "object", n)
			return
		}
		c.object(path, n, t)
	case reflect.Map:
		if n.kind != "object" {
			c.typeErr(path, "object", n)
			return
		}
		seen := map[string]bool{}
		for i, k := range n.keys {
			if seen[k] {
				c.fail(path, fmt.Sprintf("duplicate key %q", k))
				continue
			}
			seen[k] = true
			c.check(path+"."+k, n.elems[i], t.Elem())
		}
	case reflect.Slice, reflect.Array:
		if t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.Uint8 {
			if n.kind != "string" { // base64, as encoding/json wants
				c.typeErr(path, "string", n)
			}
			return
		}
		if n.kind != "array" {
			c.typeErr(path, "array", n)
			return
		}
		if t.Kind() == reflect.Array && len(n.elems) > t.Len() {
			// encoding/json would drop the extra elements.
			c.fail(path, fmt.Sprintf("want at most %d elements, got %d", t.Len(), len(n.elems)))
			return
		}
		for i, el := range n.elems {
			c.check(fmt.Sprintf("%s[%d]", path, i), el, t.Elem())
		}
	case reflect.String:
		if n.kind != "string" {
			c.typeErr(path, "string", n)
		}
	case reflect.Bool:
		if n.kind != "boolean" {
			c.typeErr(path, "boolean", n)
		}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		if n.kind != "number" {
			c.typeErr(path, "number", n)
			return
		}
		_, err := strconv.ParseInt(n.text, 10, t.Bits())
		c.numErr(path, n, t, err)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		if n.kind != "number" {
			c.typeErr(path, "number", n)
			return
		}
		_, err := strconv.ParseUint(n.text, 10, t.Bits())
		if err != nil && strings.HasPrefix(n.text, "-") && !strings.ContainsAny(n.text, ".eE") {
			err = strconv.ErrRange // a negative integer, not a fraction
		}
		c.numErr(path, n, t, err)
	case reflect.Float32, reflect.Float64:
		if n.kind != "number" {
			c.typeErr(path, "number", n)
			return
		}
		_, err := strconv.ParseFloat(n.text, t.Bits())
		c.numErr(path, n, t, err)
	}
	// Interfaces take anything; other kinds are left to encoding/json.
}

func (c *checker) numErr(path string, n *node, t reflect.Type, err error) {
	switch {
	case err == nil:
	case errors.Is(err, strconv.ErrSyntax):
		c.fail(path, "want integer, got "+n.text)
	default:
		c.fail(path, fmt.Sprintf("%s is out of range for %s", n.text, t.Kind()))
	}
}

func (c *checker) object(path string, n *node, t reflect.Type) {
	fields := fieldsOf(t, nil)
	var unknown []string
	seen := map[string]bool{}
	for i, k := range n.keys {
		if seen[k] {
			c.fail(path, fmt.Sprintf("duplicate key %q", k))
			continue
		}
		seen[k] = true
		f, ok := lookup(fields, k)
		if !ok {
			unknown = append(unknown, k)
			continue
		}
		p, v := path+"."+k, n.elems[i]
		if f.quoted {
			// `json:",string"`: the value is a scalar inside a string.
			if v.kind != "string" && v.kind != "null" {
				c.typeErr(p, "string", v)
			}
			continue
		}
		c.check(p, v, f.typ)
	}
	if c.warn == nil {
		return
	}
	sort.Strings(unknown)
	for _, k := range unknown {
		c.warn(fmt.Sprintf("%s: unknown key %q", path, k))
	}
}

type field struct {
	name   string
	typ    reflect.Type
	quoted bool // the ",string" option on a scalar
}

// fieldsOf lists the JSON fields of struct type t, those of embedded
// structs last so that outer fields win.
func fieldsOf(t reflect.Type, visiting map[reflect.Type]bool) []field {
	if visiting[t] {
		return nil // a struct that embeds itself through a pointer
	}
	if visiting == nil {
		visiting = map[reflect.Type]bool{}
	}
	visiting[t] = true
	defer delete(visiting, t)

	var fields, promoted []field
	for i := range t.NumField() {
		sf := t.Field(i)
		tag := sf.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		if sf.Anonymous && name == "" {
			et := sf.Type
			if et.Kind() == reflect.Pointer {
				et = et.Elem()
			}
			if et.Kind() == reflect.Struct {
				promoted = append(promoted, fieldsOf(et, visiting)...)
				continue
			}
		}
		if !sf.IsExported() {
			continue
		}
		if name == "" {
			name = sf.Name
		}
		quoted := false
		if hasOption(opts, "string") {
			switch base(sf.Type).Kind() {
			case reflect.Bool, reflect.String,
				reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
				reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr,
				reflect.Float32, reflect.Float64:
				quoted = true
			}
		}
		fields = append(fields, field{name: name, typ: sf.Type, quoted: quoted})
	}
	return append(fields, promoted...)
}

func base(t reflect.Type) reflect.Type {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t
}

func hasOption(opts, want string) bool {
	for opts != "" {
		var o string
		o, opts, _ = strings.Cut(opts, ",")
		if o == want {
			return true
		}
	}
	return false
}

// lookup prefers an exact match but, like encoding/json, also accepts one
// that differs in case.
func lookup(fields []field, key string) (field, bool) {
	for _, f := range fields {
		if f.name == key {
			return f, true
		}
	}
	for _, f := range fields {
		if strings.EqualFold(f.name, key) {
			return f, true
		}
	}
	return field{}, false
}

// node is a parsed JSON value that remembers where it is in the input, so
// that errors can give a line and column.
type node struct {
	kind    string   // "object", "array", "string", "number", "boolean" or "null"
	off     int      // offset of the first byte
	end     int      // offset just past the last byte
	text    string   // a string's value or a number's literal
	keys    []string // object keys in document order, repeats included
	keyOffs []int
	elems   []*node // object values (matching keys) or array elements
}

// parse checks that data is a single JSON value and returns its tree.
func parse(data []byte) (*node, error) {
	// A full syntax check first, so that the walk below can trust the input
	// and syntax errors carry encoding/json's usual wording.
	var raw json.RawMessage
	if err := json.Unmarshal(data, &raw); err != nil {
		var se *json.SyntaxError
		if !errors.As(err, &se) {
			return nil, err
		}
		off := int(se.Offset)
		// Offset counts the offending byte, except when input ran out.
		if off > 0 && !strings.HasPrefix(se.Error(), "unexpected end") {
			off--
		}
		return nil, fmt.Errorf("%s: %w", position(data, off), err)
	}
	p := &parser{data: data, dec: json.NewDecoder(bytes.NewReader(data))}
	p.dec.UseNumber()
	return p.value()
}

type parser struct {
	data []byte
	dec  *json.Decoder
}

// start returns the offset of the next token. The decoder's offset is the
// end of the previous token, before any separators.
func (p *parser) start() int {
	i := int(p.dec.InputOffset())
	for i < len(p.data) && strings.IndexByte(" \t\r\n:,", p.data[i]) >= 0 {
		i++
	}
	return i
}

func (p *parser) value() (*node, error) {
	n := &node{off: p.start()}
	tok, err := p.dec.Token()
	if err != nil {
		return nil, err
	}
	switch t := tok.(type) {
	case json.Delim:
		if t == '{' {
			n.kind = "object"
			for p.dec.More() {
				off := p.start()
				k, err := p.dec.Token()
				if err != nil {
					return nil, err
				}
				key, _ := k.(string)
				v, err := p.value()
				if err != nil {
					return nil, err
				}
				n.keys = append(n.keys, key)
				n.keyOffs = append(n.keyOffs, off)
				n.elems = append(n.elems, v)
			}
		} else {
			n.kind = "array"
			for p.dec.More() {
				v, err := p.value()
				if err != nil {
					return nil, err
				}
				n.elems = append(n.elems, v)
			}
		}
		if _, err := p.dec.Token(); err != nil { // the closing delimiter
			return nil, err
		}
	case string:
		n.kind, n.text = "string", t
	case json.Number:
		n.kind, n.text = "number", string(t)
	case bool:
		n.kind = "boolean"
	default:
		n.kind = "null"
	}
	n.end = int(p.dec.InputOffset())
	return n, nil
}

// position gives "line L, column C" (both from 1, columns in characters)
// for a byte offset into data.
func position(data []byte, off int) string {
	off = max(0, min(off, len(data)))
	line := 1 + bytes.Count(data[:off], []byte("\n"))
	lineStart := bytes.LastIndexByte(data[:off], '\n') + 1
	col := 1 + utf8.RuneCount(data[lineStart:off])
	return fmt.Sprintf("line %d, column %d", line, col)
}
