package unitgen

import (
	"fmt"
	"time"
)

func exampleSpec() Spec {
	return Spec{
		Listen: "127.0.0.1:8000", Workers: 2, Timeout: 30 * time.Second, Project: "bitpoll",
		Paths: DefaultPaths(), Credentials: RequiredCredentials,
		Generation: 7, DatabaseStamp: "0123456789ab",
	}
}

func ExampleRender() {
	units, err := Render(exampleSpec())
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, u := range units {
		fmt.Println(u.Name)
	}
	// Output:
	// bitpoll.socket
	// bitpoll@.service
	// bitpoll-migrate@.service
}
