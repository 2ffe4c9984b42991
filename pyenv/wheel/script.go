package wheel

import (
	"bytes"
	"fmt"
	"path/filepath"
	"strings"
	"unicode/utf8"
)

// maxShebang is the longest "#!interpreter\n" line written directly; Linux
// kernels before 5.1 truncate longer ones. Longer paths, and paths with
// spaces, go through /bin/sh instead.
const maxShebang = 127

// checkPython refuses interpreter paths that cannot be written safely into
// a shebang line or the /bin/sh trampoline below.
func checkPython(p string) error {
	switch {
	case p == "":
		return fmt.Errorf("Options.Python is empty: set it to the venv's interpreter, like \"/venv/bin/python\"")
	case !filepath.IsAbs(p):
		return fmt.Errorf("Options.Python %q is not an absolute path", p)
	case !utf8.ValidString(p) || strings.ContainsAny(p, "'\"\\$`\n\r\x00"):
		return fmt.Errorf("Options.Python %q contains quotes, backslashes, \"$\", a newline or invalid UTF-8, which a shebang cannot hold safely", p)
	}
	return nil
}

// shebang returns the first line(s) that run a script with python. When a
// plain "#!" line would be too long or would be split at a space, the
// script starts as a shell script that re-executes itself with python; to
// Python the shell part is a string literal, so the rest runs unchanged.
func shebang(python string) string {
	if len("#!"+python+"\n") <= maxShebang && !strings.ContainsAny(python, " \t") {
		return "#!" + python + "\n"
	}
	return "#!/bin/sh\n'''exec' '" + python + "' \"$0\" \"$@\"\n' '''\n"
}

// launcher is the script generated for one entry point.
func launcher(python string, ep entryPoint) []byte {
	top, _, _ := strings.Cut(ep.Attr, ".")
	var b bytes.Buffer
	b.WriteString(shebang(python))
	fmt.Fprintf(&b, "import sys\nfrom %s import %s\n", ep.Module, top)
	fmt.Fprintf(&b, "if __name__ == \"__main__\":\n    sys.exit(%s())\n", ep.Attr)
	return b.Bytes()
}
