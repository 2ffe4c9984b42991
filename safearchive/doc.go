// Package safearchive is the one reader of archives: the app's source
// archives, sdists and wheels, zip or tar (plain, gzip or bzip2). It hands
// out members only once they have passed every check, so a caller never
// sees a hostile one:
//
//   - a member's name (CheckName): nothing absolute, no "..", no name
//     that means a path in two ways;
//   - its type, by the caller's Policy: regular files and directories
//     always; symbolic links whose target stays inside the archive, and
//     tar hard links to an earlier file, only where the Policy allows;
//   - no member twice, and none below a file or a link;
//   - one set of limits (Limits): a number of members, and a total
//     uncompressed size of at most a multiple of the archive's own size
//     (what the lock recorded, once its hash is checked) and never more
//     than an absolute ceiling. A zip bomb is a small archive that claims
//     a great deal; the ratio refuses it long before the ceiling would.
//
// Zip members are all checked before the first is handed out (Zip);
// Extract checks a whole archive before it writes a byte. Every refusal
// of a name, type or link wraps the Policy's Label ("unsafe archive" by
// default, "unsafe wheel" for wheels); a limit passed is a *LimitError
// that names the command-line flag which raises it.
package safearchive
