package records

import (
	"errors"
	"fmt"
	"time"

	record "github.com/libp2p/go-libp2p-record"
)

// Validator validates the records of one kind for the DHT: kad-dht calls
// Validate on every value it stores or receives and Select to keep the
// best of several.
type Validator struct {
	Kind Kind
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

var _ record.Validator = Validator{}

func (v Validator) now() time.Time {
	if v.Now == nil {
		return time.Now()
	}
	return v.Now()
}

// Validate checks value as the record under key; see the package doc.
func (v Validator) Validate(key string, value []byte) error {
	k, _, err := ParseKey(key)
	if err != nil {
		return err
	}
	if k != v.Kind {
		return fmt.Errorf("%w: a /%s/ key given to the %s validator", ErrWrongKind, k.Namespace(), v.Kind)
	}
	_, err = Verify(key, value, v.now())
	return err
}

// Select returns the index of the best valid value: the highest sequence
// number (see Better). Invalid values are never selected.
func (v Validator) Select(key string, values [][]byte) (int, error) {
	best, bestIdx := Record{}, -1
	now := v.now()
	for i, val := range values {
		r, err := Verify(key, val, now)
		if err != nil {
			continue
		}
		if bestIdx < 0 || Better(r, best) {
			best, bestIdx = r, i
		}
	}
	if bestIdx < 0 {
		return 0, errors.New("select record: no valid value")
	}
	return bestIdx, nil
}

// NamespacedValidator validates every Parley record kind, each under its
// namespace. now is the clock; nil means time.Now.
func NamespacedValidator(now func() time.Time) record.NamespacedValidator {
	nv := record.NamespacedValidator{}
	for _, k := range Kinds {
		nv[k.Namespace()] = Validator{Kind: k, Now: now}
	}
	return nv
}
