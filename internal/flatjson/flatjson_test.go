package flatjson

import (
	"encoding/json"
	"maps"
	"math/rand/v2"
	"strings"
	"testing"
)

// pieces mixes plain text with every kind of byte encoding/json escapes.
var pieces = []string{"", "a", "user", "correlation_id", "0197-abc", " ", `"`, `\`, "<", ">", "&", "\n", "\t", "\x00", "\x1f", "\x7f",
	"é", "\u2028", "\u2029", "\xff", "日本", "\U0001F600", "{", "}", ":", ","}

func randomString(r *rand.Rand) string {
	var b strings.Builder
	for n := r.IntN(4); n > 0; n-- {
		b.WriteString(pieces[r.IntN(len(pieces))])
	}
	return b.String()
}

func TestAppendMatchesEncodingJSON(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for range 5000 {
		m := make(map[string]string)
		for n := r.IntN(20); n > 0; n-- {
			m[randomString(r)] = randomString(r)
		}
		want, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		if got := Append(nil, m, nil); string(got) != string(want) {
			t.Fatalf("Append(%q)\n got %s\nwant %s", m, got, want)
		}
	}
}

func TestAppendSkips(t *testing.T) {
	m := map[string]string{"b": "2", "a": "1", "skip": "x"}
	got := Append([]byte("x="), m, func(k string) bool { return k == "skip" })
	if string(got) != `x={"a":"1","b":"2"}` {
		t.Fatalf("got %s", got)
	}
	if got := Append(nil, nil, nil); string(got) != "{}" {
		t.Fatalf("nil map: got %s", got)
	}
}

// decodeLikeEncodingJSON checks that Decode into a map holding pre agrees
// with json.Unmarshal into a copy of it: the same error or none, and the
// same entries after.
func decodeLikeEncodingJSON(t *testing.T, in []byte) {
	t.Helper()
	pre := map[string]string{"kept": "1", "a": "old"}
	got, want := maps.Clone(pre), maps.Clone(pre)
	gotErr := Decode(in, got)
	wantErr := json.Unmarshal(in, &want)
	if (gotErr == nil) != (wantErr == nil) {
		t.Fatalf("Decode(%q): error %v, json.Unmarshal: %v", in, gotErr, wantErr)
	}
	if want == nil { // null: json.Unmarshal set its map variable to nil; Decode has only m
		want = pre
	}
	if wantErr == nil && !maps.Equal(got, want) {
		t.Fatalf("Decode(%q) = %q, json.Unmarshal: %q", in, got, want)
	}
}

func TestDecodeMatchesEncodingJSON(t *testing.T) {
	for _, in := range []string{
		`{}`, `{"a":"1"}`, `{"a":"1","b":"2"}`, `{"a":"1","a":"2"}`, `{"kept":""}`,
		`{ "a": "1" }`, `{"a":"\u00e9\n"}`, `{"a":"é"}`, `{"a":1}`, `{"a":null}`, `{"a":["x"]}`, `{"a":{"b":"c"}}`,
		`null`, `[]`, `""`, ``, `{`, `}`, `{"a"}`, `{"a":}`, `{"a":"1",}`, `{"a":"1"}x`, `{"a":"1""b":"2"}`,
		`{"a":"1"}}`, `{{}`, `{"a":"1"` + "\x00" + `}`, `{"a":"` + "\x01" + `"}`, `{"a":"1",,"b":"2"}`, `{"a":"b":"c"}`,
		`{"a":"1"} `, ` {"a":"1"}`, `{"":""}`, `{"a":"1","b":"2","c":"3"}`,
	} {
		decodeLikeEncodingJSON(t, []byte(in))
	}
}

func TestDecodeRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for range 5000 {
		m := make(map[string]string)
		for n := r.IntN(20); n > 0; n-- {
			m[randomString(r)] = randomString(r)
		}
		b := Append(nil, m, nil)
		decodeLikeEncodingJSON(t, b)
		// Cut short and spliced: errors must agree too.
		decodeLikeEncodingJSON(t, b[:r.IntN(len(b)+1)])
	}
}

// A compact object's keys and values share one allocation; the input can
// be reused at once.
func TestDecodeAllocatesOnce(t *testing.T) {
	b := []byte(`{"correlation_id":"0193","user":"ada","request_id":"r-1"}`)
	m := make(map[string]string, 8)
	if n := testing.AllocsPerRun(100, func() {
		clear(m)
		if err := Decode(b, m); err != nil {
			t.Fatal(err)
		}
	}); n != 1 {
		t.Fatalf("%v allocations, want 1", n)
	}
	copy(b, `{"xxxxxxxxxxxxxx`)
	if m["user"] != "ada" || m["correlation_id"] != "0193" || len(m) != 3 {
		t.Fatalf("decoded %v changed with its input", m)
	}
}

func FuzzDecode(f *testing.F) {
	for _, s := range []string{`{}`, `{"a":"1","b":"2"}`, `{"a":1}`, `{ "a" : "x" }`, `{"a":"\"}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) { decodeLikeEncodingJSON(t, in) })
}

func BenchmarkAppend(b *testing.B) {
	m := map[string]string{"user": "bench", "correlation_id": "0197a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b", "tenant": "acme"}
	var buf []byte
	b.ReportAllocs()
	for b.Loop() {
		buf = Append(buf[:0], m, nil)
	}
}

func BenchmarkMarshal(b *testing.B) {
	m := map[string]string{"user": "bench", "correlation_id": "0197a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b", "tenant": "acme"}
	b.ReportAllocs()
	for b.Loop() {
		json.Marshal(m) //nolint:errcheck
	}
}

func BenchmarkDecode(b *testing.B) {
	in := []byte(`{"correlation_id":"0197a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b","tenant":"acme","user":"bench"}`)
	b.ReportAllocs()
	for b.Loop() {
		Decode(in, make(map[string]string, 12)) //nolint:errcheck
	}
}

func BenchmarkUnmarshal(b *testing.B) {
	in := []byte(`{"correlation_id":"0197a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b","tenant":"acme","user":"bench"}`)
	b.ReportAllocs()
	for b.Loop() {
		m := make(map[string]string, 12)
		json.Unmarshal(in, &m) //nolint:errcheck
	}
}
