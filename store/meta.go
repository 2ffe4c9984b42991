package store

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/bitpoll-install/bitpoll-install/atomicfile"
)

// Meta is what a generation records beside its symlink, in
// generations/<n>.json: what it runs and the database state it runs on.
type Meta struct {
	N          int       `json:"generation"`
	Created    time.Time `json:"created"`
	StorePath  string    `json:"store_path"`
	AppVersion string    `json:"app_version"`
	Python     string    `json:"python"`
	// Migrations are the applied migrations per app, from Django's own
	// recorder, once this generation's migrations ran; nil before.
	Migrations map[string][]string `json:"migrations"`
	MigratedAt *time.Time          `json:"migrated_at"`
	// Database is the migration stamp of the database settings the
	// migrations ran against.
	Database string `json:"database"`
	// Snapshot is the database as it was before this generation's
	// migrations first ran; gc frees it with the generation.
	Snapshot string `json:"snapshot"`
	// SnapshotOf is the generation whose schema the snapshot holds.
	SnapshotOf int `json:"snapshot_of"`
	// Previous is the generation that was current before this one last
	// became current; gc keeps it, so that a rollback stays possible.
	Previous int `json:"previous"`
}

func (s *Store) metaPath(n int) string { return s.genPath(n) + ".json" }

// ReadMeta returns generation n's record; a generation made before records
// existed has one with only its number and store path.
func (s *Store) ReadMeta(n int) (Meta, error) {
	g, err := s.readGen(n)
	if err != nil {
		return Meta{}, fmt.Errorf("read generation %d: %w", n, err)
	}
	m := Meta{N: n, Created: g.Created, StorePath: g.Target}
	data, err := os.ReadFile(s.metaPath(n))
	if errors.Is(err, fs.ErrNotExist) {
		return m, nil
	}
	if err == nil {
		err = json.Unmarshal(data, &m)
	}
	if err != nil {
		return Meta{}, fmt.Errorf("read %s: %w (it is written by bitpoll-install; remove it to start the record anew)", s.metaPath(n), err)
	}
	m.N, m.StorePath = n, g.Target
	return m, nil
}

// WriteMeta replaces generation m.N's record atomically. The caller must
// hold Lock.
func (s *Store) WriteMeta(m Meta) error {
	data, err := json.MarshalIndent(m, "", "  ")
	if err == nil {
		err = atomicfile.Write(s.metaPath(m.N), append(data, '\n'), 0o644)
	}
	if err != nil {
		return fmt.Errorf("record generation %d: %w", m.N, err)
	}
	return nil
}

// Pending is a generation switch in progress, written before the first
// change and removed after the last: a rerun after a crash finishes it
// instead of starting another.
type Pending struct {
	Op              string `json:"op"` // "upgrade", "rollback" or "restore"
	From            int    `json:"from"`
	To              int    `json:"to"`
	RestoreSnapshot bool   `json:"restore_snapshot"`
	// Added says this switch made generation To; a refused switch
	// removes it again.
	Added bool `json:"added"`
	// Replaced is where a --restore-snapshot keeps the database it
	// replaces, recorded before it moves: a rerun after a kill keeps
	// that one and names it, rather than the restored copy.
	Replaced string `json:"replaced,omitempty"`
	// Restore is the unpacked, verified backup a restore puts in place;
	// it is removed once the restore is done.
	Restore string    `json:"restore,omitempty"`
	Started time.Time `json:"started"`
	PID     int       `json:"pid"`
}

func (s *Store) pendingPath() string {
	return filepath.Join(filepath.Dir(s.layout.GenerationsDir()), "switch-in-progress.json")
}

// ReadPending returns the switch a crashed process left, if any.
func (s *Store) ReadPending() (Pending, bool, error) {
	data, err := os.ReadFile(s.pendingPath())
	if errors.Is(err, fs.ErrNotExist) {
		return Pending{}, false, nil
	}
	var p Pending
	if err == nil {
		err = json.Unmarshal(data, &p)
	}
	if err != nil {
		return Pending{}, false, fmt.Errorf("read %s: %w", s.pendingPath(), err)
	}
	return p, true, nil
}

// WritePending records p. The caller must hold Lock.
func (s *Store) WritePending(p Pending) error {
	p.PID = os.Getpid()
	data, err := json.Marshal(p)
	if err == nil {
		err = atomicfile.Write(s.pendingPath(), append(data, '\n'), 0o644)
	}
	if err != nil {
		return fmt.Errorf("record the switch to generation %d: %w", p.To, err)
	}
	return nil
}

// ClearPending removes the record of a finished switch.
func (s *Store) ClearPending() error {
	if err := os.Remove(s.pendingPath()); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("clear the finished switch: %w", err)
	}
	return atomicfile.SyncDir(filepath.Dir(s.pendingPath()))
}

// GenerationFor returns the newest generation that points at path.
func (s *Store) GenerationFor(path string) (Generation, bool, error) {
	gens, err := s.Generations()
	if err != nil {
		return Generation{}, false, err
	}
	for i := len(gens) - 1; i >= 0; i-- {
		if filepath.Base(gens[i].Target) == filepath.Base(path) {
			return gens[i], true, nil
		}
	}
	return Generation{}, false, nil
}

// RemoveGeneration removes generation n's symlink and record, never the
// current one's; its store path stays for gc. The caller must hold Lock.
func (s *Store) RemoveGeneration(n int) error {
	if cur, ok, err := s.currentN(); err != nil {
		return err
	} else if ok && cur == n {
		return fmt.Errorf("remove generation %d: it is current", n)
	}
	for _, p := range []string{s.genPath(n), s.metaPath(n)} {
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("remove generation %d: %w", n, err)
		}
	}
	return atomicfile.SyncDir(s.layout.GenerationsDir())
}
