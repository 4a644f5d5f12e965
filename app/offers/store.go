package offers

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/parleynet/parley/internal/atomicfile"
)

// errStore means the list could not be written.
var errStore = errors.New("cannot save the offers")

// load reads the list; a missing file is an empty list. A damaged one is
// moved aside (to path.damaged, for a person to look at) and the list
// starts empty, as the transfer state does: offers are not worth a
// daemon that does not start.
func load(path string) ([]*record, error) {
	data, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("read offers: %w", err)
	}
	var st struct {
		Offers []*record `json:"offers"`
	}
	if err := json.Unmarshal(data, &st); err != nil {
		log.Warnw("the offers file is damaged; starting without it", "file", path, "moved_to", path+".damaged", "err", err)
		if err := os.Rename(path, path+".damaged"); err != nil {
			return nil, fmt.Errorf("move the damaged offers file aside: %w", err)
		}
		return nil, nil
	}
	out := st.Offers[:0]
	for _, r := range st.Offers {
		if r != nil && r.ID != "" {
			out = append(out, r)
		}
	}
	return out, nil
}

// save writes the list atomically, mode 0600.
func save(path string, list []*record) error {
	data, err := json.MarshalIndent(struct {
		Offers []*record `json:"offers"`
	}{list}, "", "\t")
	if err != nil {
		return fmt.Errorf("%w: encode: %w", errStore, err)
	}
	if err := atomicfile.Write(path, data); err != nil {
		return fmt.Errorf("%w: %w", errStore, err)
	}
	return nil
}
