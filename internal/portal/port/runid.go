package port

import (
	"errors"
	"fmt"

	"github.com/paved-idp/paved/internal/clip"
)

// MaxRunIDLen bounds a Port run id. Port's ids are short ("r_VX7oDn4OUQ2K6VKH");
// the bound leaves room for other shapes while keeping a hostile id out of
// the store, URLs and logs.
const MaxRunIDLen = 128

// ValidRunID reports whether id has the shape of a Port action run id: 1 to
// MaxRunIDLen ASCII letters, digits, '_' or '-'. paved checks every run id
// from a webhook before storing it and before putting it into a Port URL, so
// "..", "/", whitespace or control characters can never reach either. The
// error names the problem and quotes the id clipped.
func ValidRunID(id string) error {
	switch {
	case id == "":
		return errors.New("run id is empty")
	case len(id) > MaxRunIDLen:
		return fmt.Errorf("run id %q is %d bytes long, longer than %d", clip.String(id, 40), len(id), MaxRunIDLen)
	}
	for i, r := range id {
		if !runIDRune(r) {
			return fmt.Errorf("run id %q has %q at byte %d; want only letters, digits, '_' or '-'", clip.String(id, 40), r, i)
		}
	}
	return nil
}

func runIDRune(r rune) bool {
	return 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' || r == '_' || r == '-'
}
