package safearchive

import "fmt"

// The command line's flags that set Limits' fields. A refusal names the
// flag that raises the limit it met.
const (
	FlagRatio   = "unpack-ratio"
	FlagCeiling = "unpack-max-bytes"
	FlagFiles   = "unpack-max-files"
)

// The default limits.
const (
	// DefaultRatio: the members may add up to this many times the size of
	// the archive. Source code compresses 3 to 10 times; a zip bomb, a
	// thousand times and more.
	DefaultRatio int64 = 100
	// DefaultCeiling: whatever the archive's size, at most this many bytes.
	DefaultCeiling int64 = 2 << 30
	// DefaultFiles: at most this many members, directories included.
	DefaultFiles = 100_000
)

// Limits bound what one archive may unpack to.
type Limits struct {
	// Ratio bounds the total uncompressed size to Ratio times the
	// archive's size; 0 means no ratio, only the ceiling.
	Ratio int64
	// Ceiling bounds the total uncompressed size absolutely.
	Ceiling int64
	// Files bounds the number of members.
	Files int
}

// Default returns the default limits.
func Default() Limits {
	return Limits{Ratio: DefaultRatio, Ceiling: DefaultCeiling, Files: DefaultFiles}
}

// Max is the most bytes an archive of archiveSize bytes may unpack to.
func (l Limits) Max(archiveSize int64) int64 {
	m := l.Ceiling
	if l.Ratio > 0 && archiveSize >= 0 && archiveSize <= m/l.Ratio {
		m = archiveSize * l.Ratio
	}
	return m
}

// Budget counts the members of one archive against its limits.
type Budget struct {
	lim         Limits
	archiveSize int64
	max         int64
	files       int
	bytes       int64
}

// Budget starts counting the members of an archive of archiveSize bytes.
func (l Limits) Budget(archiveSize int64) *Budget {
	return &Budget{lim: l, archiveSize: archiveSize, max: l.Max(archiveSize)}
}

// Add counts one member that declares size bytes (0 for a directory or a
// link). It returns a *LimitError when the member passes a limit; a
// negative size passes the size limit.
func (b *Budget) Add(member string, size int64) error {
	b.files++
	if b.files > b.lim.Files {
		return &LimitError{Files: b.lim.Files}
	}
	if size < 0 || size > b.max-b.bytes {
		return &LimitError{Member: member, Max: b.max, Ratio: b.lim.Ratio, ArchiveSize: b.archiveSize, Ceiling: b.max == b.lim.Ceiling}
	}
	b.bytes += size
	return nil
}

// LimitError is an archive refused for its size or number of members.
type LimitError struct {
	// Files is the limit on members, when that was passed.
	Files int
	// Member is where the size limit was passed; Max is that limit, either
	// Ratio times ArchiveSize or, when Ceiling is set, the ceiling.
	Member      string
	Max         int64
	Ratio       int64
	ArchiveSize int64
	Ceiling     bool
}

func (e *LimitError) Error() string {
	switch {
	case e.Files > 0:
		return fmt.Sprintf("archive has more than %d entries (raise the limit with --%s)", e.Files, FlagFiles)
	case e.Ceiling:
		return fmt.Sprintf("archive unpacks to more than %d bytes, at member %q (raise the limit with --%s)", e.Max, e.Member, FlagCeiling)
	}
	return fmt.Sprintf("archive unpacks to more than %d bytes (%d times its own %d bytes), at member %q (raise the limit with --%s)", e.Max, e.Ratio, e.ArchiveSize, e.Member, FlagRatio)
}
