package flatjson_test

import (
	"fmt"

	"github.com/switchyard-go/switchyard/internal/flatjson"
)

func Example() {
	b := flatjson.Append(nil, map[string]string{"tenant": "acme", "user": "ada <admin>"}, nil)
	fmt.Println(string(b))

	m := make(map[string]string)
	if err := flatjson.Decode(b, m); err != nil {
		panic(err)
	}
	fmt.Println(m["user"])
	// Output:
	// {"tenant":"acme","user":"ada \u003cadmin\u003e"}
	// ada <admin>
}
